"""One training step of module 2 on the Aer engines: our batched gradient against the library default.

Module 2 with Q=8, C=2, N=2, R=2 (96 weights), <Z> on all 8 qubits, batch 32; a step is forward plus
backward with gradients for the weights and the inputs (module 1 trains upstream). Prints one row per
engine: step time, ratio to ``aer-exact`` with the batched gradient, estimator calls and PUBs, and the
simulation method. The library default (``ParamShiftEstimatorGradient``, one PUB per sample, observable and
shift) takes ~40 s, so it runs once; ``--skip-default`` leaves it out.

Noisy profiles cost seconds per simulated row (an 8-qubit density matrix, or 200 trajectories), and a step
simulates batch x (1 + 2 x 112 shifted angles) rows, so they run at ``--noisy-batch`` (default 1) and the
batch-32 column scales that step linearly (rows are independent simulations), marked "~".

Run: ``.venv/bin/python benchmarks/bench_aer.py [--repeats 3] [--skip-default] [--skip-noisy] [--noisy-batch 1]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qsetfit import HeadConfig, build_head_circuit, make_engine


def step_time(engine: torch.nn.Module, x: torch.Tensor, w: torch.Tensor, repeats: int) -> float:
    """Best wall time of forward + backward (weights and inputs) over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        start = time.perf_counter()
        out = engine(xs, ws)  # (B, 8)
        (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)).sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per engine (best is kept)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--skip-default", action="store_true", help="skip the ~40 s library-default gradient")
    parser.add_argument("--skip-noisy", action="store_true", help="skip aer-shots, aer-depolarizing, aer-device")
    parser.add_argument("--noisy-batch", type=int, default=1, help="batch of the (slow) noisy profiles' steps")
    args = parser.parse_args()

    cfg = HeadConfig(qubits=8, connectivity=2, reuploads=2, layers=2, measured=8, encoders=0)
    hc = build_head_circuit(cfg)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(-1, 1, (args.batch, 8)))
    w = torch.tensor(rng.uniform(-np.pi, np.pi, len(hc.weights)))

    full, noisy = args.batch, args.noisy_batch
    runs = [("torch", "torch", {}, args.repeats, full),
            ("aer-exact (batched gradient)", "aer-exact", {}, args.repeats, full)]
    if not args.skip_default:
        runs.append(("aer-exact (library default gradient)", "aer-exact", {"gradient": "param_shift"}, 1, full))
    if not args.skip_noisy:
        runs += [("aer-shots", "aer-shots", {}, 1, full)]
        runs += [(name, name, {}, 1, noisy) for name in ("aer-depolarizing", "aer-device")]

    print(f"module 2: Q=8 C=2 N=2 R=2, {len(hc.weights)} weights, 8 observables, batch {args.batch}; "
          f"torch threads {torch.get_num_threads()}")
    header = (f"{'engine':38s} {'batch':>5s} {'step s':>9s} {f'at {full}':>9s} {'/ batched':>10s} "
              f"{'calls':>6s} {'PUBs':>6s}  method")
    print(header)
    print("-" * len(header))
    reference = None
    for label, name, options, repeats, batch in runs:
        build = time.perf_counter()
        engine = make_engine(hc, name, **options)
        build = time.perf_counter() - build
        engine(x[:1], w)  # warm-up (transpile caches, first Aer call)
        if hasattr(engine, "reset_counters"):
            engine.reset_counters()
        seconds = step_time(engine, x[:batch], w, repeats)
        scaled = seconds * full / batch
        if reference is None and name == "aer-exact":
            reference = scaled
        ratio = f"{scaled / reference:9.1f}x" if reference else f"{'':>10s}"
        at_full = f"{scaled:9.3f}" if batch == full else f"~{scaled:8.1f}"
        calls = f"{engine.calls // repeats:6d}" if hasattr(engine, "calls") else f"{'-':>6s}"
        pubs = f"{engine.pubs_submitted // repeats:6d}" if hasattr(engine, "pubs_submitted") else f"{'-':>6s}"
        method = getattr(engine, "method", "torch statevector")
        if getattr(engine, "trajectories", 0):
            method += f" ({engine.trajectories} per input)"
        print(f"{label:38s} {batch:5d} {seconds:9.3f} {at_full} {ratio} {calls} {pubs}  {method} "
              f"(build {build:.1f} s)", flush=True)
    print("Aer threads: all cores (profile key 'threads' = 0); '~': scaled linearly from the step at that batch")


if __name__ == "__main__":
    main()
