"""Run-directory integrity: one writer at a time, a completion marker, and what a resumed run must share.

- ``run_lock(run_dir)``: an OS file lock (``filelock``; the kernel drops it when the process dies, so a
  killed run never blocks the next) plus ``.qsetfit-lock.json`` naming the holder's pid. A second training
  into the same folder fails at once; a leftover pid file of a dead process is reported as stale and replaced.
- ``complete.json`` is written last by every save: a folder without it is a run that did not finish.
- ``run_identity``: a hash of the training texts and labels, the body and the head config. A checkpoint
  stores it, and a resume with other data, another body or another head is refused with one line.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Callable, Iterator

from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)
LOCK = ".qsetfit.lock"
LOCK_INFO = ".qsetfit-lock.json"
COMPLETE = "complete.json"
_HELD: dict[Path, int] = {}  # run directories this process holds, with their nesting depth


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run directory for one training; a second holder gets one clear error at once."""
    from filelock import FileLock, Timeout

    folder = Path(run_dir)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _HELD:  # workflow.train holds it around QSetFitModel.fit, which takes it too
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    info = folder / LOCK_INFO
    lock = FileLock(str(folder / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_info(info)
        who = f"pid {holder['pid']} on {holder['host']}" if holder else "another process"
        raise QSetFitError(
            f"{folder} is in use by another training ({who}); wait for it to finish or choose another --out"
        ) from None
    try:
        stale = _read_info(info)
        if stale:  # we hold the OS lock, so its writer is gone: killed before it could clean up
            logger.warning(
                "%s held a stale lock of pid %s on %s (that training is gone); taking it over",
                folder,
                stale["pid"],
                stale["host"],
            )
        info.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        _HELD[key] = 1
        yield
    finally:
        _HELD.pop(key, None)
        info.unlink(missing_ok=True)
        Path(lock.lock_file).unlink(missing_ok=True)  # while still held; filelock re-checks the inode it locks
        lock.release()
        if created and not any(folder.iterdir()):  # a run that failed before writing anything leaves no folder
            folder.rmdir()


F = TypeVar("F", bound=Callable[..., Any])


def holds_run_dir(method: F) -> F:
    """Decorate a method taking keyword ``run_dir``: it runs holding ``run_lock(run_dir)`` when one is given."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run_dir = kwargs.get("run_dir")
        with run_lock(run_dir) if run_dir is not None else contextlib.nullcontext():
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
        return found if isinstance(found, dict) and {"pid", "host"} <= set(found) else None
    except (OSError, ValueError):
        return None


def mark_complete(run_dir: str | Path) -> None:
    """Write the completion marker: call it after the last file of a run is in place."""
    from qsetfit.io.persistence import write_json

    write_json(Path(run_dir) / COMPLETE, {"completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def clear_complete(run_dir: str | Path) -> None:
    """Remove the marker before a run directory's files are rewritten."""
    (Path(run_dir) / COMPLETE).unlink(missing_ok=True)


def require_complete(run_dir: str | Path) -> None:
    """One clear error when ``run_dir`` holds a run that did not finish (no completion marker)."""
    folder = Path(run_dir)
    if not (folder / COMPLETE).is_file():
        raise QSetFitError(
            f"{folder}: this run did not finish (no {COMPLETE}); complete it with "
            f"`qsetfit train --data ... --out {folder} --resume` and the same options"
        )


def data_fingerprint(texts: list[str], labels: list[str]) -> str:
    """sha256 of the texts and their label names, in order."""
    return hashlib.sha256(json.dumps([texts, labels], ensure_ascii=False).encode()).hexdigest()


def run_identity(train: Any, validation: Any, body: str, head: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must share with a run resuming it: data hashes, the body, the head config."""

    def fingerprint(data: Any) -> str | None:
        if data is None or not len(data):
            return None
        return data_fingerprint(data.texts, [data.label_names[y] for y in data.labels])

    return {"data": fingerprint(train), "validation": fingerprint(validation), "body": body, "head": head}


_WHAT = {
    "data": "training data (hash of texts and labels)",
    "validation": "validation data (hash of texts and labels)",
    "body": "body",
}


def identity_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """``None`` when the identities agree, else what differs, e.g. ``"head config (qubits 10 -> 4)"``."""
    differ = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            fields = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            differ.append(f"{key} config (" + ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in fields) + ")")
        elif key in ("data", "validation"):
            differ.append(_WHAT[key])
        else:
            differ.append(f"{_WHAT.get(key, key)} ({old!r} -> {new!r})")
    return "; ".join(differ) or None
