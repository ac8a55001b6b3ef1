"""``qsetfit bench noise``: a trained head's accuracy under gate noise, finite shots and fake-device noise.

The grid (DESIGN §3 profiles, built here in code and written to ``OUT/profiles/``, so any cell re-runs by
path: ``qsetfit evaluate RUN --backend OUT/profiles/backends/p2-0.001.toml``):

- depolarizing: p2 in {0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2} after every two-qubit gate, p1 = p2 / 10 after every
  one-qubit gate, a configurable symmetric readout error, exact expectation values;
- shots: {64, 256, 1024, 4096, exact} measured shots per input, no gate noise;
- devices: ``NoiseModel.from_backend`` of named fake IBM backends on the circuit transpiled to their ISA.

Each cell states how Aer ran it (``method``): exact statevector, density matrix, or statevector noise
trajectories (N per input) where a density matrix is too large. Stochastic cells (shots, trajectories) run
once per seed; deterministic ones once.

Only examples whose prediction the cell can change are simulated, which is exact, not an approximation.
The logits are linear in module 2's read-outs z (``linear([f, z])``; f comes from module 1, always exact),
so an example whose class wins for every z in a box keeps it. The box is [-1, 1]^Qm for shots and device
noise; for depolarizing noise it is (1 - 2r) [P0 z - (1 - P0), P0 z + (1 - P0)] (``noise_box``): with
probability P0 no gate suffers a Pauli error and the state is the ideal one, a symmetric readout flip r maps
z to (1 - 2r) z. Low-noise cells thus simulate few examples; the count is in each row.

Wide heads make noise trajectories expensive (a 14-qubit trajectory is a full statevector run, ~50/s on one
core). A cell whose undecided examples would cost more than ``budget`` statevector runs per seed simulates a
seeded random sample of them instead (``budget // trajectories`` examples, a fresh sample per seed) and
estimates the accuracy as the exact accuracy plus the mean change in correctness over the sample, scaled to
all undecided examples: unbiased, and with a small interval when noise rarely flips a prediction (a
difference estimator). The 95% sampling interval is in ``sampling_ci95``, the sample size in the method text.
``budget=None`` simulates every undecided example.

That is the Aer path (``simulator="aer"``). By default (``simulator="torch"``) the depolarizing and shot cells
run on the noisy torch engine instead, over every undecided example, each with its method, trajectories and
standard error (``noise_cells.py``); device cells stay on Aer.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from qsetfit.bench import noise_cells
from qsetfit.bench.baselines import subsample
from qsetfit.bench.noise_grid import CHUNK, DEFAULTS, QUICK, Cell, noise_grid, on_axes, write_profiles
from qsetfit.engines.base import EngineInfo
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead
from qsetfit.io.persistence import atomic_write_bytes, read_resumable, write_json

logger = logging.getLogger(__name__)

def no_error_probability(circuit: Any, cell: Cell) -> float | None:
    """P0: the chance that no gate of ``circuit`` suffers a Pauli error in a depolarizing cell; None otherwise.

    Aer's ``depolarizing_error(p, n)`` is rho -> (1 - p) rho + p I / 2^n, i.e. a non-identity Pauli with
    probability p (4^n - 1) / 4^n; the noisy state is therefore P0 rho_ideal + (1 - P0) sigma for some state sigma.
    """
    if cell.axis != "p2":
        return None
    if cell.noise is None:
        return 1.0
    p0 = 1.0
    for inst in circuit.data:
        n = len(inst.qubits)
        rate = {1: cell.noise["p1"], 2: cell.noise["p2"]}.get(n, 0.0)
        p0 *= 1.0 - rate * (4**n - 1) / 4**n
    return p0


def noise_box(circuit: Any, cell: Cell, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The box [low, high] each noisy read-out of ``cell`` lies in, given the exact read-outs ``z`` (N, Qm).

    Depolarizing cells: <Z>_noisy = P0 z + (1 - P0) <Z>_sigma with |<Z>_sigma| <= 1, then a symmetric readout
    flip r scales it by (1 - 2r). Shots and device noise: the whole [-1, 1].
    """
    p0 = no_error_probability(circuit, cell)
    if p0 is None:
        return -torch.ones_like(z), torch.ones_like(z)
    scale = 1.0 - 2.0 * (cell.noise or {}).get("readout", 0.0)
    return scale * (p0 * z - (1.0 - p0)), scale * (p0 * z + (1.0 - p0))


