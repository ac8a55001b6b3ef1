"""qsetfit.bench.splits: one seed's split, subsampled and embedded once, as every benchmark head reads it."""

from __future__ import annotations

import numpy as np
import pytest

from qsetfit.bench import splits as sp
from qsetfit.bench.splits import EmbeddedSplits, embedded_splits, load_seed_splits, subsample
from qsetfit.data.datasets import demo_dataset
from qsetfit.errors import QSetFitError
from tests.helpers import write_splits


def _fake_embed(texts, body, *, show_progress):
    """Rows that name their text (length, first character), float32 like the real cache."""
    return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


def test_subsample_is_seeded_and_ordered(small_splits):
    test = small_splits.test
    a, b = subsample(test, 5, 3), subsample(test, 5, 3)
    assert a.texts == b.texts and len(a) == 5
    positions = [test.texts.index(t) for t in a.texts]
    assert positions == sorted(positions)
    assert subsample(test, None, 0) is test


def test_subsample_draws_the_numpy_choice_of_its_seed_and_refuses_zero(small_splits):
    test = small_splits.test
    expected = np.sort(np.random.default_rng(7).choice(len(test), size=4, replace=False))
    assert subsample(test, 4, 7).texts == [test.texts[i] for i in expected]
    assert subsample(test, len(test) + 5, 0) is test
    with pytest.raises(QSetFitError, match="test_limit must be >= 1, got 0"):
        subsample(test, 0, 0)


def test_embedded_splits_embed_each_split_and_keep_the_labels(small_splits, tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "embed", _fake_embed)
    folder = write_splits(small_splits, tmp_path / "data")
    split = embedded_splits(str(folder), protocol="given", seed=3, test_limit=5)
    test = subsample(small_splits.test, 5, 3)
    np.testing.assert_array_equal(split.x_train, _fake_embed(small_splits.train.texts, None, show_progress=False))
    np.testing.assert_array_equal(split.x_test, _fake_embed(test.texts, None, show_progress=False))
    np.testing.assert_array_equal(split.y_test, test.labels)
    np.testing.assert_array_equal(split.y_val, small_splits.validation.labels)
    assert split.x_train.dtype == np.float64 and split.dim == 2 and split.seed == 3
    assert split.sizes() == {"train": 48, "validation": 16, "test": 5}
    assert split.validation is not None and split.validation[0] is split.x_val
    assert split.label_names == small_splits.label_names


def test_a_source_without_test_split_is_refused_and_no_validation_is_none(small_splits, tmp_path, monkeypatch):
    monkeypatch.setattr(sp, "embed", _fake_embed)
    write_splits(small_splits, tmp_path)
    (tmp_path / "test.csv").unlink()
    with pytest.raises(QSetFitError, match=r"has no test split to score on.*protocol='paper'"):
        embedded_splits(str(tmp_path), protocol="given")
    x = np.zeros((4, 3))
    bare = EmbeddedSplits(x, np.arange(4), None, None, x[:2], np.arange(2), ["a", "b"], 0)
    assert bare.validation is None and bare.sizes() == {"train": 4, "validation": 0, "test": 2}


def test_load_seed_splits_of_demo_are_the_packaged_splits():
    demo, packaged = load_seed_splits("demo", seed=5), demo_dataset()
    assert demo.train.texts == packaged.train.texts and demo.test.labels == packaged.test.labels
