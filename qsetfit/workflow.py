"""The library functions behind the CLI: train a run, evaluate it, predict with it, list backends.

Each takes plain values (paths, names, numbers) and returns plain results, so the CLI only parses and
prints, and tests can call these directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from qsetfit.head.circuits import PRESETS, HeadConfig
from qsetfit.data.datasets import Dataset, DatasetSplits, load_file, load_splits
from qsetfit.data.embeddings import DEFAULT_BODY
from qsetfit.errors import QSetFitError
from qsetfit.hub import save_pretrained
from qsetfit.bench.stats import accuracy_ci
from qsetfit.modeling import QSetFitModel
from qsetfit.io.persistence import METRICS, read_json
from qsetfit.io.rundir import run_lock
from qsetfit.training.arguments import TrainingArguments
from qsetfit.engines.registry import available_engines
from qsetfit.profiles import list_profiles

logger = logging.getLogger(__name__)
DEFAULT_PRESET = "screened-sst2"  # the CLI's head when no --preset is given: the screening study's winner


def load_data(source: str, *, protocol: str = "given", seed: int = 0) -> DatasetSplits:
    """``demo`` (the packaged set), a CSV/JSONL file, a split folder, or a hub dataset name."""
    return load_splits(source, protocol=protocol, seed=seed)


def head_config(preset: str | None, classes: int, **overrides: Any) -> HeadConfig:
    """A preset (default ``DEFAULT_PRESET``) with CLI overrides; keeps qubits = encoders x encoder_qubits."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise QSetFitError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}")
    base = dict(PRESETS[name])
    given = {k: v for k, v in overrides.items() if v is not None}
    base.update(given, classes=classes)
    if given.get("module1") == "linear":
        base.pop("amplitude_bias", None)
    if base.get("encoders"):
        if "qubits" in given and "encoder_qubits" not in given:
            if given["qubits"] % base["encoders"]:
                raise QSetFitError(f"--qubits {given['qubits']} is not a multiple of --encoders {base['encoders']}")
            base["encoder_qubits"] = given["qubits"] // base["encoders"]
        elif "qubits" not in given and base.get("encoder_qubits"):
            base["qubits"] = base["encoders"] * base["encoder_qubits"]
        if base.get("encoder_connectivity") is not None and base.get("encoder_qubits"):
            base["encoder_connectivity"] = min(base["encoder_connectivity"], base["encoder_qubits"] - 1)
    if "connectivity" not in given and base.get("connectivity") is not None:
        base["connectivity"] = min(base["connectivity"], base["qubits"] - 1)
    return HeadConfig(**base)


def training_arguments(preset: str | None, **given: Any) -> TrainingArguments:
    """The training knobs of ``preset`` (``TrainingArguments.preset``) under the ones the user gave."""
    return TrainingArguments.preset(preset or DEFAULT_PRESET, **given)


@dataclass
class TrainOutcome:
    """What ``train`` returns to the CLI."""

    run_dir: Path
    model: QSetFitModel
    metrics: dict[str, Any]


def train(
    data: str,
    out: str | Path,
    *,
    protocol: str = "given",
    body: str = DEFAULT_BODY,
    preset: str | None = None,
    head_overrides: dict[str, Any] | None = None,
    args: TrainingArguments | None = None,
    resume: bool = False,
    progress: bool = True,
    body_tuning: Any = None,
) -> TrainOutcome:
    """Train a head on ``data``, save the run to ``out``, and evaluate it on the test split if there is one.

    ``body_tuning`` ("contrastive" or ``BodyTuningArguments``) tunes the body with setfit first (phase 1).

    ``out`` is locked for the whole run (a second training into it fails at once); the run is saved once, after
    the test evaluation, so ``metrics.json`` is written in one atomic piece and the completion marker after it.
    """
    with run_lock(out):
        return _train(
            data,
            Path(out),
            protocol=protocol,
            body=body,
            preset=preset,
            head_overrides=head_overrides,
            args=args or TrainingArguments(),
            resume=resume,
            progress=progress,
            body_tuning=body_tuning,
        )


