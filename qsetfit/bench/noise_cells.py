"""``bench noise`` cells on the noisy torch engine (issue 15): which cells it runs there, and how.

``--simulator torch`` (the default) runs the depolarizing and shot cells on the noisy torch engine
(``engines/torch/noisy.py``: the same ``noise_models/`` files and meaning as Aer, its density matrix equal to
Aer's to 1e-10): an exact density matrix up to ``density_matrix_max_qubits`` (8), Pauli-error trajectories
above (T per input, the error-free branch simulated once; unbiased, with a standard error per read-out).
Every undecided input of the test set is simulated: no budget, no sampled estimator.

Device cells stay on Aer: they are defined as ``NoiseModel.from_backend``, whose thermal relaxation the
torch device model (``torch-fake-torino``) does not have, so the two would not measure the same noise.

``--simulator aer`` runs every cell on Aer, as before issue 15.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from qsetfit.errors import QSetFitError

if TYPE_CHECKING:
    from qsetfit.head.hybrid import HybridHead
    from qsetfit.bench.noise_grid import Cell

SIMULATORS = ("torch", "aer")
STATE_BYTES = 2**25  # per torch call: states under 32 MiB (bigger calls ran slower: copies)
TRAJECTORY_BYTES = 2**28  # per trajectory call: the fused blocks' prefix matrices of its inputs
BOUNDARY_Z = 3.0  # a prediction whose logit margin is under 3 standard errors counts as near the boundary


def on_simulator(cells: Sequence[Cell], simulator: str) -> list[Cell]:
    """The cells with the depolarizing and shot cells moved to the torch engine (``simulator="torch"``).

    Raises:
        QSetFitError: ``simulator`` is not one of ``SIMULATORS``.
    """
    if simulator not in SIMULATORS:
        raise QSetFitError(f"simulator must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    if simulator == "aer":
        return list(cells)
    return [c if c.axis == "device" else dataclasses.replace(c, backend=c.backend | {"engine": "torch"}) for c in cells]


def chunk_size(engine: Any) -> int:
    """Inputs per torch call, under ``STATE_BYTES`` (16 bytes a value).

    A density-matrix call holds 4^n values per input, a statevector call a state; a trajectory call holds the
    prefix matrices of every fused block per input (its states live in fixed, cache-sized chunks), under
    ``TRAJECTORY_BYTES``: more inputs per call spread the per-gate work over more trajectories.
    """
    n = engine.num_qubits
    if engine.method == "trajectories":
        per_input = sum(len(g) * 4 ** len(q) for g, q in zip(engine.plan.gates, engine.plan.qubits, strict=False))
        return int(max(1, min(256, TRAJECTORY_BYTES // (16 * per_input))))
    values = 4**n if engine.method == "density_matrix" else 2 * 2**n
    return int(max(1, min(256, STATE_BYTES // (16 * values))))


@torch.no_grad()
def readouts(head: HybridHead, features: torch.Tensor, *, bar: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, Qm) noisy read-outs on the head's torch noise engine and (N, Qm) their standard errors."""
    assert head.quantum is not None  # the noise benchmark's heads always have module 2
    engine: Any = head.quantum.engine  # the torch noise engine: last_result is not on the Engine base
    size = chunk_size(engine)
    values, errors = [], []
    for start in range(0, len(features), size):
        values.append(head.quantum(features[start : start + size]).to(torch.float64))
        errors.append(engine.last_result.stderr.to(torch.float64).nan_to_num(math.inf))
        if bar is not None:
            bar.update(len(values[-1]))
    empty = torch.zeros(0, head.config.measured, dtype=torch.float64)
    return torch.cat([empty, *values]), torch.cat([empty, *errors])


