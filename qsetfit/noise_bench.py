"""``qsetfit bench noise``: a trained head's accuracy under gate noise, finite shots and fake-device noise.

The grid (DESIGN §3 profiles, built here in code and written to ``OUT/profiles/`` so every cell can be
re-run by path, e.g. ``qsetfit evaluate RUN --backend OUT/profiles/backends/p2-0.001.toml``):

- depolarizing: p2 in {0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2} after every two-qubit gate, p1 = p2 / 10 after every
  one-qubit gate, a configurable symmetric readout error, exact expectation values;
- shots: {64, 256, 1024, 4096, exact} measured shots per input, no gate noise;
- devices: ``NoiseModel.from_backend`` of named fake IBM backends on the circuit transpiled to their ISA.

Each cell states how Aer simulated it (``method``): exact statevector, density matrix, or statevector
noise trajectories (N per input) when a density matrix is too large. Stochastic cells (shots,
trajectories) run once per seed; deterministic ones once.

Why it finishes on ~9,000 sentences: module 2's read-outs z lie in [-1, 1]^Qm whatever the noise, and the
head's logits are linear in z (``linear([f, z])``, f from module 1, which always runs exactly). An example
whose predicted class wins for EVERY z in that box cannot change its prediction under any noise or shot
count, so only the others are simulated. This is exact, not an approximation, and the fraction simulated
is itself a finding: it is the share of test sentences whose label module 2 can change at all.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from qsetfit.baselines import subsample
from qsetfit.errors import QSetFitError
from qsetfit.head import HybridHead
from qsetfit.persistence import atomic_write_bytes, write_json

logger = logging.getLogger(__name__)

P2_GRID = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SHOTS_GRID: tuple[int | str, ...] = (64, 256, 1024, 4096, "exact")
FAKE_BACKENDS = ("fake_torino", "fake_fez", "fake_kyiv")
QUICK: dict[str, Any] = {"p2_grid": (0.0, 1e-3, 1e-2), "shots_grid": (256, "exact"), "fake_backends": ("fake_torino",),
                         "seeds": 2, "test_limit": 200}
CHUNK = 256  # inputs per Aer call: a progress tick, and PUBs well under ~1k rows (QISKIT-PITFALLS 8)


# ---- the grid ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One grid cell: a backend profile and (optionally) a noise profile, as TOML key/values.

    Attributes:
        axis: "p2", "shots" or "device".
        value: the p2 rate, the shot count (0 = exact) or the fake backend's name.
        backend: ``BackendProfile`` keys (``noise_model`` is filled in when the files are written).
        noise: ``NoiseProfile`` keys, or None for no noise.
    """

    axis: str
    value: float | int | str
    backend: dict[str, Any] = field(hash=False)
    noise: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def name(self) -> str:
        if self.axis == "shots":
            return "shots-exact" if self.value == 0 else f"shots-{self.value}"
        return f"p2-{self.value:g}" if self.axis == "p2" else f"device-{self.value}"


def _shots(value: int | str) -> int:
    if isinstance(value, str):
        if value.strip().lower() in ("exact", "0", "inf"):
            return 0
        if not value.strip().isdigit():
            raise QSetFitError(f"shots must be a positive integer or 'exact', got {value!r}")
        value = int(value)
    if value < 0:
        raise QSetFitError(f"shots must be >= 0 (0 = exact), got {value}")
    return int(value)


def noise_grid(*, p2_grid: Sequence[float] = P2_GRID, readout: float = 0.0,
               shots_grid: Sequence[int | str] = SHOTS_GRID, fake_backends: Sequence[str] = FAKE_BACKENDS,
               trajectories: int = 100) -> list[Cell]:
    """The cells of the benchmark.

    Args:
        p2_grid: two-qubit depolarizing rates; p1 = p2 / 10.
        readout: symmetric readout error added to every depolarizing cell (0: gate noise only).
        shots_grid: shot counts; 0 or "exact" for exact expectation values.
        fake_backends: fake IBM backend names for device-noise cells ("none" entries are dropped).
        trajectories: noise trajectories per input when Aer cannot hold a density matrix.
    """
    if trajectories < 1:
        raise QSetFitError(f"trajectories must be >= 1, got {trajectories}")
    if not 0.0 <= readout <= 0.5:
        raise QSetFitError(f"readout must be a flip probability in [0, 0.5], got {readout}")
    cells = []
    for p2 in p2_grid:
        if not 0.0 <= p2 <= 1.0:
            raise QSetFitError(f"p2 must be a probability in [0, 1], got {p2}")
        if p2 == 0 and readout == 0:
            cells.append(Cell("p2", 0.0, {"engine": "aer", "method": "statevector", "shots": 0}))
            continue
        noise = {"kind": "depolarizing", "p1": p2 / 10, "p2": p2, "readout": readout,
                 "description": f"depolarizing p1={p2 / 10:g}, p2={p2:g}, readout={readout:g}"}
        cells.append(Cell("p2", float(p2), {"engine": "aer", "method": "density_matrix", "shots": 0,
                                            "trajectories": trajectories}, noise))
    for value in shots_grid:
        shots = _shots(value)
        cells.append(Cell("shots", shots, {"engine": "aer", "method": "statevector", "shots": shots}))
    for name in fake_backends:
        if name == "none":
            continue
        cells.append(Cell("device", name, {"engine": "aer", "method": "density_matrix", "shots": 0,
                                           "trajectories": trajectories},
                          {"kind": "device", "backend": name, "description": f"{name} device noise"}))
    if not cells:
        raise QSetFitError("the noise grid is empty; give at least one p2, shots or fake backend value")
    return cells


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise QSetFitError(f"cannot write {value!r} to a profile")


