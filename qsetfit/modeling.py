"""``QSetFitModel``: text in, labels out, in the spirit of setfit (fit / predict / predict_proba / save / load).

It owns the body name, the label names and the head; embeddings come from the on-disk cache, so a
second pass over the same texts encodes nothing. Inference runs on any engine or backend profile chosen
at call time (``backend=``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch

from qsetfit.io import persistence
from qsetfit.training.body_tuning import attach_tuned_body, copy_tuned_body
from qsetfit.head.circuits import HeadConfig
from qsetfit.data.datasets import Dataset
from qsetfit.data.embeddings import DEFAULT_BODY, embed
from qsetfit.engines.registry import engine_kind
from qsetfit.errors import QSetFitError, check_keys
from qsetfit.head.hybrid import HybridHead, needs_input_dim
from qsetfit.io.rundir import clear_complete, holds_run_dir, mark_complete, require_complete, run_identity
from qsetfit.training.head_trainer import Trainer, TrainResult, evaluate
from qsetfit.training.arguments import TrainingArguments

logger = logging.getLogger(__name__)


class QSetFitModel:
    """A frozen sentence-transformer body plus a trainable hybrid quantum head.

    Args:
        config: the head's shape (``HeadConfig.preset(...)`` for the paper's heads).
        body: sentence-transformers name or local folder (default: the packaged MiniLM).
        label_names: id -> label string; set by ``fit`` from the data when omitted.
        seed: seeds the head's initial weights.
        cache_dir: embedding cache folder (default ``$QSETFIT_CACHE/embeddings`` or ``~/.cache/qsetfit``).
    """

    def __init__(
        self,
        config: HeadConfig,
        *,
        body: str = DEFAULT_BODY,
        label_names: Sequence[str] | None = None,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        if label_names is not None and len(label_names) != config.classes:
            raise QSetFitError(f"{len(label_names)} label names for a head with classes={config.classes}")
        self.config, self.body, self.seed = config, str(body), seed
        self.label_names = list(label_names) if label_names is not None else [str(i) for i in range(config.classes)]
        self.cache_dir = cache_dir
        # A PCA reduction or a linear module 1 is sized by the embedding width: built by fit() or load().
        self.head: HybridHead | None = None if needs_input_dim(config) else HybridHead(config, seed=seed)
        self.training_args: TrainingArguments | None = None
        self.result: TrainResult | None = None
        self.metrics: dict[str, Any] = {}
        self.run_dir: Path | None = None  # set by load/save: hardware jobs are recorded in its ledger
        self.base_body: str | None = None  # set when phase 1 tuned ``body`` from it (then ``body`` is a folder)
        self.body_tuning: Any = None  # the BodyTuningArguments of phase 1, or None for a frozen body

    @property
    def trained_head(self) -> HybridHead:
        """The head, or a clear error when it does not exist yet (PCA / linear module 1 before ``fit``)."""
        if self.head is None:
            raise QSetFitError(
                "this model's head is sized by the embedding width and has not been fitted yet; "
                "call fit() (or load a trained run) first"
            )
        return self.head

    # ---- embeddings ------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], *, show_progress: bool = True) -> torch.Tensor:
        """(N, D) float64 embeddings of ``texts`` from the cache (encoding only what is missing)."""
        if isinstance(texts, str):
            texts = [texts]
        vectors = embed(list(texts), self.body, cache_dir=self.cache_dir, show_progress=show_progress)
        return torch.as_tensor(np.asarray(vectors, dtype=np.float64))

    def _labels(self, data: Dataset) -> torch.Tensor:
        return torch.as_tensor(data.label_ids(self.label_names))

    # ---- training --------------------------------------------------------------------------
    @holds_run_dir
    def fit(
        self,
        train: Dataset,
        validation: Dataset | None = None,
        *,
        args: TrainingArguments | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        body_tuning: Any = None,
        save: bool = True,
    ) -> TrainResult:
        """Train the head on ``train``, selecting the epoch on ``validation``; checkpoints go to ``run_dir``.

        The trained model is saved to ``run_dir`` at the end unless ``save`` is False (a caller that adds
        metrics first, such as the test accuracy, then saves once: ``metrics.json`` is written in one piece).

        ``body_tuning`` ("contrastive", a dict or ``BodyTuningArguments``) first tunes the body with setfit
        (phase 1, saved to ``run_dir/body``); the head is then trained on the tuned body's embeddings.
        """
        args = args or TrainingArguments()
        self._check_training_data(train)
        self.label_names = list(train.label_names)
        if body_tuning is not None:
            from qsetfit.training.body_tuning import prepare_tuned_body

            resume = prepare_tuned_body(
                self, train, run_dir, body_tuning, seed=args.seed, resume=resume, progress=progress
            )
        x_train = self.embed(train.texts, show_progress=progress)
        dim = x_train.shape[1] if needs_input_dim(self.config) else None
        if self.head is None or args.seed != self.seed or self.head.input_dim != dim:  # seed drives initial weights
            self.seed, self.head = args.seed, HybridHead(self.config, seed=args.seed, input_dim=dim)
        val = None
        if validation is not None and len(validation):
            val = (self.embed(validation.texts, show_progress=progress), self._labels(validation))
        ckpt = Path(run_dir) / persistence.CHECKPOINT if run_dir is not None else None
        identity = run_identity(train, validation, self.base_body or self.body, self.config.to_dict())
        trainer = Trainer(
            self.head,
            args,
            (x_train, torch.tensor(train.labels)),
            val,
            checkpoint_dir=ckpt,
            progress=progress,
            identity=identity,
        )
        self.result = trainer.train(resume=resume)
        self.training_args = args
        self.head.set_engine("torch")
        if self.body_tuning is not None and self.body_tuning.end_to_end:
            from qsetfit.training.body_tuning import train_end_to_end

            train_end_to_end(self, train, args, progress=progress)
        if run_dir is not None and save:
            self.save(run_dir)
        return self.result

    def _check_training_data(self, train: Dataset) -> None:
        """One clear error for training data the head cannot learn from: empty, one class, or too many classes."""
        if not len(train):
            raise QSetFitError("the training Dataset is empty; pass labelled examples of at least two classes")
        if len(set(train.labels)) < 2:
            raise QSetFitError("the training data holds a single class; a classifier needs at least two")
        if len(train.label_names) != self.config.classes:
            raise QSetFitError(
                f"the data has {len(train.label_names)} classes {train.label_names} but the head "
                f"has classes={self.config.classes}; set classes={len(train.label_names)}"
            )

    # ---- inference -------------------------------------------------------------------------
    def _on(self, backend: str | None) -> None:
        """Point module 2 at ``backend``; IBM profiles record their jobs in the run's ledger (and resume)."""
        options: dict[str, Any] = {}
        if backend and self.run_dir is not None and engine_kind(backend) == "ibm":
            options["ledger"] = self.run_dir
        self.trained_head.set_engine(backend or "torch", **options)

    @torch.no_grad()
    def predict_proba(
        self, texts: Sequence[str], *, backend: str | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """(N, K) class probabilities, module 2 executed on ``backend`` (default: the torch engine)."""
        for i, text in enumerate([texts] if isinstance(texts, str) else texts):
            if not isinstance(text, str) or not text.strip():
                raise QSetFitError(
                    f"text {i} is {'empty' if isinstance(text, str) else type(text).__name__} "
                    f"({text!r}); predict needs a non-empty string per text"
                )
        self._on(backend)
        return torch.softmax(self.trained_head.logits(self.embed(texts, show_progress=show_progress)), dim=1).numpy()

    def predict(self, texts: Sequence[str], *, backend: str | None = None) -> list[str]:
        """Predicted label names."""
        return [self.label_names[i] for i in self.predict_proba(texts, backend=backend).argmax(axis=1)]

    def evaluate(self, data: Dataset, *, backend: str | None = None, show_progress: bool = False) -> dict[str, Any]:
        """Accuracy and mean cross-entropy on labelled ``data`` with module 2 on ``backend``."""
        labels = self._labels(data)
        self._on(backend)
        metrics = evaluate(
            self.trained_head, self.embed(data.texts, show_progress=show_progress), labels, batch_size=1 << 20
        )
        return {"accuracy": metrics["accuracy"], "loss": metrics["loss"], "n": len(data), "backend": backend or "torch"}

    # ---- persistence -----------------------------------------------------------------------
    def save(self, run_dir: str | Path) -> Path:
        """Write config.json, head.safetensors, circuit.qpy (and metrics/history/plot after training)."""
        out = Path(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        clear_complete(out)  # rewriting: the folder is not a finished run until the marker is back
        quantum = self.trained_head.quantum
        assert quantum is not None  # a QSetFitModel's head always has module 2 (only ablations drop it)
        persistence.write_json(
            out / persistence.CONFIG,
            {
                "format_version": persistence.FORMAT_VERSION,
                "head": self.config.to_dict(),
                "body": self.base_body or self.body,
                "tuned_body": copy_tuned_body(self, out),
                "label_names": self.label_names,
                "seed": self.seed,
                "training": self.training_args.to_dict() if self.training_args else None,
                "weight_order": [str(p) for p in quantum.head_circuit.weights],
                "embedding_dim": self.trained_head.input_dim,
            },
        )
        persistence.write_tensors(out / persistence.WEIGHTS, self.trained_head.state_dict())
        persistence.write_circuit(out / persistence.CIRCUIT, quantum.head_circuit.circuit)
        if self.result is not None:
            persistence.write_history(out / persistence.HISTORY, self.result.history)
            self.metrics |= {
                "best_epoch": self.result.best_epoch,
                "best_validation": self.result.best_validation,
                "parameters": self.config.parameter_counts(self.trained_head.input_dim),
            }
            from qsetfit.bench.plots import learning_curve

            learning_curve(self.result.history, out / "learning_curve.png")
        persistence.write_json(out / persistence.METRICS, self.metrics)
        mark_complete(out)  # last: a folder without it did not finish
        return out

    @classmethod
    def load(cls, run_dir: str | Path, *, cache_dir: str | Path | None = None) -> QSetFitModel:
        """Rebuild a saved model (safetensors + JSON only; nothing is unpickled)."""
        path = Path(run_dir)
        if not path.is_dir():
            raise QSetFitError(f"run directory {path} does not exist; pass the --out folder of a training run")
        require_complete(path)
        cfg = persistence.read_json(path / persistence.CONFIG)
        if cfg.get("format_version") != persistence.FORMAT_VERSION:
            raise QSetFitError(f"{path} was written by an incompatible qsetfit (format {cfg.get('format_version')})")
        check_keys(cfg, list(CONFIG_KEYS), f"key in {path / persistence.CONFIG}:")
        config = HeadConfig.from_dict(cfg["head"])
        model = cls(config, body=cfg["body"], label_names=cfg["label_names"], seed=cfg["seed"], cache_dir=cache_dir)
        if cfg.get("tuned_body"):
            attach_tuned_body(model, path / cfg["tuned_body"], cfg["body"])
        if needs_input_dim(config):
            if not isinstance(cfg.get("embedding_dim"), int):
                raise QSetFitError(
                    f"{path / persistence.CONFIG} lacks embedding_dim, which a PCA reduction or a "
                    "linear module 1 needs; the run is incomplete: train it again"
                )
            model.head = HybridHead(config, seed=cfg["seed"], input_dim=cfg["embedding_dim"])
        if cfg.get("training"):
            model.training_args = TrainingArguments.from_dict(cfg["training"])
        state = persistence.read_tensors(path / persistence.WEIGHTS)
        missing = set(model.trained_head.state_dict()) ^ set(state)
        if missing:
            raise QSetFitError(f"{path / persistence.WEIGHTS} does not match config.json (keys {sorted(missing)})")
        _check_shapes(model.trained_head.state_dict(), state, path)
        model.trained_head.load_state_dict(state)
        _check_circuit(path / persistence.CIRCUIT, model.trained_head)
        model.run_dir = path
        metrics_path = path / persistence.METRICS
        model.metrics = persistence.read_json(metrics_path) if metrics_path.is_file() else {}
        return model

    # ---- the Hugging Face model API (qsetfit.hub) -------------------------------------------
    def save_pretrained(self, save_directory: str | Path) -> Path:
        """``save`` plus the model card (README.md); a tuned body is copied into ``save_directory/body``."""
        from qsetfit import hub

        return hub.save_pretrained(self, save_directory)

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | Path,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> QSetFitModel:
        """Load a run directory or a Hugging Face Hub repository (downloaded with ``snapshot_download``)."""
        from qsetfit import hub

        return hub.from_pretrained(
            cls, path_or_repo_id, revision=revision, token=token, local_files_only=local_files_only
        )

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        commit_message: str = "Upload qsetfit model",
    ) -> str:
        """Upload the run directory (model card included) with ``HfApi.upload_folder``; returns the commit URL."""
        from qsetfit import hub

        return hub.push_to_hub(self, repo_id, token=token, private=private, commit_message=commit_message)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.head.parameters()) if self.head is not None else "not built yet"
        return (
            f"QSetFitModel(body={self.body!r}, labels={self.label_names}, parameters={n}, qubits={self.config.qubits})"
        )