def _train(
    data: str,
    out: Path,
    *,
    protocol: str,
    body: str,
    preset: str | None,
    head_overrides: dict[str, Any] | None,
    args: TrainingArguments,
    resume: bool,
    progress: bool,
    body_tuning: Any = None,
) -> TrainOutcome:
    if out.exists() and any(out.iterdir()) and not resume and (out / "config.json").exists():
        raise QSetFitError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    splits = load_data(data, protocol=protocol, seed=args.seed)
    config = head_config(preset, len(splits.label_names), **(head_overrides or {}))
    model = QSetFitModel(config, body=body, label_names=splits.label_names, seed=args.seed)
    model.fit(
        splits.train,
        splits.validation,
        args=args,
        run_dir=out,
        resume=resume,
        progress=progress,
        body_tuning=body_tuning,
        save=False,
    )  # saved once below, with the data and test metrics
    # A local path is recorded absolute so `evaluate`/`bench noise` find it from any working directory.
    source = str(Path(data).resolve()) if Path(data).exists() else data
    model.metrics["data"] = {
        "source": source,
        "protocol": protocol,
        "seed": args.seed,
        "train": len(splits.train),
        "validation": len(splits.validation or []),
        "test": len(splits.test or []),
    }
    if splits.test is not None and len(splits.test):
        test = model.evaluate(splits.test, show_progress=progress)
        model.metrics["test"] = test | {"ci95": accuracy_ci(test["accuracy"], test["n"])}
    save_pretrained(model, out)  # metrics.json in one atomic write, the completion marker, then the model card
    return TrainOutcome(out, model, model.metrics)


def evaluation_set(run_dir: Path, data: str | None, model: QSetFitModel) -> Dataset:
    """The labelled set to evaluate on: ``data``'s test split (else the file itself), or the run's own test split."""
    if data is None:
        recorded = (read_json(run_dir / METRICS) if (run_dir / METRICS).is_file() else {}).get("data")
        if not recorded:
            raise QSetFitError(f"{run_dir} records no training data; pass --data")
        splits = load_data(recorded["source"], protocol=recorded["protocol"], seed=recorded["seed"])
        if splits.test is None:
            raise QSetFitError(f"the run's data {recorded['source']!r} has no test split; pass --data")
        return splits.test
    path = Path(data)
    if path.is_file():
        return load_file(path, label_names=None)
    splits = load_data(data)
    if splits.test is not None:
        return splits.test
    if splits.validation is not None:
        return splits.validation
    raise QSetFitError(f"{data} has no test or validation split to evaluate on")


def evaluate(
    run: str | Path, *, data: str | None = None, backends: Sequence[str] = ("torch",), progress: bool = False
) -> list[dict[str, Any]]:
    """Accuracy of a saved run on each backend: a list of metric dicts."""
    run = Path(run)
    model = QSetFitModel.load(run)
    dataset = evaluation_set(run, data, model)
    results = []
    for backend in backends:
        metrics = model.evaluate(dataset, backend=backend, show_progress=progress)
        metrics["ci95"] = accuracy_ci(metrics["accuracy"], metrics["n"])
        results.append(metrics)
    return results


def predict(run: str | Path, texts: Sequence[str], *, backend: str = "torch") -> list[dict[str, Any]]:
    """Labels and probabilities for ``texts``: one dict per text."""
    if not texts or any(not t or not t.strip() for t in texts):
        raise QSetFitError("predict needs at least one non-empty text")
    model = QSetFitModel.load(run)
    probs = model.predict_proba(list(texts), backend=backend)
    return [
        {
            "text": t,
            "label": model.label_names[int(p.argmax())],
            "probabilities": {name: float(v) for name, v in zip(model.label_names, p, strict=True)},
        }
        for t, p in zip(texts, probs, strict=True)
    ]


def backends() -> list[dict[str, str]]:
    """Every engine, backend profile and noise profile, with a one-line description."""

    rows: dict[str, dict[str, str]] = {
        "torch": {"name": "torch", "kind": "engine", "description": "exact statevector, fused torch kernels (float64)"},
        "torch-float32": {"name": "torch-float32", "kind": "engine", "description": "the torch engine in float32"},
    }
    for info in list_profiles():
        rows.setdefault(
            info.name,
            {"name": info.name, "kind": f"{info.kind} profile", "description": info.description, "path": info.path},
        )
    for name in available_engines():
        rows.setdefault(name, {"name": name, "kind": "engine", "description": ""})
    return list(rows.values())
