"""SetFit's phase 1 through the ``setfit`` library: contrastive fine-tuning of the sentence-transformer body.

Pairs are drawn from the labelled training sentences by setfit's ``ContrastiveDataset`` (``num_iterations``
or its oversampling default) and the body is trained by setfit's ``Trainer.train_embeddings`` with its loss
(``CosineSimilarityLoss`` by default). The tuned body is written as a sentence-transformers folder in
safetensors (plus ``qsetfit-body.json``), atomically: a run killed mid-tuning leaves no half body, only a
hidden partial folder that the next run ignores. The embedding cache keys a tuned body by a hash of its
weights (``embeddings.body_identity``), so embeddings of different tunings never mix.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from qsetfit.io import persistence
from qsetfit.data.embeddings import TUNED_BODY_MARKER, resolve_body, weights_sha256
from qsetfit.errors import QSetFitError
from qsetfit.training.arguments import BodyTuningArguments
from qsetfit.training.length_sorted import length_sorted_loss
from qsetfit.training.mixed_precision import autocast_forward, resolve_precision

logger = logging.getLogger(__name__)

BODY_FOLDER = "body"
# setfit trains these on single sentences grouped by label and tells them apart by identity.
SINGLE_COLUMN_LOSSES = (
    "BatchAllTripletLoss",
    "BatchHardTripletLoss",
    "BatchSemiHardTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "SupConLoss",
)


def _setfit() -> Any:
    try:
        import setfit
    except ImportError as exc:
        raise QSetFitError("body tuning needs the setfit library; run `pip install 'setfit>=1.2'`") from exc
    return setfit


def _loss_class(name: str) -> Any:
    """The loss class setfit gets: pair losses embed with ``length_sorted`` (less padding, same values); setfit
    recognises its single-column losses by identity, so those are passed as they are."""
    try:  # sentence-transformers 6 moved the losses; its old path warns
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # pragma: no cover - sentence-transformers < 6
        from sentence_transformers import losses  # type: ignore[attr-defined,no-redef]

    if name == "SupConLoss":
        from setfit.losses import SupConLoss

        return SupConLoss
    loss = getattr(losses, name, None)
    if loss is None:
        raise QSetFitError(f"loss {name!r} is not in sentence_transformers.losses; e.g. 'CosineSimilarityLoss'")
    return loss if name in SINGLE_COLUMN_LOSSES else length_sorted_loss(loss)


def _setfit_args(args: BodyTuningArguments, seed: int, scratch: Path, progress: bool) -> Any:
    setfit = _setfit()
    return setfit.TrainingArguments(
        output_dir=str(scratch),
        num_iterations=args.iterations,
        sampling_strategy=args.sampling_strategy,
        num_epochs=(args.epochs, 1),
        batch_size=(args.batch_size, 16),
        body_learning_rate=(args.learning_rate, args.learning_rate),
        loss=_loss_class(args.loss),
        max_steps=args.max_steps,
        seed=seed,
        show_progress_bar=progress,
        report_to="none",
        save_strategy="no",
    )


def contrastive_pairs(
    texts: Sequence[str], labels: Sequence[int], args: BodyTuningArguments, seed: int
) -> list[dict[str, Any]]:
    """The (sentence_1, sentence_2, label) pairs setfit's sampler draws for phase 1 (its ``ContrastiveDataset``)."""
    _setfit()
    from setfit.sampler import ContrastiveDataset
    from transformers import set_seed

    set_seed(seed)
    return list(ContrastiveDataset(list(texts), list(labels), None, args.iterations, args.sampling_strategy))


def pair_loss(body: Any, pairs: Sequence[dict[str, Any]]) -> float:
    """Mean (cos(e1, e2) - label)^2 over ``pairs``: ``CosineSimilarityLoss`` evaluated without gradients."""
    first = body.encode([p["sentence_1"] for p in pairs], convert_to_numpy=True, normalize_embeddings=True)
    second = body.encode([p["sentence_2"] for p in pairs], convert_to_numpy=True, normalize_embeddings=True)
    cosine = (np.asarray(first) * np.asarray(second)).sum(axis=1)
    return float(np.mean((cosine - np.array([p["label"] for p in pairs], dtype=float)) ** 2))


