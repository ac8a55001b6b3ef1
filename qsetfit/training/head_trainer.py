"""The training loop: AdamW, a pure learning-rate schedule, model selection on validation, checkpoints.

The only place that steps an optimizer. A checkpoint (one safetensors file, trainer state in its
metadata) is written atomically after every epoch; ``resume=True`` continues from it and reaches the
same final weights as an uninterrupted run with the same seed (the batch order and shot noise come from
one seeded generator whose state is checkpointed too).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from qsetfit.io import persistence
from qsetfit.errors import QSetFitError
from qsetfit.engines.torch.noisy import training_engine
from qsetfit.head.hybrid import HybridHead
from qsetfit.training.arguments import TrainingArguments

logger = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.safetensors"


def lr_at(step: int, total_steps: int, args: TrainingArguments) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of ``total_steps``."""
    if step < args.warmup_steps:
        return args.learning_rate * (step + 1) / args.warmup_steps
    span = max(1, total_steps - args.warmup_steps)
    progress = min(1.0, (step - args.warmup_steps) / span)
    if args.schedule == "cosine":
        return args.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
    if args.schedule == "linear":
        return args.learning_rate * (1 - progress)
    return args.learning_rate


def batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A seeded shuffle of range(n), cut into batches."""
    order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


@torch.no_grad()
def evaluate(head: HybridHead, embeddings: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 512) -> dict:
    """Mean cross-entropy and accuracy of ``head`` on a labelled set."""
    if not len(labels):
        raise QSetFitError("evaluate needs at least one labelled example")
    logits = head.logits(embeddings, batch_size=batch_size)
    loss = float(F.cross_entropy(logits, labels.to(logits.device)))
    return {"loss": loss, "accuracy": float((logits.argmax(dim=1) == labels).float().mean())}


@dataclass
class TrainResult:
    """What training produced: per-epoch history and the selected epoch."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_validation: dict[str, float] | None = None


