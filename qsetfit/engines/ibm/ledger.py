"""The job ledger: every Runtime submission of a run, so results can be fetched later without resubmitting.

``RUN/ledger.jsonl`` is append-only, one JSON object per line. A submission line holds the job id, backend,
mode, PUB shapes and SHA-256 hashes of the inputs and weights (never the token, never the data itself);
later lines for the same job id record events ("fetched", "failed", "retried"). Fetched results are kept
as ``RUN/jobs/<job id>.npy`` (plain float64 arrays, no pickle), so a crash between submit and fetch, or a
new shell, costs no second submission: ``lookup`` finds the job for the same inputs and weights, and
``fetch`` retrieves it through ``QiskitRuntimeService.job(id)`` (local testing jobs cannot be retrieved by
id, QISKIT-PITFALLS 11).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from qsetfit.errors import QSetFitError
from qsetfit.io.persistence import atomic_write_bytes

LEDGER = "ledger.jsonl"
RESULTS = "jobs"


def array_hash(values: Any) -> str:
    """SHA-256 of a float64 array's shape and bytes (inputs and weights are identified, not stored)."""
    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    digest = hashlib.sha256(str(arr.shape).encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


class Ledger:
    """The ledger of one run directory.

    Args:
        run_dir: the run directory (created if missing).
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER

    # ---- writing --------------------------------------------------------------------------------------
    def _append(self, entry: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:  # one write per line, then fsync: survives a crash
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def record(
        self,
        *,
        job_id: str,
        backend: str,
        mode: str,
        pub_shapes: list[list[int]],
        inputs: Any,
        weights: Any,
        local: bool = False,
        observables: int = 0,
        **extra: Any,
    ) -> None:
        """Append a submission (the arrays are hashed, not stored)."""
        for key in extra:
            if "token" in key.lower():
                raise QSetFitError("credentials are never written to the ledger")
        self._append(
            {
                "event": "submitted",
                "job_id": job_id,
                "backend": backend,
                "mode": mode,
                "local": local,
                "pub_shapes": pub_shapes,
                "observables": observables,
                "inputs_sha256": array_hash(inputs),
                "weights_sha256": array_hash(weights),
                "time": time.time(),
                **extra,
            }
        )

    def mark(self, job_id: str, event: str, **fields: Any) -> None:
        """Append an event ("fetched", "failed", "retried"...) for a job."""
        self._append({"event": event, "job_id": job_id, "time": time.time(), **fields})

    def store_result(self, job_id: str, values: np.ndarray) -> None:
        """Keep a job's (B, O) expectation values and mark it fetched."""
        buf = io.BytesIO()
        np.save(buf, np.asarray(values, dtype=np.float64), allow_pickle=False)
        atomic_write_bytes(self.run_dir / RESULTS / f"{job_id}.npy", buf.getvalue())
        self.mark(job_id, "fetched")

    # ---- reading --------------------------------------------------------------------------------------
    def jobs(self) -> list[dict[str, Any]]:
        """One dict per submitted job, in submission order, with ``state`` (the latest event) and ``events``."""
        if not self.path.is_file():
            return []
        jobs: dict[str, dict[str, Any]] = {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    continue  # a line torn by a crash mid-write
                raise QSetFitError(f"{self.path}:{number} is not valid JSON") from None
            job_id = entry.get("job_id", "")
            if entry.get("event") == "submitted":
                jobs[job_id] = {**entry, "state": "submitted", "events": []}
            elif job_id in jobs:
                jobs[job_id]["state"] = entry["event"]
                jobs[job_id]["events"].append(entry)
        return list(jobs.values())

    def result(self, job_id: str) -> np.ndarray | None:
        """The stored values of a fetched job, or None."""
        path = self.run_dir / RESULTS / f"{job_id}.npy"
        return np.load(path, allow_pickle=False) if path.is_file() else None

    def lookup(self, backend: str, inputs: Any, weights: Any, **same: Any) -> dict[str, Any] | None:
        """The latest non-failed job for the same backend, inputs and weights (and recorded ``same`` fields,
        e.g. ``local_kind="narrow"``: a job recorded without such a field does not match), or None."""
        x_hash, w_hash = array_hash(inputs), array_hash(weights)
        for job in reversed(self.jobs()):
            if (
                job["backend"] == backend
                and job["inputs_sha256"] == x_hash
                and job["weights_sha256"] == w_hash
                and job["state"] != "failed"
                and all(job.get(k) == v for k, v in same.items())
            ):
                return job
        return None

    # ---- the service ----------------------------------------------------------------------------------
    def status(self, service: Any = None) -> list[dict[str, Any]]:
        """Each job with its ledger state and, for QPU jobs with a service, the service's status."""
        rows = []
        for job in self.jobs():
            remote = ""
            if job["state"] == "fetched":
                remote = "DONE (fetched)"
            elif job.get("local"):
                remote = "local (not retrievable by id)"
            elif service is not None:
                try:
                    remote = str(service.job(job["job_id"]).status())
                except Exception as exc:  # network errors: report, do not crash the listing
                    remote = f"unknown ({type(exc).__name__})"
            rows.append(
                {
                    "job_id": job["job_id"],
                    "backend": job["backend"],
                    "mode": job["mode"],
                    "state": job["state"],
                    "status": remote,
                    "pub_shapes": job["pub_shapes"],
                }
            )
        return rows

    def fetch(self, job_id: str, service: Any) -> np.ndarray:
        """A job's (B, O) values: stored ones, else retrieved through ``service.job(id)`` and stored."""
        stored = self.result(job_id)
        if stored is not None:
            return stored
        if service is None:
            raise QSetFitError(f"job {job_id} has no stored result and no IBM service to fetch it from")
        try:
            values = results_to_array(service.job(job_id).result())
        except Exception as exc:
            self.mark(job_id, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
            raise QSetFitError(f"job {job_id} could not be fetched: {type(exc).__name__}: {exc}") from None
        self.store_result(job_id, values)
        return values

    def fetch_all(self, service: Any) -> dict[str, str]:
        """Fetch every job not fetched yet; returns job id -> "fetched" or the error."""
        out = {}
        for job in self.jobs():
            if job["state"] == "fetched":
                out[job["job_id"]] = "fetched"
                continue
            if job.get("local"):
                out[job["job_id"]] = "local job: not retrievable by id"
                continue
            try:
                self.fetch(job["job_id"], service)
                out[job["job_id"]] = "fetched"
            except QSetFitError as exc:
                out[job["job_id"]] = str(exc)
        return out


def results_to_array(result: Any) -> np.ndarray:
    """Concatenate the (R, O) ``evs`` of each PUB result into (B, O) float64."""
    return np.concatenate(
        [np.asarray(r.data.evs, dtype=np.float64).reshape(-1, np.shape(r.data.evs)[-1]) for r in result], axis=0
    )
