"""``QSetFitModel``: text in, labels out, in the spirit of setfit (fit / predict / predict_proba / save / load).

It owns the body name, the label names and the head; embeddings come from the on-disk cache, so a
second pass over the same texts encodes nothing. Inference runs on any engine or backend profile chosen
at call time (``backend=``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from qsetfit import persistence
from qsetfit.circuits import HeadConfig
from qsetfit.data import Dataset
from qsetfit.embeddings import DEFAULT_BODY, embed
from qsetfit.errors import QSetFitError
from qsetfit.head import HybridHead
from qsetfit.trainer import Trainer, TrainResult, evaluate
from qsetfit.training_args import TrainingArguments

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
        self.head = HybridHead(config, seed=seed)
        self.training_args: TrainingArguments | None = None
        self.result: TrainResult | None = None
        self.metrics: dict[str, Any] = {}
        self.run_dir: Path | None = None  # set by load/save: hardware jobs are recorded in its ledger

    # ---- embeddings ------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], *, show_progress: bool = True) -> torch.Tensor:
        """(N, D) float64 embeddings of ``texts`` from the cache (encoding only what is missing)."""
        if isinstance(texts, str):
            texts = [texts]
        vectors = embed(list(texts), self.body, cache_dir=self.cache_dir, show_progress=show_progress)
        return torch.as_tensor(np.asarray(vectors, dtype=np.float64))

    def _labels(self, data: Dataset) -> torch.Tensor:
        if data.label_names != self.label_names:
            unknown = sorted(set(data.label_names) - set(self.label_names))
            if unknown:
                raise QSetFitError(f"labels {unknown} were never seen in training (known: {self.label_names}); "
                                   "evaluate on data with the training labels")
            remap = [self.label_names.index(name) for name in data.label_names]
            return torch.tensor([remap[y] for y in data.labels])
        return torch.tensor(data.labels)

    # ---- training --------------------------------------------------------------------------
    def fit(
        self,
        train: Dataset,
        validation: Dataset | None = None,
        *,
        args: TrainingArguments | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> TrainResult:
        """Train the head on ``train``, selecting the epoch on ``validation``; checkpoints go to ``run_dir``."""
        args = args or TrainingArguments()
        if len(set(train.labels)) < 2:
            raise QSetFitError("the training data holds a single class; a classifier needs at least two")
        if len(train.label_names) != self.config.classes:
            raise QSetFitError(f"the data has {len(train.label_names)} classes {train.label_names} but the head "
                               f"has classes={self.config.classes}; set classes={len(train.label_names)}")
        self.label_names = list(train.label_names)
        if args.seed != self.seed:  # the seed drives the initial weights too
            self.seed, self.head = args.seed, HybridHead(self.config, seed=args.seed)
        x_train = self.embed(train.texts, show_progress=progress)
        val = None
        if validation is not None and len(validation):
            val = (self.embed(validation.texts, show_progress=progress), self._labels(validation))
        ckpt = Path(run_dir) / persistence.CHECKPOINT if run_dir is not None else None
        trainer = Trainer(self.head, args, (x_train, torch.tensor(train.labels)), val,
                          checkpoint_dir=ckpt, progress=progress)
        self.result = trainer.train(resume=resume)
        self.training_args = args
        self.head.set_engine("torch")
        if run_dir is not None:
            self.save(run_dir)
        return self.result

    # ---- inference -------------------------------------------------------------------------
    def _on(self, backend: str | None) -> None:
        """Point module 2 at ``backend``; IBM profiles record their jobs in the run's ledger (and resume)."""
        options: dict[str, Any] = {}
        if backend and self.run_dir is not None:
            from qsetfit import profiles

            if (backend.endswith(".toml") or backend in profiles.profile_names("backend")) \
                    and profiles.load_backend_profile(backend).engine == "ibm":
                options["ledger"] = self.run_dir
        self.head.set_engine(backend or "torch", **options)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], *, backend: str | None = None, show_progress: bool = False
                      ) -> np.ndarray:
        """(N, K) class probabilities, module 2 executed on ``backend`` (default: the torch engine)."""
        self._on(backend)
        self.head.eval()
        logits, _ = self.head(self.embed(texts, show_progress=show_progress))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, texts: Sequence[str], *, backend: str | None = None) -> list[str]:
        """Predicted label names."""
        return [self.label_names[i] for i in self.predict_proba(texts, backend=backend).argmax(axis=1)]

    def evaluate(self, data: Dataset, *, backend: str | None = None, show_progress: bool = False) -> dict[str, Any]:
        """Accuracy and mean cross-entropy on labelled ``data`` with module 2 on ``backend``."""
        labels = self._labels(data)
        self._on(backend)
        metrics = evaluate(self.head, self.embed(data.texts, show_progress=show_progress), labels,
                           batch_size=1 << 20)
        return {"accuracy": metrics["accuracy"], "loss": metrics["loss"], "n": len(data),
                "backend": backend or "torch"}

    # ---- persistence -----------------------------------------------------------------------
    def save(self, run_dir: str | Path) -> Path:
        """Write config.json, head.safetensors, circuit.qpy (and metrics/history/plot after training)."""
        out = Path(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        persistence.write_json(out / persistence.CONFIG, {
            "format_version": persistence.FORMAT_VERSION,
            "head": self.config.to_dict(),
            "body": self.body,
            "label_names": self.label_names,
            "seed": self.seed,
            "training": self.training_args.to_dict() if self.training_args else None,
            "weight_order": [str(p) for p in self.head.quantum.head_circuit.weights],
        })
        persistence.write_tensors(out / persistence.WEIGHTS, self.head.state_dict())
        persistence.write_circuit(out / persistence.CIRCUIT, self.head.quantum.head_circuit.circuit)
        if self.result is not None:
            persistence.write_history(out / persistence.HISTORY, self.result.history)
            self.metrics |= {"best_epoch": self.result.best_epoch, "best_validation": self.result.best_validation,
                             "parameters": self.config.parameter_counts()}
            from qsetfit.plots import learning_curve

            learning_curve(self.result.history, out / "learning_curve.png")
        persistence.write_json(out / persistence.METRICS, self.metrics)
        return out

    @classmethod
    def load(cls, run_dir: str | Path, *, cache_dir: str | Path | None = None) -> "QSetFitModel":
        """Rebuild a saved model (safetensors + JSON only; nothing is unpickled)."""
        path = Path(run_dir)
        if not path.is_dir():
            raise QSetFitError(f"run directory {path} does not exist; pass the --out folder of a training run")
        cfg = persistence.read_json(path / persistence.CONFIG)
        if cfg.get("format_version") != persistence.FORMAT_VERSION:
            raise QSetFitError(f"{path} was written by an incompatible qsetfit (format {cfg.get('format_version')})")
        model = cls(HeadConfig.from_dict(cfg["head"]), body=cfg["body"], label_names=cfg["label_names"],
                    seed=cfg["seed"], cache_dir=cache_dir)
        if cfg.get("training"):
            model.training_args = TrainingArguments.from_dict(cfg["training"])
        state = persistence.read_tensors(path / persistence.WEIGHTS)
        missing = set(model.head.state_dict()) ^ set(state)
        if missing:
            raise QSetFitError(f"{path / persistence.WEIGHTS} does not match config.json (keys {sorted(missing)})")
        model.head.load_state_dict(state)
        model.run_dir = path
        metrics_path = path / persistence.METRICS
        model.metrics = persistence.read_json(metrics_path) if metrics_path.is_file() else {}
        return model

    def __repr__(self) -> str:
        n = self.config.num_parameters
        return f"QSetFitModel(body={self.body!r}, labels={self.label_names}, parameters={n}, qubits={self.config.qubits})"


def accuracy_ci(accuracy: float, n: int) -> float:
    """Half-width of the 95% normal-approximation interval of an accuracy on n examples."""
    return 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / max(n, 1))