CONFIG_KEYS = (
    "format_version",
    "head",
    "body",
    "tuned_body",
    "label_names",
    "seed",
    "training",
    "weight_order",
    "embedding_dim",
)  # what save() writes to config.json; load() refuses anything else


def _check_shapes(expected: dict[str, torch.Tensor], saved: dict[str, torch.Tensor], path: Path) -> None:
    """One clear error when config.json builds a head whose tensors differ in shape from the saved weights."""
    wrong = [(k, tuple(saved[k].shape), tuple(v.shape)) for k, v in expected.items() if v.shape != saved[k].shape]
    if wrong:
        name, found, needed = wrong[0]
        raise QSetFitError(
            f"{path / persistence.WEIGHTS} does not match {path / persistence.CONFIG}: {name} has "
            f"shape {found} but config.json builds {needed} ({len(wrong)} tensor(s) differ); restore "
            "the run's config.json or train again"
        )


def _circuit_signature(circuit: Any) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Each gate's name, qubits and angle expressions: what must match for the saved weights to mean the same."""
    return [
        (
            inst.operation.name,
            tuple(circuit.find_bit(q).index for q in inst.qubits),
            tuple(str(p) for p in inst.operation.params),
        )
        for inst in circuit.data
    ]


def _check_circuit(path: Path, head: HybridHead) -> None:
    """The circuit a run saved must be the one this qsetfit builds from its config.json (else its weights would
    silently drive another circuit, e.g. after a change to ``build_head_circuit``)."""
    if head.quantum is None or not path.is_file():
        return
    saved = _circuit_signature(persistence.read_circuit(path))
    built = _circuit_signature(head.quantum.head_circuit.circuit)
    if saved != built:
        pairs = zip(saved, built, strict=False)  # lengths may differ
        at = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(saved), len(built)))
        raise QSetFitError(
            f"{path} differs from the circuit this qsetfit builds from config.json (first at gate {at}"
            f" of {len(saved)}); load the run with the qsetfit version that trained it"
        )