def load_body(body: str) -> Any:
    """A ``SentenceTransformer`` for ``body`` on the CPU (a name, a folder or the packaged MiniLM)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_body(body), device="cpu")


def tune_body(
    base_body: str,
    texts: Sequence[str],
    labels: Sequence[int],
    out: str | Path,
    args: BodyTuningArguments | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Phase 1: tune ``base_body`` contrastively on labelled ``texts`` with setfit; save it to ``out``.

    Args:
        base_body: the body to start from (see ``embeddings.resolve_body``).
        texts: the training sentences.
        labels: one label id per sentence.
        out: the folder to write (replaced atomically if it exists).
        args: the tuning knobs (default ``BodyTuningArguments()``).
        seed: seeds pair sampling and training when ``args.seed`` is None.
        progress: show setfit's progress bar.

    Returns:
        ``out``: a sentence-transformers folder in safetensors with ``qsetfit-body.json``.

    Raises:
        QSetFitError: setfit missing, fewer than two classes, or bad arguments.
    """
    args = args or BodyTuningArguments()
    if len(set(labels)) < 2:
        raise QSetFitError("body tuning needs at least two classes in the training data")
    seed = args.seed if args.seed is not None else seed
    setfit = _setfit()
    body = load_body(base_body)
    from sklearn.linear_model import LogisticRegression

    model = setfit.SetFitModel(model_body=body, model_head=LogisticRegression())  # head unused in phase 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qsetfit-setfit-") as scratch:
        trainer = setfit.Trainer(
            model=model, args=_setfit_args(args, seed, Path(scratch), progress), metric=lambda y_pred, y_true: {}
        )
        with autocast_forward(body, args.precision):
            trainer.train_embeddings(list(texts), list(labels))
    return save_body(
        body, out, base_body=base_body, args=args, seed=seed, n=len(texts), seconds=time.perf_counter() - started
    )


