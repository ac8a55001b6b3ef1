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

Only examples whose prediction the cell can change are simulated (``noise_bounds``: exact, not an
approximation); the count is in each row.

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

import logging
import time
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from qsetfit.bench import noise_cells
from qsetfit.bench.noise_bounds import decided_mask, no_error_probability, noise_box
from qsetfit.bench.noise_grid import CHUNK, DEFAULTS, QUICK, Cell, noise_grid, on_axes, write_profiles
from qsetfit.bench.noise_report import write_outputs
from qsetfit.bench.splits import subsample
from qsetfit.engines.base import EngineInfo
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead
from qsetfit.io.persistence import read_resumable

logger = logging.getLogger(__name__)


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


def evaluate_cell(
    head: HybridHead,
    backend: Path,
    features: torch.Tensor,
    labels: np.ndarray,
    exact: np.ndarray,
    simulate: np.ndarray,
    *,
    seeds: int,
    budget: int | None = None,
    progress: bool = False,
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
        return noise_cells.evaluate_torch_cell(
            head, backend, features, labels, exact, simulate, seeds=seeds, progress=progress
        )
    undecided = np.flatnonzero(simulate)
    runs, seconds = [], []
    for seed in range(seeds):
        t0 = time.perf_counter()
        runs.append(
            _aer_seed(head, backend, features, labels, exact, undecided, seed=seed, budget=budget, progress=progress)
        )
        seconds.append(time.perf_counter() - t0)
        if not runs[-1]["stochastic"]:
            break
    head.set_engine("torch")
    last = runs[-1]
    # independent samples per seed: the interval of their mean shrinks with the number of seeds
    return {
        "simulator": "aer",
        "method": last["method"],
        "stochastic": last["stochastic"],
        "simulated": int(last["simulated"]),
        "undecided": len(undecided),
        "sampling_ci95": float(np.mean([r["ci95"] for r in runs]) / np.sqrt(len(runs))),
    } | noise_cells.seed_summary([r["accuracy"] for r in runs], [r["agreement"] for r in runs], seconds)


def _aer_seed(
    head: HybridHead,
    backend: Path,
    features: torch.Tensor,
    labels: np.ndarray,
    exact: np.ndarray,
    undecided: np.ndarray,
    *,
    seed: int,
    budget: int | None,
    progress: bool,
) -> dict[str, Any]:
    """One seed of a cell on Aer over the ``undecided`` examples (or a sample of them, see ``budget``); none: exact.

    The accuracy is a difference estimator: the exact accuracy plus the mean change in correctness the noise
    causes on the simulated examples, scaled to all undecided ones.
    """
    if not len(undecided):
        return {
            "accuracy": float((exact == labels).mean()),
            "agreement": 1.0,
            "ci95": 0.0,
            "method": "not simulated",
            "stochastic": False,
            "simulated": 0,
        }
    head.set_engine(str(backend), seed=seed)
    assert head.quantum is not None  # the noise benchmark's heads always have module 2
    info = head.quantum.engine.describe()
    pick = _within_budget(undecided, runs_per_input(info), budget, seed)
    with tqdm(
        total=len(pick), desc=f"{backend.stem} seed {seed}", unit="input", leave=False, disable=not progress
    ) as bar:
        picked = features[torch.as_tensor(pick)]
        predictions = _predict(head, picked, _readouts(head, picked, bar=bar))
    n, u = len(labels), len(undecided)
    differences = (predictions == labels[pick]).astype(float) - (exact[pick] == labels[pick]).astype(float)
    method = info.in_words()
    if len(pick) < u:
        method += f", {len(pick)} of {u} undecided inputs sampled per seed"
    return {
        "accuracy": float((exact == labels).mean()) + u * float(differences.mean()) / n,
        "agreement": (n - u + u * float((predictions == exact[pick]).mean())) / n,
        "ci95": sampling_ci95(differences, u, n),
        "method": method,
        "stochastic": info.stochastic,
        "simulated": len(pick),
    }


def _within_budget(undecided: np.ndarray, cost: int, budget: int | None, seed: int) -> np.ndarray:
    """The undecided inputs to simulate: all, or a seeded random sample when they would cost over ``budget``."""
    if budget is None or not cost or len(undecided) * cost <= budget:
        return undecided
    rng = np.random.default_rng([seed, len(undecided)])
    return np.sort(rng.choice(undecided, size=max(2, budget // cost), replace=False))


# ---- the benchmark -------------------------------------------------------------------------------------
def bench_noise(
    run: str | Path,
    out: str | Path,
    *,
    data: str | None = None,
    p2_grid: Sequence[float] | None = None,
    readout: float = 0.0,
    shots_grid: Sequence[int | str] | None = None,
    fake_backends: Sequence[str] | None = None,
    seeds: int | None = None,
    trajectories: int | None = None,
    test_limit: int | None = None,
    budget: int | None = None,
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
    simulator: str = "torch",
    grid: Sequence[str] | None = None,
) -> dict[str, Any]:
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

    opts = _options(quick, p2_grid, shots_grid, fake_backends, seeds, trajectories, test_limit, budget, grid)
    cells = noise_cells.on_simulator(on_axes(_grid(opts, readout), opts["grid"]), simulator)
    model = QSetFitModel.load(run)
    profiles = write_profiles(cells, Path(out) / "profiles")
    dataset = subsample(workflow.evaluation_set(Path(run), data, model), opts["test_limit"], 0)
    settings = {"data": data, "readout": readout, "quick": quick, "simulator": simulator} | opts
    return _run_cells(
        model, dataset, cells, profiles, Path(out), run=run, settings=settings, resume=resume, progress=progress
    )


GRID_OPTIONS = ("p2_grid", "shots_grid", "fake_backends", "seeds", "trajectories", "test_limit", "budget", "grid")


def _options(quick: bool, *given: Any) -> dict[str, Any]:
    """The grid options (``GRID_OPTIONS``, in that order): each value given, else its ``QUICK`` or ``DEFAULTS``."""
    opts = {
        k: v if v is not None else (QUICK if quick else DEFAULTS)[k] for k, v in zip(GRID_OPTIONS, given, strict=True)
    }
    if opts["seeds"] < 1:
        raise QSetFitError(f"seeds must be >= 1, got {opts['seeds']}")
    return opts


def _grid(opts: dict[str, Any], readout: float) -> list[Cell]:
    """The cells of the grid ``opts`` describes."""
    return noise_grid(
        p2_grid=opts["p2_grid"],
        readout=readout,
        shots_grid=opts["shots_grid"],
        fake_backends=opts["fake_backends"],
        trajectories=opts["trajectories"],
    )


def _run_cells(
    model: Any,
    dataset: Any,
    cells: Sequence[Cell],
    profiles: dict[str, Path],
    out: Path,
    *,
    run: str | Path,
    settings: dict[str, Any],
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    """Evaluate every cell in turn, rewriting the outputs after each; keep the cells an earlier run finished."""
    head, labels = model.trained_head, dataset.label_ids(model.label_names)
    features, z, exact = _exact(model, dataset.texts, progress)
    settings = settings | {"qubits": head.config.qubits, "torch_threads": torch.get_num_threads()}
    result: dict[str, Any]
    result = {
        "run": str(run),
        "n": len(labels),
        "exact_accuracy": float((exact == labels).mean()),
        "cells": [],
        "settings": settings,
        "partial": True,
    }
    done = _finished_cells(out, result) if resume else {}
    assert head.quantum is not None  # a QSetFitModel's head always has module 2
    circuit = head.quantum.head_circuit.circuit
    for cell in tqdm(cells, desc="noise grid", unit="cell", disable=not progress):
        if cell.name in done:
            result["cells"].append(done[cell.name])
            continue
        simulate = ~decided_mask(head, features, torch.as_tensor(exact), *noise_box(circuit, cell, z))
        outcome = evaluate_cell(
            head,
            profiles[cell.name],
            features,
            labels,
            exact,
            simulate,
            seeds=settings["seeds"],
            budget=settings["budget"] or None,
            progress=progress,
        )
        result["cells"].append(_cell_row(cell, circuit, profiles[cell.name]) | outcome)
        result["files"] = write_outputs(out, result)
    result["partial"] = False
    result["files"] = write_outputs(out, result)
    return result


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
    return {
        "cell": cell.name,
        "axis": cell.axis,
        "value": cell.value,
        "p1": noise.get("p1", 0.0),
        "p2": noise.get("p2", 0.0),
        "readout": noise.get("readout", 0.0),
        "shots": cell.backend["shots"],
        "device": noise.get("backend", ""),
        "no_error_probability": no_error_probability(circuit, cell),
        "profile": str(profile),
    }


def _finished_cells(out: Path, result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cells an earlier ``bench_noise`` into ``out`` finished, by name, if its run and settings match."""

    def identity(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: doc[k] for k in ("run", "n", "exact_accuracy")} | {
            k: v for k, v in doc["settings"].items() if k != "torch_threads"
        }

    earlier = read_resumable(out / "noise.json", identity, identity(result))
    done = {c["cell"]: c for c in earlier["cells"]} if earlier else {}
    if done:
        logger.info("resuming: cells %s already finished in %s", sorted(done), out)
    return done