def decided_mask(head: HybridHead, features: torch.Tensor, predictions: torch.Tensor, low: torch.Tensor,
                 high: torch.Tensor) -> np.ndarray:
    """(N,) bool: True where ``predictions`` wins for every read-out z in the box [low, high].

    With logits = A f + B z + c, class k beats class j on the whole box iff
    (A f + c)_k - (A f + c)_j + sum_m min((B_km - B_jm) low_m, (B_km - B_jm) high_m) > 0.

    Args:
        head: a hybrid head (``readout_weights`` splits its final layer into A, B, c).
        features: (N, Q) float64 module-1 features f.
        predictions: (N,) the class to test for each example (e.g. its exact prediction).
        low, high: (N, Qm) the box's corners (within [-1, 1]).
    """
    a, b, c = head.readout_weights()  # (K, Q), (K, Qm), (K,)
    k = predictions.long()
    base = features @ a.T + c  # (N, K)
    slope = b[k][:, None, :] - b[None, :, :]  # (N, K, Qm): B_k - B_j
    worst = torch.minimum(slope * low[:, None, :], slope * high[:, None, :]).sum(-1)  # (N, K)
    margin = base.gather(1, k[:, None]) - base + worst  # (N, K)
    margin[torch.arange(len(k)), k] = torch.inf
    return (margin.min(dim=1).values > 1e-9).numpy()


# ---- evaluation ----------------------------------------------------------------------------------------
@torch.no_grad()
def _readouts(head: HybridHead, features: torch.Tensor, *, bar: Any = None) -> torch.Tensor:
    """(N, Qm) module-2 read-outs on the head's current engine, in chunks."""
    out = [torch.zeros(0, head.config.measured, dtype=torch.float64)]
    assert head.quantum is not None  # the noise benchmark's heads always have module 2
    for start in range(0, len(features), CHUNK):
        out.append(head.quantum(features[start : start + CHUNK]).to(torch.float64))
        if bar is not None:
            bar.update(len(out[-1]))
    return torch.cat(out)