def _save_folder(
    body: Any,
    folder: Path,
    base_body: str,
    args: BodyTuningArguments,
    seed: int,
    n: int,
    stage: str,
    seconds: float | None,
) -> None:
    body.save(str(folder), safe_serialization=True, create_model_card=False)
    pickles = [p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pkl", ".pt", ".pth")]
    if pickles:  # our loader never unpickles: refuse to leave any behind
        raise QSetFitError(f"the tuned body was written with pickled files {pickles}; upgrade sentence-transformers")
    persistence.write_json(
        folder / TUNED_BODY_MARKER,
        {
            "base_body": base_body,
            "tuning": args.to_dict(),
            "seed": seed,
            "train_sentences": n,
            "stage": stage,
            "precision_used": resolve_precision(args.precision),
            "tuning_seconds": None if seconds is None else round(seconds, 1),
            "weights_sha256": weights_sha256(folder),
        },
    )


def save_body(
    body: Any,
    out: str | Path,
    *,
    base_body: str,
    args: BodyTuningArguments,
    seed: int,
    n: int,
    stage: str = "contrastive",
    seconds: float | None = None,
) -> Path:
    """Write an in-memory ``SentenceTransformer`` as a tuned-body folder; ``stage`` says what trained it last
    ("contrastive": phase 1; "end-to-end": body and head together), ``seconds`` how long phase 1 took."""
    out = Path(out)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    try:
        _save_folder(body, partial, base_body, args, seed, n, stage, seconds)
        if out.exists():
            shutil.rmtree(out)
        partial.replace(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _forget_loaded(out)
    return out


def _forget_loaded(folder: Path) -> None:
    """The encoder cache is keyed by path: drop a stale encoder of a folder that now holds new weights."""
    from qsetfit.data import embeddings

    embeddings._load_encoder.cache_clear()


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """``qsetfit-body.json`` of a tuned-body folder, or None when the folder is absent."""
    path = Path(folder) / TUNED_BODY_MARKER
    return persistence.read_json(path) if path.is_file() else None


def tuned_or_resumed(
    base_body: str,
    texts: Sequence[str],
    labels: Sequence[int],
    out: Path,
    args: BodyTuningArguments,
    *,
    seed: int,
    resume: bool,
    progress: bool,
) -> tuple[Path, bool]:
    """On ``resume``, reuse the finished body in ``out`` when it was tuned the same way; else tune afresh.

    A run killed during phase 1 left no ``out`` (it is written by one rename), so it is tuned again; a run
    killed during phase 2 finds its body, whose weight hash must still match, so the head resumes on it.

    Returns:
        (the body folder, whether an existing body was reused).
    """
    marker = read_marker(out) if resume else None
    if marker is not None and marker.get("stage") == "end-to-end":
        # Trained jointly with the head already: phase 2 resumed on it would mix two bodies' embeddings.
        logger.warning("%s was already trained end to end; tuning the body afresh", out)
        marker = None
    if marker is not None:
        expected = {
            "base_body": base_body,
            "tuning": args.to_dict(),
            "seed": args.seed if args.seed is not None else seed,
            "train_sentences": len(texts),
        }
        differing = sorted(k for k, v in expected.items() if marker.get(k) != v)
        if differing:
            raise QSetFitError(
                f"cannot resume: {out} was tuned with other settings (differing: "
                f"{', '.join(differing)}); rerun with the same options or pick another --out"
            )
        if marker.get("weights_sha256") != weights_sha256(out):
            raise QSetFitError(f"cannot resume: the weights in {out} changed after tuning; pick another --out")
        logger.info("resuming on the tuned body in %s", out)
        return out, True
    return tune_body(base_body, texts, labels, out, args, seed=seed, progress=progress), False


# ---- QSetFitModel's hooks (kept here so modeling.py only calls them) ------------------------------
def prepare_tuned_body(
    model: Any, train: Any, run_dir: str | Path | None, body_tuning: Any, *, seed: int, resume: bool, progress: bool
) -> bool:
    """Phase 1 for ``QSetFitModel.fit``: point ``model.body`` at a tuned body (``run_dir/body`` or a temporary
    folder); return whether the head's checkpoint may be resumed (only on the very body it was trained on)."""
    args = BodyTuningArguments.coerce(body_tuning)
    assert args is not None  # QSetFitModel.fit calls this only when body_tuning is set
    base = model.base_body or model.body
    if run_dir is None:
        out = Path(tempfile.mkdtemp(prefix="qsetfit-body-")) / BODY_FOLDER
    else:
        out = Path(run_dir) / BODY_FOLDER
    folder, reused = tuned_or_resumed(
        base, train.texts, train.labels, out, args, seed=seed, resume=resume, progress=progress
    )
    checkpoint = Path(run_dir) / persistence.CHECKPOINT if run_dir is not None else None
    if resume and not reused and checkpoint is not None and checkpoint.exists():
        # The head's checkpoint was trained on embeddings of a body that is gone: never mix the two.
        logger.warning("the body was tuned again, so the head checkpoint in %s is discarded", checkpoint)
        shutil.rmtree(checkpoint)
    model.base_body, model.body, model.body_tuning = base, str(folder), args
    return resume and reused


def copy_tuned_body(model: Any, out: Path) -> str | None:
    """Make ``out/body`` hold the model's tuned body (copied when it lives elsewhere); its folder name or None."""
    if model.body_tuning is None:
        return None
    src, dst = Path(model.body).resolve(), (out / BODY_FOLDER)
    if dst.resolve() != src:
        partial = out / f".{BODY_FOLDER}.partial-{secrets.token_hex(4)}"
        shutil.copytree(src, partial)
        if dst.exists():
            shutil.rmtree(dst)
        partial.replace(dst)
        _forget_loaded(dst)
    return BODY_FOLDER


def attach_tuned_body(model: Any, folder: Path, base_body: str) -> None:
    """On load: point ``model`` at the run's tuned body, checking it is one (its marker and weight hash)."""
    marker = read_marker(folder)
    if marker is None:
        raise QSetFitError(f"{folder} (the run's tuned body) is missing or incomplete; copy the whole run folder")
    if marker.get("weights_sha256") != weights_sha256(folder):
        raise QSetFitError(
            f"the weights in {folder} do not match the hash recorded when it was tuned; "
            "the body was modified: train the run again"
        )
    model.base_body, model.body = base_body, str(folder)
    model.body_tuning = BodyTuningArguments.coerce(marker["tuning"])


def train_end_to_end(model: Any, train: Any, args: Any, *, progress: bool) -> None:
    """setfit's ``end_to_end``: body and quantum head trained together (``SetFitModel.fit``), then the body saved
    again (a new weight hash, so a new cache key). The torch engine only: module 2 needs autograd."""
    if args.engine != "torch":
        raise QSetFitError(
            f"end_to_end trains through the body with autograd and needs --backend torch, got {args.engine!r}"
        )
    setfit = _setfit()
    from qsetfit.head.setfit_head import SetFitQuantumHead

    tuning = model.body_tuning
    body = load_body(model.body)
    joint = setfit.SetFitModel(model_body=body, model_head=SetFitQuantumHead(head=model.head))
    model.head.set_engine("torch")
    joint.fit(
        list(train.texts),
        list(train.labels),
        num_epochs=tuning.epochs,
        batch_size=args.batch_size,
        body_learning_rate=tuning.learning_rate,
        head_learning_rate=args.learning_rate,
        l2_weight=args.weight_decay,
        end_to_end=True,
        show_progress_bar=progress,
    )
    seed = tuning.seed if tuning.seed is not None else args.seed
    save_body(
        body, model.body, base_body=model.base_body, args=tuning, seed=seed, n=len(train.texts), stage="end-to-end"
    )
