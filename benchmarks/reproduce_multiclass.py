"""`reproduce` on the multi-class sets (SST-5, emotion) with the screened presets beside the classical heads.

The paper protocol (256 per label, 85/15) with the frozen all-mpnet-base-v2 body; 3 seeds; each preset with
its own training knobs and both ablations; logistic regression, the RBF SVC and MLPs sized to each head (the
48-192 MLP grid is left out: on 1,000+ training sentences and 5-6 classes it dominated the run time).
Run from the repository root after ../shared/bodies/mpnet.sh:
    python benchmarks/reproduce_multiclass.py sst5            # -> benchmarks/results/sst5-reproduce/
    python benchmarks/reproduce_multiclass.py emotion 2000    # test subsample of 2,000 per seed
"""
import os
import sys

import torch

from qsetfit.bench.reproduce import reproduce
from qsetfit.training.arguments import TrainingArguments

torch.set_num_threads(1)
name = sys.argv[1]
test_limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
presets = ("screened-sst2", "screened-sst2-linear")
result = reproduce(f"../shared/data/{name}", f"benchmarks/results/{name}-reproduce",
                   body=os.path.expanduser("~/.cache/qsetfit-bodies/all-mpnet-base-v2"), seeds=3, presets=presets,
                   head_training={p: TrainingArguments.preset(p) for p in presets}, hidden_grid=(0,),
                   test_limit=test_limit, resume=True, progress=True)
print(result["table"])
