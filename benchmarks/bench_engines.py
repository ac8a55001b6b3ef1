"""Forward+backward seconds of module 2 on every engine, printed as one table (issue 2, item 6).

Module 2 with C=2, N=2, R=2 and <Z> on all Q qubits, at Q = 8, 12, 14 and batch 32, 435:

- ``torch f64`` / ``torch f32``: ``qsetfit.engines.torch.statevector.TorchStatevectorEngine`` (float64 / float32);
- ``reference f64``: ``benchmarks/reference_statevector.py``, a plain gate-by-gate float64 torch statevector
  with stored-activation autograd (its outputs are asserted equal to the torch engine's, < 1e-10, before timing);
- ``QML EstimatorQNN (Aer)``: qiskit-machine-learning ``EstimatorQNN`` + ``TorchConnector``, default gradient,
  ``qiskit_aer.primitives.EstimatorV2``, ``input_gradients=True``, ``default_precision=0``; Q=8, batch 32 only, once;
- ``PennyLane default.qubit``: backprop, torch interface, the same circuit gate by gate (when installed).

One timed call is ``out = engine(x, w); out.sum().backward()`` with gradients for both the inputs x (B, Q) and
the weights w. Every cell runs in its own child process (same thread count), so a cell that runs out of memory
(the reference and PennyLane keep every intermediate state) cannot take the benchmark, or the machine, down:
the child gets an address-space limit (a cell over it is reported as out of memory), and PennyLane/QML cells
whose memory or time, extrapolated from smaller sizes of the same engine (both scale with batch x 2^Q), would
exceed the budget are skipped and marked so in the table.

Usage (from the repository root):
    .venv/bin/python benchmarks/bench_engines.py                 # full table, torch's default threads
    .venv/bin/python benchmarks/bench_engines.py --threads 1     # full table on 1 thread
    .venv/bin/python benchmarks/bench_engines.py --quick         # smoke check: Q=8 and 12, batch 32, no QML
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENGINES = {  # key -> label in the table
    "torch": "qsetfit torch f64",
    "torch32": "qsetfit torch f32",
    "reference": "reference gate-by-gate f64",
    "qml": "QML EstimatorQNN+TorchConnector (Aer)",
    "pennylane": "PennyLane default.qubit backprop",
}
FULL_SIZES = [(8, 32), (8, 435), (12, 32), (12, 435), (14, 32), (14, 435)]
QUICK_SIZES = [(8, 32), (12, 32)]
QML_SIZES = {(8, 32)}
REF_TOL = 1e-10  # max |reference - torch engine| on the outputs, asserted before timing
GIB = 1024**3


# ---------------------------------------------------------------------------------------------------------
# child: one cell
# ---------------------------------------------------------------------------------------------------------
def _problem(q: int, batch: int, dtype):
    """The head circuit and deterministic inputs x (B, Q) in [-1, 1], weights in [-pi/4, pi/4]."""
    import math

    import torch

    from qsetfit.head.circuits import HeadConfig, build_head_circuit

    hc = build_head_circuit(HeadConfig(qubits=q, connectivity=2, reuploads=2, layers=2, measured=q, encoders=0))
    gen = torch.Generator().manual_seed(1000 * q + batch)
    x = torch.rand(batch, q, generator=gen, dtype=torch.float64) * 2 - 1
    w = (torch.rand(len(hc.weights), generator=gen, dtype=torch.float64) * 2 - 1) * (math.pi / 4)
    return hc, x.to(dtype), w.to(dtype)


def _pennylane_fn(hc):
    """PennyLane QNode built gate by gate (RY/CNOT) from the Qiskit circuit; returns f(x, w) -> (B, Q)."""
    import pennylane as qml
    import torch

    from benchmarks.reference_statevector import ReferenceStatevector

    ops = ReferenceStatevector(hc.circuit, hc.inputs, hc.weights, hc.observables).ops  # parsed affine angles
    n = hc.circuit.num_qubits
    dev = qml.device("default.qubit", wires=n)

    def angle(terms, const, x, w):
        a = torch.full((), const, dtype=torch.float64)
        for kind, col, coeff in terms:
            a = a + coeff * (x[:, col] if kind == "x" else w[col])
        return a

    @qml.qnode(dev, interface="torch", diff_method="backprop")
    def circuit(x, w):
        for op in ops:
            if op[0] == "ry":
                qml.RY(angle(op[2], op[3], x, w), wires=op[1])
            else:
                qml.CNOT(wires=[op[1], op[2]])
        return [qml.expval(qml.PauliZ(k)) for k in range(n)]  # qubit k of Qiskit = wire k

    return lambda x, w: torch.stack(list(circuit(x, w)), dim=1)


def _qml_fn(hc, w0, threads: int):
    """EstimatorQNN + TorchConnector on Aer EstimatorV2 with its default gradient; returns (f(x), weight)."""
    from qiskit_aer.primitives import EstimatorV2
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    estimator = EstimatorV2(options={"backend_options": {"max_parallel_threads": threads}})
    qnn = EstimatorQNN(
        circuit=hc.circuit, estimator=estimator, observables=hc.observables, input_params=hc.inputs,
        weight_params=hc.weights, input_gradients=True, default_precision=0.0,
    )
    conn = TorchConnector(qnn, initial_weights=w0.detach().numpy())
    return (lambda x, w: conn(x)), conn.weight


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def run_cell(spec: dict) -> dict:
    """Time one (engine, Q, batch) cell in this process; returns a JSON-able result."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(spec["threads"])
    kind, q, batch = spec["engine"], spec["q"], spec["batch"]
    from qsetfit.engines.torch.statevector import TorchStatevectorEngine

    dtype = torch.float32 if kind == "torch32" else torch.float64
    hc, x64, w64 = _problem(q, batch, torch.float64)
    ref_engine = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)  # float64, the yardstick
    xr, wr = x64.clone().requires_grad_(), w64.clone().requires_grad_()
    want = ref_engine(xr, wr)
    want.sum().backward()
    want, want_gx, want_gw = want.detach(), xr.grad, wr.grad

    weight = None
    if kind in ("torch", "torch32"):
        eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables, dtype=dtype)
        fn = eng
    elif kind == "reference":
        from benchmarks.reference_statevector import ReferenceStatevector

        fn = ReferenceStatevector(hc.circuit, hc.inputs, hc.weights, hc.observables)
    elif kind == "pennylane":
        fn = _pennylane_fn(hc)
    elif kind == "qml":
        fn, weight = _qml_fn(hc, w64, spec["threads"])
    else:
        raise ValueError(kind)

    base_rss = _rss_gib()
    if spec.get("mem_limit_gib"):  # address-space cap for this child: fail with MemoryError, not the OOM killer
        cap = int(_vsize_bytes() + spec["mem_limit_gib"] * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    x, w = x64.to(dtype), w64.to(dtype)
    with torch.no_grad():  # correctness first (no stored activations needed)
        out = fn(x, w) if weight is None else fn(x, None)
    diff = (out.double() - want).abs().max().item()
    if kind == "reference" and not diff < REF_TOL:
        raise AssertionError(f"reference vs torch engine: max |diff| = {diff:.3e} >= {REF_TOL}")

    def once():
        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_() if weight is None else weight
        if weight is not None and weight.grad is not None:
            weight.grad = None
        start = time.perf_counter()
        res = fn(xg, wg)
        res.sum().backward()
        return time.perf_counter() - start, xg.grad, wg.grad

    times = []
    if kind == "qml":  # ~40 s a call: run once
        t, gx, gw = once()
        times.append(t)
    else:
        t0, gx, gw = once()  # warm-up
        if t0 >= 20:  # slow cells: the warm-up counts, 3 runs in all
            times.append(t0)
            extra = min(spec["repeats"], 3) - 1
        elif t0 >= 2:
            extra = min(spec["repeats"], 3)
        else:
            extra = spec["repeats"]
        for _ in range(extra):
            t, gx, gw = once()
            times.append(t)
    gdiff = max((gx.double() - want_gx).abs().max().item(), (gw.double() - want_gw).abs().max().item())
    return {
        "seconds": statistics.median(times), "times": times, "diff": diff, "grad_diff": gdiff,
        "peak_gib": _rss_gib() - base_rss, "threads": torch.get_num_threads(),
    }


def _vsize_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _mem_available_gib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GIB
    return 8.0


# ---------------------------------------------------------------------------------------------------------
# parent: the table
# ---------------------------------------------------------------------------------------------------------
def _child(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--cell", json.dumps(spec)]
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"skip": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1][7:])
    err = (proc.stderr.strip().splitlines() or ["?"])[-1]
    if "MemoryError" in proc.stderr or "can't allocate memory" in proc.stderr or "DefaultCPUAllocator" in proc.stderr:
        return {"skip": f"out of memory (limit {spec.get('mem_limit_gib', 0):.0f} GiB)"}
    if proc.returncode < 0:
        return {"skip": f"killed (signal {-proc.returncode})"}
    if "AssertionError" in proc.stderr:
        raise SystemExit(f"correctness check failed for {spec}: {err}")
    return {"skip": f"failed: {err[:80]}"}