def write_profiles(cells: Sequence[Cell], folder: Path) -> dict[str, Path]:
    """Write each cell's backend (and noise) profile as TOML under ``folder``; return cell name -> backend file.

    The files are checked by loading them back through ``qsetfit.profiles`` (unknown keys, ranges).
    """
    from qsetfit.profiles import load_backend_profile, load_noise_profile

    paths = {}
    for cell in cells:
        backend = dict(cell.backend)
        if cell.noise is not None:
            noise_path = folder / "noise_models" / f"{cell.name}.toml"
            _write_toml(noise_path, cell.noise)
            load_noise_profile(str(noise_path))
            backend["noise_model"] = str(noise_path.resolve())
        backend.setdefault("description", f"qsetfit bench noise cell {cell.name}")
        path = folder / "backends" / f"{cell.name}.toml"
        _write_toml(path, backend)
        load_backend_profile(str(path))
        paths[cell.name] = path
    return paths


def _write_toml(path: Path, values: dict[str, Any]) -> None:
    text = "# written by qsetfit bench noise\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    atomic_write_bytes(path, text.encode())


# ---- which examples module 2 can change ----------------------------------------------------------------
def decided_mask(head: HybridHead, features: torch.Tensor, predictions: torch.Tensor) -> np.ndarray:
    """(N,) bool: True where ``predictions`` wins for every module-2 read-out z in [-1, 1]^Qm.

    With logits = A f + B z + c, class k beats class j for all z in the box iff
    (A f + c)_k - (A f + c)_j - sum_m |B_km - B_jm| > 0 (the box's worst corner).

    Args:
        head: a hybrid head (its final layer reads [f, z]).
        features: (N, Q) float64 module-1 features f.
        predictions: (N,) the predicted class of each example (e.g. under exact simulation).
    """
    q = head.config.feature_dim
    weight, bias = head.linear.weight.detach(), head.linear.bias.detach()  # (K, Q + Qm), (K,)
    if weight.shape[1] != q + head.config.measured:
        raise QSetFitError(f"the head's final layer reads {weight.shape[1]} inputs, expected Q + Qm = "
                           f"{q + head.config.measured}")
    base = features @ weight[:, :q].T + bias  # (N, K)
    b = weight[:, q:]  # (K, Qm)
    swing = (b[:, None, :] - b[None, :, :]).abs().sum(-1)  # (K, K) largest change of logit_k - logit_j
    k = predictions.long()
    margin = base.gather(1, k[:, None]) - base - swing[k]  # (N, K)
    margin[torch.arange(len(k)), k] = torch.inf
    return (margin.min(dim=1).values > 1e-9).numpy()


# ---- evaluation ----------------------------------------------------------------------------------------
@torch.no_grad()
def _predict_on(head: HybridHead, features: torch.Tensor, *, bar: Any = None) -> torch.Tensor:
    """(N,) predictions with module 2 on the head's current engine, in chunks."""
    out = []
    for start in range(0, len(features), CHUNK):
        f = features[start : start + CHUNK]
        z = head.quantum(f)  # (B, Qm)
        out.append(head.linear(torch.cat([f, z.to(f.dtype)], dim=1)).argmax(dim=1))
        if bar is not None:
            bar.update(len(f))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def _method(engine: Any) -> str:
    """How Aer ran a cell, in words."""
    method, trajectories = getattr(engine, "method", "?"), getattr(engine, "trajectories", 0)
    shots = getattr(getattr(engine, "profile", None), "shots", 0)
    if method == "statevector_trajectories":
        text = (f"statevector trajectories ({trajectories}/input, mean <Z>)" if not shots
                else f"statevector trajectories (1/shot), {shots} shots")
    else:
        text = {"statevector": "statevector", "density_matrix": "density matrix"}.get(method, method)
        text += f", {shots} shots" if shots else ", exact <Z>"
    physical = getattr(engine, "physical_qubits", None)
    if physical:
        text += f", ISA on {len(physical)} device qubits"
    return text


