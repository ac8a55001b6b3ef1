"""One seed's split of a labelled source, embedded once through the cache: what every benchmark head is fit on.

Quantum heads (``reproduce``, ``screening``) and classical ones (``baselines``) read the same ``EmbeddedSplits``
of a seed, so they are compared on the same sentences; ``subsample`` draws the same test subsample for all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qsetfit.data.datasets import Dataset, DatasetSplits, load_splits
from qsetfit.data.embeddings import DEFAULT_BODY, embed
from qsetfit.errors import QSetFitError


@dataclass
class EmbeddedSplits:
    """One seed's split as float64 embeddings and label ids: what every head, quantum or not, is fit on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: list[str]
    seed: int

    @property
    def dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def validation(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.x_val is None or self.y_val is None else (self.x_val, self.y_val)

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.y_train),
            "validation": 0 if self.y_val is None else len(self.y_val),
            "test": len(self.y_test),
        }


def subsample(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """At most ``limit`` examples of ``dataset``, drawn without replacement by ``seed`` (kept in order)."""
    if limit is None or limit >= len(dataset):
        return dataset
    if limit < 1:
        raise QSetFitError(f"test_limit must be >= 1, got {limit}")
    picked = np.sort(np.random.default_rng(seed).choice(len(dataset), size=limit, replace=False))
    return dataset.subset(picked)


def load_seed_splits(data: str, *, seed: int, protocol: str = "paper", per_label: int = 256) -> DatasetSplits:
    """``data``'s splits for one seed: ``"demo"`` (fixed splits) or any source ``load_splits`` reads."""
    return load_splits(data, protocol=protocol, seed=seed, per_label=per_label)


def embedded_splits(
    data: str,
    *,
    body: str = DEFAULT_BODY,
    seed: int = 0,
    protocol: str = "paper",
    per_label: int = 256,
    test_limit: int | None = None,
    progress: bool = False,
) -> EmbeddedSplits:
    """Load one seed's split of ``data`` and embed it through the cache (the same call for every head)."""
    splits = load_seed_splits(data, seed=seed, protocol=protocol, per_label=per_label)
    if splits.test is None or not len(splits.test):
        raise QSetFitError(
            f"{data!r} has no test split to score on (protocol {protocol!r}); use protocol='paper' "
            "or a folder with test.csv"
        )
    test = subsample(splits.test, test_limit, seed)

    def vectors(ds: Dataset) -> np.ndarray:
        return np.asarray(embed(ds.texts, body, show_progress=progress), dtype=np.float64)

    val = splits.validation if splits.validation is not None and len(splits.validation) else None
    return EmbeddedSplits(
        vectors(splits.train),
        np.asarray(splits.train.labels),
        vectors(val) if val else None,
        np.asarray(val.labels) if val else None,
        vectors(test),
        np.asarray(test.labels),
        list(splits.label_names),
        seed,
    )
