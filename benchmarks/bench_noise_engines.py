"""Noisy-forward throughput: the noisy torch engine's trajectories against Aer's trajectory method, same circuit.

Module 2 of the paper (``HeadConfig(qubits=Q, connectivity=2, reuploads=2, layers=2, measured=1,
encoders=0)``: C=2, N=2, R=2, <Z> of qubit 0) under the ``depolarizing-1e-3`` noise model (p1 = 1e-4 after
every one-qubit gate, p2 = 1e-3 after every CX, readout 1e-2), forward only, exact expectation values:

- torch: ``make_engine(hc, "torch-trajectories", trajectories=T)``, Pauli-error trajectories on fused gate
  blocks (``engines/torch/fused_trajectories.py``; ``torch.set_num_threads(k)``: k threads run chunks of rows),
  in float64 like Aer; ``--float32`` adds a column for the engine in float32, the trajectories' default
  dtype since it is faster (Aer stays in double precision);
- Aer: ``make_engine(hc, "aer-depolarizing", method="statevector", trajectories=T, threads=k)``, i.e.
  qiskit-aer's statevector method with the noise model, T trajectories (shots) per input
  (``max_parallel_threads=k``).

Throughput = inputs x trajectories per second of wall time, repeating one call until a time slice has passed
(after an untimed warm-up call). The engines take turns: ``--rounds`` rounds of one slice each (``--seconds`` /
``--rounds``), and every ratio is the median over the rounds of the ratio within a round, so drifts of the
machine's speed between rounds (20-40% within a minute on the shared 2-core box) cancel; rates are medians too. Both count T trajectories per input, but they are not the same
estimator: torch simulates the error-free branch once and draws its T trajectories conditioned on at least
one error, so at equal T its standard error is smaller. ``torch/Aer`` does not credit that; ``var gain`` is
the variance of one unconditional trajectory (what Aer averages) over T x torch's squared standard error
(median over the inputs; both from the same torch draws), and ``equal-s.e.`` = torch/Aer x that gain: the
speed-up at equal standard error. ``agree`` checks |torch - Aer| <= 5 sqrt(se_torch^2 + 1/T) on every input.

Run: ``.venv/bin/python benchmarks/bench_noise_engines.py [--qubits 10,12,14] [--threads 1,2] [--seconds 3]
[--rounds 3] [--torch-batch 32] [--float32]``
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import time

import numpy as np
import torch

from qsetfit import HeadConfig, build_head_circuit, make_engine
from qsetfit.engines.torch.fused_trajectories import evolve_fused
from qsetfit.engines.torch.trajectories import sample_errors


def throughput(engine: torch.nn.Module, x: torch.Tensor, w: torch.Tensor, per_input: int,
               seconds: float, warm_up: bool = True) -> tuple[float, int, torch.Tensor]:
    """(inputs x trajectories per second, calls timed, last output) of repeated calls on ``x``."""
    with torch.no_grad():
        if warm_up:
            engine(x[:1], w)  # transpile and simulator caches
        calls, start = 0, time.perf_counter()
        while True:
            out = engine(x, w)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return calls * len(x) * per_input / elapsed, calls, out


@torch.no_grad()
def variance_gain(engine: torch.nn.Module, x: torch.Tensor, w: torch.Tensor, per_input: int) -> float:
    """Median over inputs of Var(one unconditional trajectory's <Z>) / (T se_torch^2), from one torch draw.

    A plain trajectory is error-free with probability P0 (value z_c) or, otherwise, one of torch's conditioned
    trajectories (mean m_e, variance s_e^2): Var = P0 z_c^2 + (1 - P0)(s_e^2 + m_e^2) - m^2, with
    m = P0 z_c + (1 - P0) m_e; torch's estimator has variance (1 - P0)^2 s_e^2 / T.
    """
    program = engine.program
    sample = sample_errors(program, len(x) * per_input, torch.Generator().manual_seed(1))
    clean, noisy, _ = evolve_fused(program, engine.plan, program.matrices(x, w), len(x), per_input, sample,
                                   engine.read_diag)
    z_c, traj = clean[:, 0], noisy[..., 0]  # (B,), (B, T)
    p0, m_e, s_e2 = sample.p0, traj.mean(1), traj.var(1)
    m = p0 * z_c + (1 - p0) * m_e
    plain = p0 * z_c**2 + (1 - p0) * (s_e2 + m_e**2) - m**2
    return float(torch.median(plain / ((1 - p0) ** 2 * s_e2)))


def load() -> str:
    """The machine's load, as ``uptime`` prints it."""
    return subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip() or str(os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qubits", default="10,12,14", help="module-2 widths Q")
    parser.add_argument("--threads", default="1,2", help="thread counts (torch threads; Aer max_parallel_threads)")
    parser.add_argument("--trajectories", type=int, default=64, help="T: trajectories per input, both engines")
    parser.add_argument("--torch-batch", type=int, default=8, help="inputs per torch call")
    parser.add_argument("--aer-batch", type=int, default=1, help="inputs per Aer call")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed wall seconds per cell and engine")
    parser.add_argument("--rounds", type=int, default=1, help="turns the engines take within a cell (median ratio)")
    parser.add_argument("--float32", action="store_true", help="also time the torch engine in float32")
    args = parser.parse_args()

    t = args.trajectories
    print(f"noisy forward, depolarizing-1e-3 (p1=1e-4, p2=1e-3, readout 1e-2), T={t} trajectories per input; "
          f"torch batch {args.torch_batch}, Aer batch {args.aer_batch}; >= {args.seconds:g} s timed per cell and "
          f"engine, in {args.rounds} round(s) of turns (rates and ratios: medians over the rounds)")
    print(f"load before: {load()}  ({os.cpu_count()} CPUs)")
    header = (f"{'Q':>3s} {'thr':>3s} {'P0':>6s} {'torch traj/s':>13s} {'Aer traj/s':>11s} {'torch/Aer':>9s} "
              f"{'agree':>6s} {'var gain':>9s} {'equal-s.e.':>10s}" + (f" {'f32 traj/s':>11s} {'f32/Aer':>8s}" if args.float32 else ""))
    print(header)
    print("-" * len(header))
    for q in [int(v) for v in args.qubits.split(",")]:
        hc = build_head_circuit(HeadConfig(qubits=q, connectivity=2, reuploads=2, layers=2, measured=1, encoders=0))
        rng = np.random.default_rng(q)
        x = torch.tensor(rng.uniform(-1, 1, (args.torch_batch, q)))
        w = torch.tensor(rng.uniform(-np.pi, np.pi, len(hc.weights)))
        for threads in [int(v) for v in args.threads.split(",")]:
            torch.set_num_threads(threads)
            ours = make_engine(hc, "torch-trajectories", trajectories=t, seed=0, dtype=torch.float64)
            aer = make_engine(hc, "aer-depolarizing", method="statevector", trajectories=t, threads=threads, seed=0)
            turns = {"torch": (ours, x, w), "aer": (aer, x[: args.aer_batch], w)}
            if args.float32:
                single = make_engine(hc, "torch-trajectories", trajectories=t, seed=0, dtype=torch.float32)
                turns["f32"] = (single, x.float(), w.float())
            rates: dict[str, list[float]] = {name: [] for name in turns}
            outs: dict[str, torch.Tensor] = {}
            for r in range(args.rounds):  # turns: a drift of the machine's speed hits both sides of a round
                for name, (engine, xs, ws) in turns.items():
                    rate, _, outs[name] = throughput(engine, xs, ws, t, args.seconds / args.rounds, warm_up=r == 0)
                    rates[name].append(rate)
            out_t, out_a, se = outs["torch"], outs["aer"], ours.last_result.stderr
            rate_t, rate_a = float(np.median(rates["torch"])), float(np.median(rates["aer"]))
            ratio = float(np.median(np.array(rates["torch"]) / np.array(rates["aer"])))
            p0 = math.exp(-sum(-math.log1p(-g.depolarizing * (1 - 4.0 ** -len(g.qubits)))
                               for g in ours.program.gates))
            gain = variance_gain(ours, x, w, t)
            n = len(out_a)
            agree = bool(((out_t[:n] - out_a).abs() <= 5 * torch.sqrt(se[:n] ** 2 + 1.0 / t)).all())
            f32 = ""
            if args.float32:
                ratio_f = float(np.median(np.array(rates["f32"]) / np.array(rates["aer"])))
                f32 = f" {float(np.median(rates['f32'])):11.0f} {ratio_f:8.1f}"
            print(f"{q:3d} {threads:3d} {p0:6.3f} {rate_t:13.0f} {rate_a:11.0f} {ratio:9.1f} "
                  f"{'yes' if agree else 'NO':>6s} {gain:9.1f} {gain * ratio:10.0f}{f32}", flush=True)
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
