"""CUDA against CPU on the same inputs: the noisy torch engine, the default hybrid heads, and one timing.

Run on a machine with a CUDA device (it exits 2 without one):

    PYTHONPATH=. python3 benchmarks/cuda_check.py [--tol 1e-10] [--no-timing]

Checks (each: the same module built twice with the same seed, one copy moved with ``.to("cuda")``):

1. ``make_engine(head, profile, seed=3, dtype=torch.float64)`` for ``torch-depolarizing`` and
   ``torch-trajectories`` on a 6-qubit head: outputs and the input/weight gradients of a weighted sum of them
   (trajectories are drawn on the CPU generator, so the same seed gives the same trajectories on both devices);
   then the trajectories' forward without autograd (the buffer path) at 12 qubits in their default float32,
   to 1e-5.
2. ``HybridHead(HeadConfig.preset(p), input_dim=768)`` for ``screened-sst2`` and ``screened-sst2-linear``: the
   PCA fitted on CPU (``prepare`` on 64 seeded float64 embeddings), then logits, loss and the gradients of the
   loss for every parameter and the embeddings. A step that raises is reported with its message and the
   frame it came from.
3. Timing: one forward + backward of ``torch-trajectories`` at 10 qubits, batch 256, on the GPU and on the
   CPU with all its cores (median of a few calls after a warm-up).

Prints one table; exits 1 when a difference exceeds ``--tol`` or a step raised.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from typing import Callable

import torch

from qsetfit import HeadConfig, HybridHead, build_head_circuit, make_engine

ROWS: list[tuple[str, str, str]] = []  # (check, result, status)
FAILED = False


def _record(check: str, result: str, ok: bool) -> None:
    global FAILED
    FAILED |= not ok
    ROWS.append((check, result, "ok" if ok else "FAIL"))


def _where(exc: BaseException) -> str:
    """'file:line in function' of the innermost project frame (else the innermost frame) of ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "qsetfit" in f.filename] or frames
    f = ours[-1]
    return f"{os.path.relpath(f.filename)}:{f.lineno} in {f.name}: {f.line}"


def _guarded(check: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception as exc:  # report and go on: every check runs
        _record(check, f"{type(exc).__name__}: {exc} [at {_where(exc)}]", False)
        traceback.print_exc()


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().cpu() - b.detach().cpu()).abs().max()) if a.numel() else 0.0