def evaluate_cell(head: HybridHead, backend: Path, features: torch.Tensor, labels: np.ndarray,
                  exact: np.ndarray, undecided: np.ndarray, *, seeds: int, progress: bool = False) -> dict[str, Any]:
    """Accuracy and agreement with exact predictions of one cell, over ``seeds`` (1 if deterministic).

    Args:
        head: the trained head.
        backend: the cell's backend profile file.
        features: (N, Q) module-1 features of the undecided examples only.
        labels: (N_all,) label ids of all examples.
        exact: (N_all,) predictions with exact module 2.
        undecided: (N_all,) bool, the examples ``features`` belongs to.
        seeds: runs of a stochastic cell.
    """
    accuracies, agreements, seconds, method, stochastic = [], [], [], "", False
    for seed in range(seeds):
        t0 = time.perf_counter()
        head.set_engine(str(backend), seed=seed)
        engine = head.quantum.engine
        method = _method(engine)
        stochastic = bool(getattr(engine.profile, "shots", 0) or getattr(engine, "trajectories", 0)
                          or getattr(engine, "method", "") == "statevector_trajectories")
        predictions = exact.copy()
        with tqdm(total=int(undecided.sum()), desc=f"{backend.stem} seed {seed}", unit="input", leave=False,
                  disable=not progress) as bar:
            predictions[undecided] = _predict_on(head, features, bar=bar).numpy()
        accuracies.append(float((predictions == labels).mean()))
        agreements.append(float((predictions == exact).mean()))
        seconds.append(time.perf_counter() - t0)
        if not stochastic:
            break
    head.set_engine("torch")
    return {"method": method, "stochastic": stochastic, "seeds": len(accuracies),
            "accuracy": float(np.mean(accuracies)),
            "accuracy_std": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else 0.0,
            "accuracies": accuracies, "agreement": float(np.mean(agreements)), "seconds": float(np.sum(seconds))}


def label_ids(dataset: Any, label_names: Sequence[str]) -> np.ndarray:
    """(N,) the dataset's labels as ids of the model's ``label_names``."""
    unknown = sorted(set(dataset.label_names) - set(label_names))
    if unknown:
        raise QSetFitError(f"labels {unknown} were never seen in training (known: {list(label_names)}); "
                           "evaluate on data with the training labels")
    remap = [list(label_names).index(name) for name in dataset.label_names]
    return np.asarray([remap[y] for y in dataset.labels])


