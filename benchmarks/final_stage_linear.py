"""Final stage for the best linear-on-PCA point of the SST-2 confirmation study (by validation within that family).

Run from the repository root after `qsetfit screen benchmarks/studies/sst2-confirm.toml ...`; writes
benchmarks/results/sst2-confirm/final-linear/ (the same 5 fresh seeds and classical heads as the screen's final stage).
"""
import json
import os

import torch
from qsetfit import HeadConfig
from qsetfit.bench.reproduce import reproduce
from qsetfit.training.arguments import TrainingArguments
torch.set_num_threads(1)
rows = [r for r in json.load(open("benchmarks/results/sst2-confirm/trials.json")) if r["status"] == "ok"]
by_point = {}
for r in rows:
    by_point.setdefault(r["point_index"], []).append(r)
linear = [rs for rs in by_point.values() if rs[0]["head"]["module1"] == "linear"]
best = max(linear, key=lambda rs: (sum(r["validation_accuracy"] for r in rs) / len(rs), -rs[0]["parameters"]))
head = HeadConfig.from_dict(best[0]["head"])
args = TrainingArguments.from_dict(best[0]["training"])
print("point", best[0]["point_index"], best[0]["point"])
r = reproduce("../shared/data/sst2", "benchmarks/results/sst2-confirm/final-linear",
              body=os.path.expanduser("~/.cache/qsetfit-bodies/all-mpnet-base-v2"), seeds=5, first_seed=100,
              heads={"screened-sst2-linear": head}, training=args, resume=True, progress=True)
print(r["table"])
