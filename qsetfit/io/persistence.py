"""Run directories and checkpoints: safetensors + JSON (+ QPY for the circuit). Nothing is pickled.

Layout (DESIGN §4): ``config.json``, ``head.safetensors``, ``circuit.qpy``, ``metrics.json``,
``history.csv``, plots, and ``checkpoint/`` while training. Every file is written to a temporary name
and renamed into place, so an interrupted write never leaves a half file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any
from collections.abc import Callable

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from qsetfit.errors import QSetFitError

CONFIG = "config.json"
WEIGHTS = "head.safetensors"
CIRCUIT = "circuit.qpy"
METRICS = "metrics.json"
HISTORY = "history.csv"
CHECKPOINT = "checkpoint"
FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0666 minus the umask, like any file written (mkstemp would make it 0600); O_EXCL keeps it ours.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_resumable(
    path: Path, identity: Callable[[dict[str, Any]], dict[str, Any]], expected: dict[str, Any]
) -> dict[str, Any] | None:
    """The JSON an interrupted run left at ``path`` (None if there is none), when ``identity`` of it equals
    ``expected``; otherwise one clear error naming the keys that differ."""
    if not path.exists():
        return None
    try:
        earlier = json.loads(path.read_text())
        found = identity(earlier)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QSetFitError(f"cannot resume from {path}: {exc}; remove it or pick another --out") from None
    expected = json.loads(json.dumps(expected))  # as stored: tuples become lists
    if found != expected:
        changed = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        raise QSetFitError(
            f"cannot resume from {path}: it was run on another head, data or grid settings "
            f"(differing: {', '.join(changed)}); rerun with the same options or pick another --out"
        )
    return earlier


def write_json(path: Path, value: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    """Read JSON with a clear error for a missing or malformed file."""
    if not path.is_file():
        raise QSetFitError(f"{path} is missing; is {path.parent} a qsetfit run directory?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise QSetFitError(f"{path} is not valid JSON ({exc}); the file is damaged") from exc


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomically write tensors as safetensors (contiguous CPU copies)."""
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(flat, metadata=metadata))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (never a pickle)."""
    if not path.is_file():
        raise QSetFitError(f"{path} is missing; is {path.parent} a qsetfit run directory?")
    try:
        return st_load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types
        raise QSetFitError(f"{path} is not a readable safetensors file ({exc})") from exc


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write the per-epoch history as CSV."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def write_circuit(path: Path, circuit: Any) -> None:
    """Atomically write a QuantumCircuit as QPY."""
    from qiskit import qpy

    buf = io.BytesIO()
    qpy.dump(circuit, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_circuit(path: Path) -> Any:
    """Read the QPY circuit of a run directory."""
    from qiskit import qpy

    if not path.is_file():
        raise QSetFitError(f"{path} is missing; is {path.parent} a qsetfit run directory?")
    try:
        with path.open("rb") as fh:
            return qpy.load(fh)[0]
    except Exception as exc:  # qpy raises QpyError, QiskitError or struct errors on a damaged file
        raise QSetFitError(
            f"{path} is damaged and cannot be read ({type(exc).__name__}); copy the run directory again or retrain"
        ) from exc


def optimizer_to_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors (safetensors) and plain JSON (hyper-parameters)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, slot in state["state"].items():
        for name, value in slot.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``optimizer_to_tensors``."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, slot in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(slot)
    return {"state": state, "param_groups": meta["param_groups"]}