# ---- the benchmark -------------------------------------------------------------------------------------
def bench_noise(run: str | Path, out: str | Path, *, data: str | None = None,
                p2_grid: Sequence[float] | None = None, readout: float = 0.0,
                shots_grid: Sequence[int | str] | None = None, fake_backends: Sequence[str] | None = None,
                seeds: int | None = None, trajectories: int = 100, test_limit: int | None = None,
                quick: bool = False, progress: bool = True) -> dict[str, Any]:
    """Evaluate a saved run over the noise grid; write noise.csv, noise.json, plots and profiles into ``out``.

    Args:
        run: run directory of ``qsetfit train``.
        out: output folder.
        data: labelled data (default: the run's own test split).
        p2_grid, readout, shots_grid, fake_backends, trajectories: the grid (``noise_grid``); None = default
            (``quick``: a small grid).
        seeds: runs per stochastic cell (default 3; quick 2).
        test_limit: score a seeded subsample of the test set (quick: 200).
        quick: small grid, test subsample.
        progress: progress bars.

    Returns:
        {"cells": one row per cell, "n", "simulated", "exact_accuracy", "settings", "files"}.
    """
    from qsetfit import workflow
    from qsetfit.modeling import QSetFitModel

    pick = lambda value, key, default: value if value is not None else (QUICK[key] if quick else default)  # noqa: E731
    p2_grid, shots_grid = pick(p2_grid, "p2_grid", P2_GRID), pick(shots_grid, "shots_grid", SHOTS_GRID)
    fake_backends, seeds = pick(fake_backends, "fake_backends", FAKE_BACKENDS), pick(seeds, "seeds", 3)
    test_limit = pick(test_limit, "test_limit", None)
    if seeds < 1:
        raise QSetFitError(f"seeds must be >= 1, got {seeds}")
    cells = noise_grid(p2_grid=p2_grid, readout=readout, shots_grid=shots_grid, fake_backends=fake_backends,
                       trajectories=trajectories)
    model = QSetFitModel.load(run)
    out = Path(out)
    profiles = write_profiles(cells, out / "profiles")
    dataset = subsample(workflow.evaluation_set(Path(run), data, model), test_limit, 0)
    head = model.head
    with torch.no_grad():
        head.set_engine("torch")
        features = head.features(model.embed(dataset.texts, show_progress=progress))  # (N, Q)
        exact = _predict_on(head, features)
    labels = label_ids(dataset, model.label_names)
    undecided = ~decided_mask(head, features, exact)
    exact_np = exact.numpy()
    exact_accuracy = float((exact_np == labels).mean())
    logger.info("%d of %d test examples can change with module 2's output; simulating those only",
                int(undecided.sum()), len(labels))
    rows = []
    for cell in tqdm(cells, desc="noise grid", unit="cell", disable=not progress):
        result = evaluate_cell(head, profiles[cell.name], features[torch.as_tensor(undecided)], labels, exact_np,
                               undecided, seeds=seeds, progress=progress)
        noise = cell.noise or {}
        rows.append({"cell": cell.name, "axis": cell.axis, "value": cell.value, "p1": noise.get("p1", 0.0),
                     "p2": noise.get("p2", 0.0), "readout": noise.get("readout", 0.0),
                     "shots": cell.backend.get("shots", 0), "device": noise.get("backend", ""),
                     "profile": str(profiles[cell.name])} | result)
    result = {"run": str(run), "n": len(labels), "simulated": int(undecided.sum()), "exact_accuracy": exact_accuracy,
              "cells": rows, "settings": {"data": data, "readout": readout, "seeds": seeds,
                                          "trajectories": trajectories, "test_limit": test_limit, "quick": quick,
                                          "qubits": head.config.qubits, "torch_threads": torch.get_num_threads()}}
    result["files"] = write_outputs(out, result)
    return result


CSV_COLUMNS = ("cell", "axis", "value", "p1", "p2", "readout", "shots", "device", "method", "seeds", "accuracy",
               "accuracy_std", "agreement", "seconds", "profile")


def write_outputs(out: Path, result: dict[str, Any]) -> list[str]:
    """noise.csv, noise.json and the PNG plots; returns the file names written."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result["cells"])
    atomic_write_bytes(out / "noise.csv", buf.getvalue().encode())
    files = ["noise.csv", "noise.json"]
    cells, exact = result["cells"], result["exact_accuracy"]
    subtitle = f"{result['n']} test examples, {result['settings']['qubits']}-qubit module 2"
    p2 = [c for c in cells if c["axis"] == "p2"]
    if p2:
        _line_plot(out / "noise_p2.png", [c["p2"] for c in p2], p2, exact, xlabel="two-qubit depolarizing p2 "
                   f"(p1 = p2/10, readout {result['settings']['readout']:g})", title=f"accuracy vs gate noise\n{subtitle}",
                   xscale="symlog")
        files.append("noise_p2.png")
    shots = [c for c in cells if c["axis"] == "shots" and c["shots"] > 0]
    if shots:
        _line_plot(out / "noise_shots.png", [c["shots"] for c in shots], shots, exact, xlabel="shots per input",
                   title=f"accuracy vs shots\n{subtitle}", xscale="log")
        files.append("noise_shots.png")
    devices = [c for c in cells if c["axis"] == "device"]
    if devices:
        from qsetfit.plots import bar_chart

        bar_chart(["exact"] + [c["device"] for c in devices], [exact] + [c["accuracy"] for c in devices],
                  out / "noise_devices.png", title=f"accuracy with fake-device noise\n{subtitle}", ylabel="accuracy",
                  errors=[0.0] + [c["accuracy_std"] for c in devices])
        files.append("noise_devices.png")
    result["files"] = files
    write_json(out / "noise.json", result)
    return files


def _line_plot(path: Path, x: list[float], cells: list[dict[str, Any]], exact: float, *, xlabel: str, title: str,
               xscale: str) -> None:
    """Accuracy (mean ± std over seeds) against one grid axis, the exact accuracy as a dashed line."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.errorbar(x, [c["accuracy"] for c in cells], yerr=[c["accuracy_std"] for c in cells], marker="o", capsize=4,
                label="accuracy (± std over seeds)")
    ax.axhline(exact, color="gray", linestyle="--", label=f"exact module 2 ({exact:.4f})")
    if xscale == "symlog":
        positive = [v for v in x if v > 0]
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1e-4)
    else:
        ax.set_xscale(xscale)
    ax.set(xlabel=xlabel, ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