def _estimate(done: dict, kind: str, q: int, batch: int, key: str) -> float | None:
    """Extrapolate a measured quantity of ``kind`` to (q, batch), proportional to batch * 2^q."""
    sizes = [(qq, bb) for (k, qq, bb), r in done.items() if k == kind and key in r]
    if not sizes:
        return None
    qq, bb = max(sizes, key=lambda s: s[1] * 2 ** s[0])
    return done[(kind, qq, bb)][key] * (batch * 2**q) / (bb * 2**qq)


def _fmt_ratio(num: float | None, den: float | None) -> str:
    if num is None or den is None or den <= 0:
        return "-"
    r = num / den
    if r < 0.01:
        return f"{r:.1e}x"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) in every cell")
    parser.add_argument("--quick", action="store_true", help="only Q=8 and Q=12 at batch 32 (smoke check)")
    parser.add_argument("--sizes", help="comma list of QxB to run instead, e.g. 14x435 (partial table)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of fast cells (slow ones run 3x)")
    parser.add_argument("--engines", default=None,
                        help=f"comma list of {', '.join(ENGINES)} (default: all; with --quick all but qml)")
    parser.add_argument("--slow-limit", type=float, default=120.0,
                        help="skip PennyLane/QML cells whose estimated seconds per call exceed this")
    parser.add_argument("--mem-gib", type=float, default=None,
                        help="memory budget of one cell (default: 80%% of MemAvailable at start)")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.cell:  # child mode
        result = run_cell(json.loads(args.cell))
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    default = [e for e in ENGINES if not (args.quick and e == "qml")]  # QML alone takes minutes
    engines = [e.strip() for e in args.engines.split(",") if e.strip()] if args.engines else default
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s) {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    try:
        import pennylane  # noqa: F401

        have_pl = True
        pl_version = pennylane.__version__
    except ImportError:
        have_pl = False
        pl_version = None
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = [tuple(int(v) for v in item.lower().split("x")) for item in args.sizes.split(",")]
    mem_gib = args.mem_gib or 0.8 * _mem_available_gib()

    import qiskit
    import qiskit_aer
    import qiskit_machine_learning

    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = (
        f"{stamp}  torch {torch.__version__}  torch.get_num_threads() = {threads}  cpus = {os.cpu_count()}  "
        f"qiskit {qiskit.__version__}  aer {qiskit_aer.__version__}  qml {qiskit_machine_learning.__version__}  "
        f"pennylane {pl_version or 'not installed'}  python {platform.python_version()}"
    )
    print(header, flush=True)
    print(_engine_version(), flush=True)
    load0 = os.getloadavg()[0]
    print(f"load average at start: {load0:.2f}; memory budget per cell: {mem_gib:.1f} GiB", flush=True)

    done: dict[tuple[str, int, int], dict] = {}
    for q, batch in sizes:
        for kind in engines:
            if kind == "qml" and (q, batch) not in QML_SIZES:
                continue
            key = (kind, q, batch)
            if kind == "pennylane" and not have_pl:
                done[key] = {"skip": "not installed (pip install pennylane)"}
                continue
            if kind == "pennylane":  # the reference always runs (under the memory cap): it is the yardstick
                est_mem = _estimate(done, kind, q, batch, "peak_gib")
                if est_mem is not None and est_mem > mem_gib:
                    done[key] = {"skip": f"skipped: needs ~{est_mem:.0f} GiB (est.) > {mem_gib:.0f} GiB"}
                    print(f"  {kind:9s} Q={q:2d} B={batch:3d}: {done[key]['skip']}", flush=True)
                    continue
            if kind in ("pennylane", "qml"):
                est_s = _estimate(done, kind, q, batch, "seconds")
                if est_s is not None and est_s > args.slow_limit:
                    done[key] = {"skip": f"skipped: ~{est_s:.0f} s/call (est.) > {args.slow_limit:.0f} s"}
                    print(f"  {kind:9s} Q={q:2d} B={batch:3d}: {done[key]['skip']}", flush=True)
                    continue
            spec = {"engine": kind, "q": q, "batch": batch, "threads": threads, "repeats": args.repeats,
                    "mem_limit_gib": mem_gib}
            t = time.perf_counter()
            done[key] = _child(spec, timeout=1800)
            r = done[key]
            msg = r.get("skip") or (
                f"{r['seconds']:.3f} s (runs {', '.join(f'{v:.2f}' for v in r['times'])}), "
                f"max|d out| {r['diff']:.1e}, max|d grad| {r['grad_diff']:.1e}, peak {r['peak_gib']:.2f} GiB"
            )
            print(f"  {kind:9s} Q={q:2d} B={batch:3d}: {msg}  [{time.perf_counter() - t:.0f} s wall]", flush=True)
    load1 = os.getloadavg()[0]

    # ---- the table ------------------------------------------------------------------------------------
    cols = ["Q", "batch", "engine", "seconds", "runs", "ref s / s", "torch s / s", "max|d out|", "max|d grad|",
            "peak GiB"]
    rows = []
    for q, batch in sizes:
        ref = done.get(("reference", q, batch), {}).get("seconds")
        tor = done.get(("torch", q, batch), {}).get("seconds")
        for kind in engines:
            r = done.get((kind, q, batch))
            if r is None:
                continue
            if "skip" in r:
                rows.append([str(q), str(batch), ENGINES[kind], r["skip"], "", "", "", "", "", ""])
                continue
            rows.append([
                str(q), str(batch), ENGINES[kind], f"{r['seconds']:.3f}", str(len(r["times"])),
                _fmt_ratio(ref, r["seconds"]), _fmt_ratio(tor, r["seconds"]), f"{r['diff']:.0e}",
                f"{r['grad_diff']:.0e}", f"{r['peak_gib']:.2f}",
            ])
    title = (f"module 2 forward+backward (C=2, N=2, R=2, <Z> on all Q qubits), median seconds; "
             f"torch.get_num_threads() = {threads}; {stamp}")
    _print_table(title, cols, rows)
    print("ref s / s: reference seconds / row seconds (speed-up over the reference); torch s / s: the same "
          "against qsetfit torch f64; max|d|: vs qsetfit torch f64 (outputs; input and weight gradients); "
          "peak GiB: child's peak RSS growth after set-up.")
    print(f"load average (1 min): {load0:.2f} at start, {load1:.2f} at end (cpus = {os.cpu_count()})")
    print(_target_line(done, sizes))
    return 0


def _engine_version() -> str:
    """Which torch engine was measured: git HEAD, and whether its files differ from it (others edit the tree)."""
    files = ["qsetfit/engines/torch/statevector.py", "qsetfit/engines/torch/evolve.py", "qsetfit/engines/torch/gates.py"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *files], capture_output=True, text=True,
                               cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "torch engine version: unknown (no git)"
    return f"torch engine: git {head}" + (" with uncommitted changes to its files" if dirty else " (its files clean)")


def _print_table(title: str, cols: list[str], rows: list[list[str]]) -> None:
    """Plain-text table (rich would wrap it on narrow terminals; this pastes into a README as it is)."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    right = {0, 1, 3, 4, 5, 6, 7, 8, 9}

    def line(vals):
        cells = []
        for i, v in enumerate(vals):
            if i == 3 and not vals[4] and len(v) > widths[3]:  # a skip note spans the numeric columns
                return "| " + " | ".join(cells + [v]) + " |"
            cells.append(v.rjust(widths[i]) if i in right else v.ljust(widths[i]))
        return "| " + " | ".join(cells) + " |"

    widths[3] = max([len(cols[3])] + [len(r[3]) for r in rows if r[4]])
    print()
    print(title)
    print(line(cols))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()


def _target_line(done: dict, sizes: list[tuple[int, int]]) -> str:
    tor = done.get(("torch", 14, 435), {})
    ref = done.get(("reference", 14, 435), {})
    parts = []
    if "seconds" in tor and "seconds" in ref:
        ratio = ref["seconds"] / tor["seconds"]
        verdict = "MET" if ratio >= 3 else "NOT MET"
        parts.append(f"speed target, Q=14 batch 435: torch f64 {tor['seconds']:.2f} s vs reference "
                     f"{ref['seconds']:.2f} s = {ratio:.2f}x (target >= 3x): {verdict}")
    else:
        parts.append("speed target, Q=14 batch 435: not measured in this run")
    wins, losses, missing, margins = 0, [], [], []
    for q, batch in sizes:
        t = done.get(("torch", q, batch), {}).get("seconds")
        p = done.get(("pennylane", q, batch), {})
        if t is None:
            continue
        if "seconds" not in p:
            missing.append(f"Q={q}/B={batch} ({p.get('skip', 'not run')})")
            continue
        margins.append(p["seconds"] / t)
        if t < p["seconds"]:
            wins += 1
        else:
            losses.append(f"Q={q}/B={batch}")
    if margins:
        verdict = "MET" if not losses else f"NOT MET (slower at {', '.join(losses)})"
        parts.append(f"vs PennyLane default.qubit: torch f64 faster at {wins} of {len(margins)} measured sizes, "
                     f"by {min(margins):.1f}x to {max(margins):.1f}x: {verdict}")
    else:
        parts.append("vs PennyLane default.qubit: not measured")
    if missing:
        parts.append("PennyLane not measured at " + "; ".join(missing))
    return "\n".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