def near_boundary(head: HybridHead, features: torch.Tensor, z: torch.Tensor, stderr: torch.Tensor) -> np.ndarray:
    """(N,) bool: the top class beats the runner-up by less than ``BOUNDARY_Z`` standard errors of the margin.

    The logits are A f + B z + c, so the margin's standard error is sqrt(sum_m (B_km - B_jm)^2 se_m^2)
    (read-outs taken as independent); these are the predictions the estimate's error could flip.
    """
    with torch.no_grad():
        logits = head.readout(features, z)
        top = logits.topk(2, dim=1)
        slope = head.readout_weights()[1].to(torch.float64)  # (K, Qm)
        diff = slope[top.indices[:, 0]] - slope[top.indices[:, 1]]  # (N, Qm)
        spread = torch.sqrt((diff**2 * stderr**2).sum(dim=1))
        return ((top.values[:, 0] - top.values[:, 1]) < BOUNDARY_Z * spread).numpy()


def evaluate_torch_cell(
    head: HybridHead,
    backend: Path,
    features: torch.Tensor,
    labels: np.ndarray,
    exact: np.ndarray,
    simulate: np.ndarray,
    *,
    seeds: int,
    progress: bool = False,
) -> dict[str, Any]:
    """``bench.noise.evaluate_cell`` on the noisy torch engine: every undecided input, each seed's own draws.

    Adds ``simulator`` ("torch"), ``trajectories`` (per input; 0 when exact), ``stderr`` (the largest standard
    error of a noisy read-out over the simulated inputs and seeds; 0 when exact) and ``near_boundary`` (the
    mean number of simulated inputs per seed whose prediction is within ``BOUNDARY_Z`` standard errors of
    the decision boundary).
    """
    undecided = np.flatnonzero(simulate)
    n, u = len(labels), len(undecided)
    exact_accuracy = float((exact == labels).mean())
    accuracies, agreements, seconds, near = [], [], [], []
    method, stochastic, trajectories, stderr = "not simulated", False, 0, 0.0
    picked = features[torch.as_tensor(undecided, dtype=torch.long)]
    for seed in range(seeds if u else 1):
        t0 = time.perf_counter()
        correct, agree = exact_accuracy, 1.0
        if u:
            head.set_engine(str(backend), seed=seed)
            assert head.quantum is not None  # the noise benchmark's heads always have module 2
            info = head.quantum.engine.describe()
            method, trajectories, stochastic = info.in_words(), info.trajectories, info.stochastic
            with tqdm(
                total=u, desc=f"{backend.stem} seed {seed} (torch)", unit="input", leave=False, disable=not progress
            ) as bar:
                z, errors = readouts(head, picked, bar=bar)
            with torch.no_grad():
                predictions = head.readout(picked, z).argmax(dim=1).numpy()
            changed = (predictions == labels[undecided]).sum() - (exact[undecided] == labels[undecided]).sum()
            correct = exact_accuracy + float(changed) / n
            agree = (n - u + float((predictions == exact[undecided]).sum())) / n
            stderr = max(stderr, float(errors.max()) if len(errors) else 0.0)
            near.append(int(near_boundary(head, picked, z, errors).sum()))
        accuracies.append(correct)
        agreements.append(agree)
        seconds.append(time.perf_counter() - t0)
        if not stochastic:
            break
    head.set_engine("torch")
    return {
        "simulator": "torch",
        "method": method,
        "trajectories": trajectories,
        "stochastic": stochastic,
        "simulated": int(u),
        "undecided": int(u),
        "sampling_ci95": 0.0,
        "stderr": stderr,
        "near_boundary": float(np.mean(near)) if near else 0.0,
    } | seed_summary(accuracies, agreements, seconds)


def seed_summary(accuracies: list[float], agreements: list[float], seconds: list[float]) -> dict[str, Any]:
    """A cell's per-seed accuracies, agreements and seconds as its row's mean, std, list and total."""
    return {
        "seeds": len(accuracies),
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
        "accuracies": accuracies,
        "agreement": float(np.mean(agreements)),
        "seconds": round(sum(seconds), 2),
    }