def _engine_step(engine: torch.nn.Module, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
    xs, ws = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    out = engine(xs, ws)
    coeff = torch.linspace(1.0, -0.6, out.shape[1], dtype=out.dtype, device=out.device)
    gx, gw = torch.autograd.grad((out * coeff).sum(), (xs, ws))
    return out, gx, gw


def check_engine(profile: str, tol: float) -> None:
    """Outputs and gradients (the autograd path), in float64: the trajectories' default is float32."""
    head = build_head_circuit(HeadConfig(qubits=6, encoders=0, measured=2, connectivity=2, reuploads=2, layers=1))
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(5, 6, dtype=torch.float64, generator=gen)
    w = torch.rand(len(head.weights), dtype=torch.float64, generator=gen)
    cpu = make_engine(head, profile, seed=3, dtype=torch.float64)
    gpu = make_engine(head, profile, seed=3, dtype=torch.float64).to("cuda")
    out_c, gx_c, gw_c = _engine_step(cpu, x, w)
    out_g, gx_g, gw_g = _engine_step(gpu, x.cuda(), w.cuda())
    assert out_g.device.type == "cuda", f"output on {out_g.device}"
    diffs = {"out": _maxdiff(out_g, out_c), "d/dx": _maxdiff(gx_g, gx_c), "d/dw": _maxdiff(gw_g, gw_c)}
    text = ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + f" (method {cpu.method})"
    _record(f"engine {profile}", text, max(diffs.values()) <= tol)


def check_forward(tol: float) -> None:
    """The no-autograd path of the trajectories (buffers, one chunk on the GPU) at 12 qubits, in the default
    float32: the same draws on both devices, so the outputs differ by float32 rounding only."""
    head = build_head_circuit(HeadConfig(qubits=12, encoders=0, measured=1, connectivity=2, reuploads=2, layers=2))
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(16, 12, generator=gen)
    w = torch.rand(len(head.weights), generator=gen)
    with torch.no_grad():
        out_c = make_engine(head, "torch-trajectories", seed=3)(x, w)
        out_g = make_engine(head, "torch-trajectories", seed=3).to("cuda")(x.cuda(), w.cuda())
    diff = _maxdiff(out_g, out_c)
    _record("forward torch-trajectories float32, no grad", f"out {diff:.1e}", diff <= tol)


def check_head(preset: str, tol: float) -> None:
    cfg = HeadConfig.preset(preset)
    emb = torch.randn(64, 768, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    labels = torch.arange(16) % cfg.classes
    heads = []
    for device in ("cpu", "cuda"):
        head = HybridHead(cfg, input_dim=768, seed=0)
        head.prepare(emb)  # PCA fitted on the CPU, before the move
        heads.append(head.to(device))
    results = []
    for head, device in zip(heads, ("cpu", "cuda")):
        batch = emb[:16].to(device).requires_grad_(True)
        logits, loss = head(batch, labels.to(device))
        loss.backward()
        grads = {n: p.grad for n, p in head.named_parameters() if p.grad is not None}
        results.append((logits, loss, batch.grad, grads))
    (lc, sc, ec, gc), (lg, sg, eg, gg) = results
    assert lg.device.type == "cuda", f"logits on {lg.device}"
    missing = sorted(set(gc) ^ set(gg))
    assert not missing, f"parameters with a gradient on one device only: {missing}"
    grad = max((_maxdiff(gg[n], gc[n]) for n in gc), default=0.0)
    diffs = {"logits": _maxdiff(lg, lc), "loss": abs(float(sg.detach()) - float(sc.detach())), "d/dparams": grad,
             "d/demb": _maxdiff(eg, ec)}
    text = ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + f" ({len(gc)} params)"
    _record(f"head {preset}", text, max(diffs.values()) <= tol)


def _time(fn: Callable[[], None], sync: Callable[[], None], repeats: int, slow: float = 30.0) -> tuple[float, int]:
    """(median seconds, calls timed): a warm-up, then ``repeats`` calls; a warm-up over ``slow`` s is the only one."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
        if i == 0 and times[0] > slow:  # keeps a slow device inside the run's time limit
            return times[0], 1
    return statistics.median(times[1:]), repeats


def time_trajectories(qubits: int = 10, batch: int = 256) -> None:
    head = build_head_circuit(HeadConfig(qubits=qubits, encoders=0, measured=2, connectivity=2, reuploads=2,
                                         layers=1))
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(batch, qubits, dtype=torch.float64, generator=gen)
    w = torch.rand(len(head.weights), dtype=torch.float64, generator=gen)
    name = torch.cuda.get_device_name(0)
    for device, repeats in (("cuda", 5), ("cpu", 2)):
        engine = make_engine(head, "torch-trajectories", seed=3).to(device)
        xd, wd = x.to(device), w.to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        seconds, runs = _time(lambda: _engine_step(engine, xd, wd), sync, repeats)
        where = name if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        ROWS.append((f"time f+b trajectories Q={qubits} B={batch} T={engine.trajectories}",
                     f"{seconds:.3f} s on {where} (median of {runs})", "-"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tol", type=float, default=1e-10, help="max abs difference allowed")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing rows")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device visible to torch; run this on a GPU machine")
        return 2
    torch.set_num_threads(os.cpu_count() or 1)
    for profile in ("torch-depolarizing", "torch-trajectories"):
        _guarded(f"engine {profile}", lambda: check_engine(profile, args.tol))
    _guarded("forward torch-trajectories", lambda: check_forward(1e-5))
    for preset in ("screened-sst2", "screened-sst2-linear"):
        _guarded(f"head {preset}", lambda: check_head(preset, args.tol))
    if not args.no_timing:
        _guarded("timing", time_trajectories)
    width = max(len(r[0]) for r in ROWS)
    print(f"\ntorch {torch.__version__}, {torch.cuda.get_device_name(0)}, tol {args.tol:g}")
    for check, result, status in ROWS:
        print(f"{status:4}  {check:<{width}}  {result}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