def _predict(head: HybridHead, features: torch.Tensor, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return head.readout(features, z).argmax(dim=1).numpy()


def runs_per_input(info: EngineInfo) -> int:
    """Statevector runs Aer spends on one input: its trajectories, or one per shot when shots sample a noisy
    statevector; 0 where the cost does not grow with noise (ideal statevector, density matrix)."""
    if info.method != "statevector_trajectories":
        return 0
    return int(info.trajectories or info.shots)


def sampling_ci95(differences: np.ndarray, undecided: int, n: int) -> float:
    """Half-width of the 95% interval of an accuracy estimated from ``differences`` (noisy minus exact
    correctness, -1/0/1) on a simple random sample of the ``undecided`` of ``n`` examples (normal
    approximation, finite-population corrected); 0 when every undecided example was simulated."""
    m = len(differences)
    if m >= undecided or m < 2:
        return 0.0
    spread = float(np.std(differences, ddof=1))
    return 1.96 * (undecided / n) * spread / float(np.sqrt(m)) * float(np.sqrt((undecided - m) / (undecided - 1)))


def evaluate_cell(head: HybridHead, backend: Path, features: torch.Tensor, labels: np.ndarray, exact: np.ndarray,
                  simulate: np.ndarray, *, seeds: int, budget: int | None = None, progress: bool = False
                  ) -> dict[str, Any]:
    """Accuracy and agreement with the exact predictions of one cell, over ``seeds`` (1 if deterministic).

    Args:
        head: the trained head.
        backend: the cell's backend profile file.
        features: (N, Q) module-1 features.
        labels: (N,) label ids.
        exact: (N,) predictions with exact module 2.
        simulate: (N,) bool, the examples the cell may change (the others keep ``exact``).
        seeds: runs of a stochastic cell.
        budget: statevector runs per seed; above it a random sample of the undecided examples is simulated.
            A torch profile (``engine = "torch"``) simulates every undecided example (``noise_cells``).
    """
    from qsetfit.profiles import load_backend_profile

    if load_backend_profile(str(backend)).engine == "torch":
        return noise_cells.evaluate_torch_cell(head, backend, features, labels, exact, simulate, seeds=seeds,
                                               progress=progress)
    accuracies, agreements, seconds, cis, method, stochastic = [], [], [], [], "not simulated", False
    undecided = np.flatnonzero(simulate)
    n, u, sampled = len(labels), len(undecided), len(undecided)
    exact_accuracy = float((exact == labels).mean())
    for seed in range(seeds):
        t0 = time.perf_counter()
        correct, agree, ci = exact_accuracy, 1.0, 0.0
        if len(undecided):
            head.set_engine(str(backend), seed=seed)
            assert head.quantum is not None  # the noise benchmark's heads always have module 2
            info = head.quantum.engine.describe()
            method, stochastic = info.in_words(), info.stochastic
            pick = _within_budget(undecided, runs_per_input(info), budget, seed)
            sampled = len(pick)
            with tqdm(total=len(pick), desc=f"{backend.stem} seed {seed}", unit="input", leave=False,
                      disable=not progress) as bar:
                picked = features[torch.as_tensor(pick)]
                predictions = _predict(head, picked, _readouts(head, picked, bar=bar))
            # difference estimator: exact accuracy + the mean change in correctness the noise causes
            differences = (predictions == labels[pick]).astype(float) - (exact[pick] == labels[pick]).astype(float)
            correct = exact_accuracy + u * float(differences.mean()) / n
            agree = (n - u + u * float((predictions == exact[pick]).mean())) / n
            ci = sampling_ci95(differences, u, n)
            if sampled < u:
                method += f", {sampled} of {u} undecided inputs sampled per seed"
        accuracies.append(correct)
        agreements.append(agree)
        cis.append(ci)
        seconds.append(time.perf_counter() - t0)
        if not stochastic:
            break
    head.set_engine("torch")
    # independent samples per seed: the interval of their mean shrinks with the number of seeds
    return {"simulator": "aer", "method": method, "stochastic": stochastic, "simulated": int(sampled),
            "undecided": int(u), "sampling_ci95": float(np.mean(cis) / np.sqrt(len(cis)))
            } | noise_cells.seed_summary(accuracies, agreements, seconds)


def _within_budget(undecided: np.ndarray, cost: int, budget: int | None, seed: int) -> np.ndarray:
    """The undecided inputs to simulate: all, or a seeded random sample when they would cost over ``budget``."""
    if budget is None or not cost or len(undecided) * cost <= budget:
        return undecided
    rng = np.random.default_rng([seed, len(undecided)])
    return np.sort(rng.choice(undecided, size=max(2, budget // cost), replace=False))


# ---- the benchmark -------------------------------------------------------------------------------------
def bench_noise(run: str | Path, out: str | Path, *, data: str | None = None,
                p2_grid: Sequence[float] | None = None, readout: float = 0.0,
                shots_grid: Sequence[int | str] | None = None, fake_backends: Sequence[str] | None = None,
                seeds: int | None = None, trajectories: int | None = None, test_limit: int | None = None,
                budget: int | None = None, quick: bool = False, resume: bool = False, progress: bool = True,
                simulator: str = "torch", grid: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate a saved run over the noise grid; write noise.csv, noise.json, plots and profiles into ``out``.

    The outputs are rewritten after every cell (``"partial": true`` until the last), so an interrupted run
    keeps what it finished; ``resume`` reuses those cells when the run, data and settings are the same.

    Args:
        run: run directory of ``qsetfit train``.
        out: output folder.
        data: labelled data (default: the run's own test split).
        p2_grid, readout, shots_grid, fake_backends, trajectories: the grid (``noise_grid``).
        seeds: runs per stochastic cell.
        test_limit: score a seeded subsample of the test set.
        budget: statevector runs per cell and seed before undecided examples are sampled (0: no limit).
        quick: defaults from ``QUICK`` instead of ``DEFAULTS`` for every argument left None.
        resume: keep the cells an earlier run into ``out`` finished with the same settings. progress: bars.
        simulator: "torch" (depolarizing and shot cells on the noisy torch engine) or "aer" (every cell on Aer).
        grid: the axes to run, of ``noise_grid.AXES`` ("p2", "shots", "device"; default all).

    Returns:
        {"cells": one row per cell, "n", "exact_accuracy", "settings", "files", "partial"}.
    """
    from qsetfit import workflow
    from qsetfit.modeling import QSetFitModel

    given = {"p2_grid": p2_grid, "shots_grid": shots_grid, "fake_backends": fake_backends, "seeds": seeds,
             "trajectories": trajectories, "test_limit": test_limit, "budget": budget, "grid": grid}
    opts = _options(given, quick)
    cells = noise_grid(p2_grid=opts["p2_grid"], readout=readout, shots_grid=opts["shots_grid"],
                       fake_backends=opts["fake_backends"], trajectories=opts["trajectories"])
    cells = noise_cells.on_simulator(on_axes(cells, opts["grid"]), simulator)
    model = QSetFitModel.load(run)
    profiles = write_profiles(cells, Path(out) / "profiles")
    dataset = subsample(workflow.evaluation_set(Path(run), data, model), opts["test_limit"], 0)
    head, labels = model.trained_head, dataset.label_ids(model.label_names)
    features, z, exact = _exact(model, dataset.texts, progress)
    settings = {"data": data, "readout": readout, "quick": quick, "qubits": head.config.qubits,
                "simulator": simulator, "torch_threads": torch.get_num_threads()} | opts
    result: dict[str, Any] = {"run": str(run), "n": len(labels), "exact_accuracy": float((exact == labels).mean()), "cells": [],
              "settings": settings, "partial": True}
    done = _finished_cells(Path(out), result) if resume else {}
    assert head.quantum is not None  # a QSetFitModel's head always has module 2
    circuit = head.quantum.head_circuit.circuit
    for cell in tqdm(cells, desc="noise grid", unit="cell", disable=not progress):
        if cell.name in done:
            result["cells"].append(done[cell.name])
            continue
        simulate = ~decided_mask(head, features, torch.as_tensor(exact), *noise_box(circuit, cell, z))
        outcome = evaluate_cell(head, profiles[cell.name], features, labels, exact, simulate, seeds=opts["seeds"],
                                budget=opts["budget"] or None, progress=progress)
        result["cells"].append(_cell_row(cell, circuit, profiles[cell.name]) | outcome)
        result["files"] = write_outputs(Path(out), result)
    result["partial"] = False
    result["files"] = write_outputs(Path(out), result)
    return result


def _options(given: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The grid options: each argument given, else its ``QUICK`` or ``DEFAULTS`` value."""
    opts = {k: v if v is not None else (QUICK if quick else DEFAULTS)[k] for k, v in given.items()}
    if opts["seeds"] < 1:
        raise QSetFitError(f"seeds must be >= 1, got {opts['seeds']}")
    return opts


def _exact(model: Any, texts: Sequence[str], progress: bool) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Module 1's features (N, Q), module 2's exact read-outs (N, Qm) and the exact predictions (N,).

    Chunks of inputs run in Python threads with single-threaded torch ops (``engines/torch/threads.py``):
    measured on 2 shared cores, torch's 2 intra-op threads took this pass over 9,101 SST-2 inputs of the
    14-qubit head from ~10 s of work to minutes.
    """
    from qsetfit.engines.torch.threads import map_in_threads

    head = model.trained_head
    head.set_engine("torch")
    embeddings = model.embed(texts, show_progress=progress)

    def exact_part(rows: slice, _: None) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():  # grad mode is per thread
            features = head.features(embeddings[rows])
            return features, _readouts(head, features)

    chunks = [slice(start, start + CHUNK) for start in range(0, len(embeddings), CHUNK)]
    parts = map_in_threads(exact_part, chunks, torch.get_num_threads())
    features = torch.cat([f for f, _ in parts]) if parts else head.features(embeddings)
    z = torch.cat([z for _, z in parts]) if parts else _readouts(head, features)
    return features, z, _predict(head, features, z)


def _cell_row(cell: Cell, circuit: Any, profile: Path) -> dict[str, Any]:
    """A cell's settings, as the first columns of its row."""
    noise = cell.noise or {}
    return {"cell": cell.name, "axis": cell.axis, "value": cell.value, "p1": noise.get("p1", 0.0),
            "p2": noise.get("p2", 0.0), "readout": noise.get("readout", 0.0), "shots": cell.backend["shots"],
            "device": noise.get("backend", ""), "no_error_probability": no_error_probability(circuit, cell),
            "profile": str(profile)}


def _finished_cells(out: Path, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cells an earlier ``bench_noise`` into ``out`` finished, by name, if its run and settings match."""
    def identity(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: doc[k] for k in ("run", "n", "exact_accuracy")} | {
            k: v for k, v in doc["settings"].items() if k != "torch_threads"}

    earlier = read_resumable(out / "noise.json", identity, identity(result))
    done = {c["cell"]: c for c in earlier["cells"]} if earlier else {}
    if done:
        logger.info("resuming: cells %s already finished in %s", sorted(done), out)
    return done


CSV_COLUMNS = ("cell", "axis", "value", "p1", "p2", "readout", "shots", "device", "simulator", "method",
               "trajectories", "stderr", "near_boundary", "seeds", "undecided", "simulated", "accuracy", "accuracy_std",
               "sampling_ci95", "agreement", "seconds", "profile")


def write_outputs(out: Path, result: dict[str, Any]) -> list[str]:
    """noise.csv, noise.json and the PNG plots; returns the file names written."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result["cells"])
    atomic_write_bytes(out / "noise.csv", buf.getvalue().encode())
    files = ["noise.csv", "noise.json"]
    cells, exact, s = result["cells"], result["exact_accuracy"], result["settings"]
    subtitle = f"{result['n']} test examples, {s['qubits']}-qubit module 2"
    p2 = [c for c in cells if c["axis"] == "p2"]
    if p2:
        _line_plot(out / "noise_p2.png", p2, "p2", exact, xlabel=f"two-qubit depolarizing p2 (p1 = p2/10, readout "
                   f"{s['readout']:g})", title=f"accuracy vs gate noise\n{subtitle}", xscale="symlog")
        files.append("noise_p2.png")
    shots = [c for c in cells if c["axis"] == "shots" and c["shots"] > 0]
    if shots:
        _line_plot(out / "noise_shots.png", shots, "shots", exact, xlabel="shots per input",
                   title=f"accuracy vs shots\n{subtitle}", xscale="log")
        files.append("noise_shots.png")
    devices = [c for c in cells if c["axis"] == "device"]
    if devices:
        from qsetfit.bench.plots import bar_chart

        bar_chart(["exact"] + [c["device"] for c in devices], [exact] + [c["accuracy"] for c in devices],
                  out / "noise_devices.png", title=f"accuracy with fake-device noise\n{subtitle}", ylabel="accuracy",
                  errors=[0.0] + [c["accuracy_std"] for c in devices])
        files.append("noise_devices.png")
    write_json(out / "noise.json", result | {"files": files})
    return files


def _line_plot(path: Path, cells: list[dict[str, Any]], key: str, exact: float, *, xlabel: str, title: str,
               xscale: str) -> None:
    """Accuracy (mean ± std over seeds) against one grid axis, the exact accuracy as a dashed line."""
    from qsetfit.bench.plots import new_figure, save_png

    x = [c[key] for c in cells]
    fig, ax = new_figure(figsize=(6, 3.8))
    errors = [float(np.hypot(c["accuracy_std"], c.get("sampling_ci95", 0.0))) for c in cells]
    ax.errorbar(x, [c["accuracy"] for c in cells], yerr=errors, marker="o", capsize=4,
                label="accuracy (± seed std, sampling 95% added in quadrature)")
    ax.axhline(exact, color="gray", linestyle="--", label=f"exact module 2 ({exact:.4f})")
    positive = [v for v in x if v > 0]
    if xscale == "symlog":
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1e-4)
    else:
        ax.set_xscale(xscale)
    ax.set(xlabel=xlabel, ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
