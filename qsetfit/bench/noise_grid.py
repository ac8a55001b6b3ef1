"""The ``bench noise`` grid as data: its cells (gate noise, shots, fake devices) and their backend profiles.

Shared by the Aer cells (``noise.py``) and the torch cells (``noise_cells.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from qsetfit.errors import QSetFitError
from qsetfit.io.persistence import atomic_write_bytes

P2_GRID = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SHOTS_GRID: tuple[int | str, ...] = (64, 256, 1024, 4096, "exact")
FAKE_BACKENDS = ("fake_torino", "fake_fez", "fake_kyiv")
AXES = ("p2", "shots", "device")  # ``--grid``: the axes a run covers
DEFAULTS: dict[str, Any] = {
    "p2_grid": P2_GRID,
    "shots_grid": SHOTS_GRID,
    "fake_backends": FAKE_BACKENDS,
    "seeds": 3,
    "trajectories": 100,
    "test_limit": None,
    "budget": 5_000,
    "grid": AXES,
}
# --quick: a small grid on 200 sentences; device cells cost ~1 s per input even at 20 trajectories, so none.
QUICK: dict[str, Any] = {
    "p2_grid": (0.0, 1e-3, 1e-2),
    "shots_grid": (256, "exact"),
    "fake_backends": (),
    "seeds": 2,
    "trajectories": 20,
    "test_limit": 200,
    "budget": 5_000,
    "grid": AXES,
}
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
    text = str(value).strip().lower()
    if text in ("exact", "inf"):
        return 0
    if not text.isdigit():
        raise QSetFitError(f"shots must be a non-negative integer or 'exact', got {value!r}")
    return int(text)


def noise_grid(
    *,
    p2_grid: Sequence[float] = P2_GRID,
    readout: float = 0.0,
    shots_grid: Sequence[int | str] = SHOTS_GRID,
    fake_backends: Sequence[str] = FAKE_BACKENDS,
    trajectories: int = 100,
) -> list[Cell]:
    """The cells of the benchmark.

    Args:
        p2_grid: two-qubit depolarizing rates; p1 = p2 / 10.
        readout: symmetric readout error added to every depolarizing cell (0: gate noise only).
        shots_grid: shot counts; 0 or "exact" for exact expectation values.
        fake_backends: fake IBM backend names for device-noise cells ("none" entries are dropped).
        trajectories: noise trajectories per input where Aer cannot hold a density matrix.
    """
    if trajectories < 1:
        raise QSetFitError(f"trajectories must be >= 1, got {trajectories}")
    if not 0.0 <= readout <= 0.5:
        raise QSetFitError(f"readout must be a flip probability in [0, 0.5], got {readout}")
    noisy = {"engine": "aer", "method": "density_matrix", "shots": 0, "trajectories": trajectories}
    cells = []
    for p2 in p2_grid:
        if not 0.0 <= p2 <= 1.0:
            raise QSetFitError(f"p2 must be a probability in [0, 1], got {p2}")
        noise = {
            "kind": "depolarizing",
            "p1": p2 / 10,
            "p2": float(p2),
            "readout": readout,
            "description": f"depolarizing p1={p2 / 10:g}, p2={p2:g}, readout={readout:g}",
        }
        ideal = p2 == 0 and readout == 0
        cells.append(
            Cell(
                "p2",
                float(p2),
                {"engine": "aer", "method": "statevector", "shots": 0} if ideal else noisy,
                None if ideal else noise,
            )
        )
    cells += [
        Cell("shots", _shots(s), {"engine": "aer", "method": "statevector", "shots": _shots(s)}) for s in shots_grid
    ]
    cells += [
        Cell("device", name, noisy, {"kind": "device", "backend": name, "description": f"{name} device noise"})
        for name in fake_backends
        if name != "none"
    ]
    if not cells:
        raise QSetFitError("the noise grid is empty; give at least one p2, shots or fake backend value")
    return cells


def on_axes(cells: Sequence[Cell], grid: Sequence[str] | None) -> list[Cell]:
    """The cells on the axes in ``grid`` (all for None); an unknown axis is one clear error."""
    if grid is None:
        return list(cells)
    unknown = sorted(set(grid) - set(AXES))
    if unknown or not grid:
        raise QSetFitError(f"--grid takes {', '.join(AXES)} (repeat for several), got {', '.join(unknown) or 'none'}")
    return [c for c in cells if c.axis in grid]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise QSetFitError(f"cannot write {value!r} to a profile")


def _write_toml(path: Path, values: dict[str, Any]) -> None:
    text = "# written by qsetfit bench noise\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
    atomic_write_bytes(path, text.encode())


def write_profiles(cells: Sequence[Cell], folder: Path) -> dict[str, Path]:
    """Write each cell's backend (and noise) profile as TOML under ``folder``; return cell name -> backend file.

    Each file is loaded back through ``qsetfit.profiles``, which checks keys and ranges.
    """
    from qsetfit.profiles import load_backend_profile, load_noise_profile

    paths = {}
    for cell in cells:
        backend = dict(cell.backend, description=f"qsetfit bench noise cell {cell.name}")
        if cell.noise is not None:
            noise_path = folder / "noise_models" / f"{cell.name}.toml"
            _write_toml(noise_path, cell.noise)
            load_noise_profile(str(noise_path))
            backend["noise_model"] = str(noise_path.resolve())
        paths[cell.name] = folder / "backends" / f"{cell.name}.toml"
        _write_toml(paths[cell.name], backend)
        load_backend_profile(str(paths[cell.name]))
    return paths


# ---- which examples a cell can change ------------------------------------------------------------------
