"""Datasets and splits: read CSV/JSONL files, folders or hub datasets and apply a split protocol.

Labels become integer ids ``0..K-1``; ``label_names[i]`` is the original label of id ``i``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from qsetfit.data.readers import (
    SPLITS,
    RawRows,
    check_two_classes,
    describe_text,
    label_names_from,
    read_rows,
    read_source,
)
from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)

__all__ = ["Dataset", "DatasetSplits", "demo_dataset", "load_file", "load_splits"]

PROTOCOLS = ("given", "paper")
DEMO_FILE = "demo_sentiment.csv"


@dataclass
class Dataset:
    """Texts with integer label ids.

    Attributes:
        texts: One non-empty string per example.
        labels: One label id per example, each in ``range(len(label_names))``.
        label_names: Id -> original label string, e.g. ``["negative", "positive"]``.
    """

    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def __post_init__(self) -> None:
        self.texts, self.labels, self.label_names = list(self.texts), list(self.labels), list(self.label_names)
        if len(self.texts) != len(self.labels):
            raise QSetFitError(
                f"Dataset got {len(self.texts)} texts but {len(self.labels)} labels; pass one label per text"
            )
        if not self.label_names or len(set(self.label_names)) != len(self.label_names):
            raise QSetFitError(
                f"Dataset label_names must be non-empty and unique, got {self.label_names!r}; "
                "pass one distinct name per label id"
            )
        for i, text in enumerate(self.texts):
            if not isinstance(text, str) or not text.strip():
                raise QSetFitError(
                    f"Dataset text {i} is {describe_text(text)} (got {text!r}); "
                    "every example needs a non-empty string: drop or fill that example"
                )
        n = len(self.label_names)
        for i, label in enumerate(self.labels):
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < n:
                raise QSetFitError(
                    f"Dataset label {i} is {label!r}, outside the ids 0..{n - 1} of label_names "
                    f"{self.label_names!r}; pass integer ids that index label_names"
                )
        self.labels = [int(label) for label in self.labels]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """Return the examples at ``indices`` (in that order), with the same label names."""
        return Dataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.label_names)

    def label_ids(self, label_names: Sequence[str]) -> np.ndarray:
        """(N,) labels as ids of ``label_names`` (a model's label order), refusing labels it never saw."""
        names = list(label_names)
        unknown = sorted(set(self.label_names) - set(names))
        if unknown:
            raise QSetFitError(
                f"labels {unknown} were never seen in training (known: {names}); evaluate on data "
                "with the training labels"
            )
        return np.asarray([names.index(self.label_names[y]) for y in self.labels], dtype=np.int64)


@dataclass
class DatasetSplits:
    """Train, validation and test sets sharing one label mapping.

    Attributes:
        train: The training set.
        validation: The model-selection set, or None.
        test: The held-out evaluation set, or None.
        label_names: Id -> original label string, shared by every split.
    """

    train: Dataset
    validation: Dataset | None
    test: Dataset | None
    label_names: list[str]

    def __post_init__(self) -> None:
        for name in SPLITS:
            split = getattr(self, name)
            if split is not None and split.label_names != self.label_names:
                raise QSetFitError(
                    f"DatasetSplits.{name} has label_names {split.label_names!r} but the splits use "
                    f"{self.label_names!r}; build every split with the same label mapping"
                )


def _to_dataset(raw: RawRows, label_names: list[str]) -> Dataset:
    index = {name: i for i, name in enumerate(label_names)}
    for row, key in zip(raw.rows, raw.keys, strict=True):
        if key not in index:
            raise QSetFitError(
                f"label {key!r} in {raw.where} ({row}) was never seen in training; known labels: "
                f"{', '.join(label_names)}. Fix the label or drop rows whose label training lacks"
            )
    return Dataset(raw.texts, [index[k] for k in raw.keys], label_names)


def load_file(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
) -> Dataset:
    """Load one CSV (``.csv``) or JSON-lines (``.jsonl``/``.json``) file.

    Args:
        path: The file: CSV with a header row, or one JSON object per line.
        text_column: Column holding the text.
        label_column: Column holding the label (integers or strings).
        label_names: An existing id -> label mapping (the training set's) to reuse; when None the
            mapping is the sorted unique labels (numerically if all are integers).

    Returns:
        The dataset with label ids.

    Raises:
        QSetFitError: Missing or empty file, missing column, empty or missing text or label (with
            its row), or a label absent from ``label_names``.
    """
    raw = read_rows(Path(path).expanduser(), text_column, label_column)
    return _to_dataset(raw, list(label_names) if label_names is not None else label_names_from(raw.keys))


def _holdout_size(n: int, fraction: float) -> int:
    """``ceil(n * fraction)`` as scikit-learn's ``test_size`` does, robust to float noise."""
    return math.ceil(round(n * fraction, 9))


def _stratified_holdout(labels: np.ndarray, n_hold: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..len(labels)-1`` into sorted (kept, held out), ``n_hold`` held out.

    Each class gives its proportional share; places left over go to the largest remainders.
    """
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_hold / len(labels)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: n_hold - int(quota.sum())]] += 1
    held = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    hold = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), hold), hold


def _paper_splits(
    raws: dict[str, RawRows], fixed: list[str] | None, *, seed: int, per_label: int, val_fraction: float, label_col: str
) -> DatasetSplits:
    """Pool every split, sample ``per_label`` a label, split it stratified; test on the rest."""
    pool = RawRows(
        [t for r in raws.values() for t in r.texts],
        [k for r in raws.values() for k in r.keys],
        " + ".join(r.where for r in raws.values()),
        [f"{r.where} {row}" for r in raws.values() for row in r.rows],
    )
    check_two_classes(pool, label_col)
    names = fixed or label_names_from(pool.keys)
    pooled = _to_dataset(pool, names)
    labels, rng = np.asarray(pooled.labels), np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_label:
            raise QSetFitError(
                f"protocol='paper' samples per_label={per_label} examples of each label, but label "
                f"{names[c]!r} has {len(members)} in {pool.where}; pass per_label<={len(members)}"
            )
        chosen.append(rng.choice(members, size=per_label, replace=False))
    sampled = np.sort(np.concatenate(chosen))
    keep, hold = _stratified_holdout(labels[sampled], _holdout_size(len(sampled), val_fraction), rng)
    train, val = sampled[keep], sampled[hold]
    if set(labels[train]) != set(labels[sampled]):
        raise QSetFitError(
            f"per_label={per_label} with val_fraction={val_fraction} leaves some label with no "
            "training example; raise per_label or lower val_fraction"
        )
    test = np.setdiff1d(np.arange(len(pooled)), sampled)
    logger.info("paper protocol: %d train / %d validation / %d test", len(train), len(val), len(test))
    tested = pooled.subset(test) if len(test) else None
    return DatasetSplits(pooled.subset(train), pooled.subset(val), tested, names)


def load_splits(
    source: str | Path,
    *,
    protocol: str = "given",
    seed: int = 0,
    per_label: int = 256,
    val_fraction: float = 0.15,
    text_column: str = "text",
    label_column: str = "label",
) -> DatasetSplits:
    """Load train/validation/test sets from a file, a folder or a hub dataset.

    Args:
        source: ``"demo"`` (the packaged sentiment set), a CSV/JSONL file (train only), a folder holding
            ``train``/``validation``/``test`` files (``.csv`` or ``.jsonl``; validation and test optional), or
            a hub dataset name such as ``"SetFit/sst2"`` (loaded with ``datasets.load_dataset``).
        protocol: ``"given"`` keeps the source's splits. ``"paper"`` (Kim et al., arXiv 2504.08732)
            pools every split, samples ``per_label`` examples of each label, splits them
            stratified into train and validation by ``val_fraction``, and tests on the rest.
        seed: Seed of the numpy Generator the ``"paper"`` protocol samples with.
        per_label: Examples sampled per label (``"paper"`` only).
        val_fraction: Share of the sample held out for validation (``"paper"`` only).
        text_column: Column holding the text.
        label_column: Column holding the label.

    Returns:
        The splits; on SST-2 the paper protocol gives 435 train / 77 validation / 9101 test.

    Raises:
        QSetFitError: A bad argument, an unreadable source, single-class training data, or a
            validation/test label never seen in training.
    """
    if str(source) == "demo":  # the packaged set: fixed splits, whatever the protocol
        return demo_dataset()
    if protocol not in PROTOCOLS:
        raise QSetFitError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if isinstance(per_label, bool) or not isinstance(per_label, int) or per_label < 2:
        raise QSetFitError(f"per_label must be an integer >= 2, got {per_label!r}; the paper uses 256")
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise QSetFitError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}; e.g. 0.15")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise QSetFitError(f"seed must be an integer, got {seed!r}")
    raws, fixed = read_source(source, text_column, label_column)
    if protocol == "paper":
        return _paper_splits(
            raws, fixed, seed=int(seed), per_label=per_label, val_fraction=val_fraction, label_col=label_column
        )
    check_two_classes(raws["train"], label_column)
    names = fixed or label_names_from(raws["train"].keys)
    sets = {split: _to_dataset(raws[split], names) if split in raws else None for split in SPLITS}
    return DatasetSplits(sets["train"], sets["validation"], sets["test"], names)  # type: ignore[arg-type]


def demo_dataset() -> DatasetSplits:
    """The packaged 400-sentence sentiment set, split 70/15/15 stratified with a fixed seed.

    Returns:
        280 train / 60 validation / 60 test examples, label names ``["negative", "positive"]``.
    """
    with resources.as_file(resources.files("qsetfit.resources").joinpath(DEMO_FILE)) as path:
        full = load_file(path)
    labels, rng = np.asarray(full.labels), np.random.default_rng(0)
    rest, test = _stratified_holdout(labels, _holdout_size(len(full), 0.15), rng)
    keep, val = _stratified_holdout(labels[rest], _holdout_size(len(full), 0.15), rng)
    return DatasetSplits(full.subset(rest[keep]), full.subset(rest[val]), full.subset(test), full.label_names)