class Trainer:
    """Trains a ``HybridHead`` on embeddings.

    Args:
        head: the head to train (its module-2 engine is switched to ``args.engine`` for training).
        args: the training knobs.
        train: (embeddings (N, D), label ids (N,)).
        validation: optional (embeddings, label ids) for model selection and early stopping.
        checkpoint_dir: where the per-epoch checkpoint goes (None: no checkpoints).
        progress: show progress bars.
        identity: what a resume must share with the checkpoint (``rundir.run_identity``: data hashes, body,
            head config); stored with every checkpoint and compared on resume.
    """

    def __init__(
        self,
        head: HybridHead,
        args: TrainingArguments,
        train: tuple[torch.Tensor, torch.Tensor],
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        *,
        checkpoint_dir: Path | None = None,
        progress: bool = True,
        identity: dict[str, Any] | None = None,
    ) -> None:
        self.head, self.args, self.identity = head, args, identity
        self.train_set, self.validation = train, validation
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.progress = progress
        if len(train[0]) != len(train[1]):
            raise QSetFitError(f"{len(train[0])} training embeddings but {len(train[1])} labels")
        self.generator = torch.Generator().manual_seed(args.seed)
        self.optimizer = torch.optim.AdamW(head.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
        self.steps_per_epoch = math.ceil(len(train[1]) / args.batch_size)
        self.total_steps = self.steps_per_epoch * args.epochs

    # ---- checkpoints -----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_FILE

    def _save_checkpoint(self, epoch: int, step: int, result: TrainResult, best: dict, stale: int) -> None:
        if self.checkpoint_path is None:
            return
        tensors = {f"model.{k}": v for k, v in self.head.state_dict().items()}
        tensors |= {f"best.{k}": v for k, v in best.items()}
        optim_tensors, optim_meta = persistence.optimizer_to_tensors(self.optimizer.state_dict())
        tensors |= optim_tensors
        tensors["rng.generator"] = self.generator.get_state()
        meta = {
            "epoch": epoch,
            "step": step,
            "stale": stale,
            "args": self.args.to_dict(),
            "optimizer": optim_meta,
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_validation": result.best_validation,
            "identity": self.identity,
        }
        persistence.write_tensors(self.checkpoint_path, tensors, metadata={"trainer": json.dumps(meta)})

    def _load_checkpoint(self, result: TrainResult) -> tuple[int, int, dict, int]:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            raise QSetFitError(f"nothing to resume: no checkpoint at {path}; start without --resume")
        meta, tensors = _read_checkpoint(path)
        self._check_identity(meta.get("identity"), path)
        if meta["args"] != self.args.to_dict():
            changed = sorted(k for k in meta["args"] if meta["args"][k] != self.args.to_dict().get(k))
            raise QSetFitError(
                f"cannot resume: training arguments differ from the checkpoint's ({changed}); "
                "resume with the same arguments or start a new run"
            )
        try:
            self.head.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        except RuntimeError as exc:  # a head of another shape (a checkpoint from before identities were stored)
            raise QSetFitError(
                f"cannot resume from {path}: it holds a head of another shape "
                f"({str(exc).splitlines()[-1].strip()}); use the run's head options or start a "
                "new run with another --out"
            ) from None
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        self.optimizer.load_state_dict(persistence.optimizer_from_tensors(tensors, meta["optimizer"]))
        self.generator.set_state(tensors["rng.generator"])
        result.history, result.best_epoch = meta["history"], meta["best_epoch"]
        result.best_validation = meta["best_validation"]
        logger.info("resuming after epoch %d from %s", meta["epoch"], path)
        return meta["epoch"], meta["step"], best, meta["stale"]

    def _check_identity(self, saved: dict[str, Any] | None, path: Path) -> None:
        from qsetfit.io.rundir import identity_mismatch

        if saved is None or self.identity is None:  # a bare Trainer, or a checkpoint older than identities
            return
        differs = identity_mismatch(saved, json.loads(json.dumps(self.identity)))
        if differs:
            raise QSetFitError(
                f"cannot resume from {path}: it was trained with another {differs}; resume with "
                "the run's --data, --body and head options, or start a new run with another --out"
            )

    # ---- the loop --------------------------------------------------------------------------
    def _is_better(self, metrics: dict, best: dict | None) -> bool:
        if best is None:
            return True
        return (metrics["accuracy"], -metrics["loss"]) > (best["accuracy"], -best["loss"])

    def train(self, *, resume: bool = False) -> TrainResult:
        """Run the epochs; leave the head holding the selected (best-on-validation, else last) weights, on the
        engine it ran on before (training switches module 2 to ``args.engine``, or to noisy trajectories)."""
        before = self.head.engine_spec
        engine, engine_options = training_engine(
            self.args.engine, self.args.train_noise, self.args.train_trajectories, self.args.seed
        )
        if before != (engine, engine_options):
            self.head.set_engine(engine, **engine_options)
        try:
            return self._epochs(resume)
        finally:
            if before is not None and self.head.engine_spec != before:
                self.head.set_engine(before[0], **before[1])

    def _train_epoch(self, epoch: int, step: int) -> dict[str, Any]:
        """One pass over the training set in shuffled batches from optimizer step ``step``; the epoch's history
        row (epoch, step reached, last learning rate, training loss and accuracy)."""
        args, head = self.args, self.head
        emb, labels = self.train_set
        head.train()
        seen, loss_sum, correct = 0, 0.0, 0
        for idx in batches(len(labels), args.batch_size, self.generator):
            lr = lr_at(step, self.total_steps, args)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            logits, loss = head(emb[idx], labels[idx], shots=args.train_shots, generator=self.generator)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(head.parameters(), args.max_grad_norm)
            self.optimizer.step()
            step += 1
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(dim=1) == labels[idx]).sum())
        return {
            "epoch": epoch + 1,
            "step": step,
            "lr": lr,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
        }

    def _epochs(self, resume: bool) -> TrainResult:
        args, head = self.args, self.head
        result = TrainResult()
        best: dict[str, torch.Tensor] = {}
        start_epoch, step, stale = 0, 0, 0
        if resume:  # the fitted PCA comes back with the checkpoint's state
            start_epoch, step, best, stale = self._load_checkpoint(result)
        else:
            head.prepare(self.train_set[0])
        bar = tqdm(
            range(start_epoch, args.epochs),
            desc="training",
            unit="epoch",
            disable=not self.progress,
            initial=start_epoch,
            total=args.epochs,
        )
        for epoch in bar:
            if args.patience is not None and stale >= args.patience:
                break
            t0 = time.perf_counter()
            row = self._train_epoch(epoch, step)
            step = row["step"]
            if self.validation is not None:
                val = evaluate(head, *self.validation)
                row |= {"val_loss": val["loss"], "val_accuracy": val["accuracy"]}
                if self._is_better(val, result.best_validation):
                    result.best_validation, result.best_epoch, stale = val, epoch + 1, 0
                    best = {k: v.detach().clone() for k, v in head.state_dict().items()}
                else:
                    stale += 1
            row["seconds"] = round(time.perf_counter() - t0, 4)
            result.history.append(row)
            bar.set_postfix(
                {k: f"{v:.3f}" for k, v in row.items() if k in ("train_loss", "train_accuracy", "val_accuracy")}
            )
            self._save_checkpoint(epoch + 1, step, result, best, stale)
        if best:
            head.load_state_dict(best)
        else:
            result.best_epoch = len(result.history)
        return result


def _read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The trainer metadata and the tensors of a checkpoint; one clear error when it is damaged."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {})["trainer"])
        return meta, persistence.read_tensors(path)
    except Exception as exc:  # safetensors, JSON and missing-key errors alike: the file is not a checkpoint
        raise QSetFitError(
            f"cannot resume: the checkpoint {path} is damaged ({type(exc).__name__}); train again "
            "without --resume into a new --out (or delete the run folder first)"
        ) from None


# The embedding-level loop under a name that says so (qsetfit.Trainer is the setfit-shaped model trainer).
HeadTrainer = Trainer
