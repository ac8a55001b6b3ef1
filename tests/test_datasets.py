"""Tests for qsetfit.data.datasets: file loading, label mapping, split protocols and the demo set."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from qsetfit.data.datasets import Dataset, DatasetSplits, demo_dataset, load_file, load_splits
from qsetfit.errors import QSetFitError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SST2 = SHARED_DATA / "sst2"
needs_sst2 = pytest.mark.skipif(not (SST2 / "train.csv").is_file(), reason="shared SST-2 data absent")


def write_csv(path: Path, rows: list[tuple[object, object]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def balanced_rows(n_per_label: int, labels: tuple[str, ...] = ("neg", "pos"), tag: str = "") -> list[tuple[str, str]]:
    return [(f"{tag}{label} example {i}, with a comma", label) for label in labels for i in range(n_per_label)]


# ---------------------------------------------------------------- Dataset / DatasetSplits


def test_dataset_valid_and_len() -> None:
    ds = Dataset(["a", "b", "c"], [0, 1, np.int64(1)], ["x", "y"])
    assert len(ds) == 3
    assert ds.labels == [0, 1, 1] and all(type(v) is int for v in ds.labels)
    sub = ds.subset([2, 0])
    assert sub.texts == ["c", "a"] and sub.labels == [1, 0] and sub.label_names == ["x", "y"]


@pytest.mark.parametrize(
    ("texts", "labels", "names", "expected"),
    [
        (["a", "b"], [0], ["x", "y"], "2 texts but 1 labels"),
        (["a", ""], [0, 1], ["x", "y"], "text 1 is empty"),
        (["a", None], [0, 1], ["x", "y"], "text 1 is missing (got None)"),
        ([float("nan"), "b"], [0, 1], ["x", "y"], "text 0 is missing (got nan)"),
        (["a", "b"], [0, 2], ["x", "y"], "label 1 is 2, outside the ids 0..1"),
        (["a", "b"], [0, -1], ["x", "y"], "label 1 is -1"),
        (["a", "b"], [0, 1.0], ["x", "y"], "label 1 is 1.0"),
        (["a", "b"], [0, 1], ["x", "x"], "non-empty and unique"),
        (["a", "b"], [0, 0], [], "non-empty and unique"),
    ],
)
def test_dataset_rejects_bad_input(texts: list, labels: list, names: list, expected: str) -> None:
    with pytest.raises(QSetFitError) as info:
        Dataset(texts, labels, names)
    assert expected in str(info.value)


def test_dataset_splits_rejects_mismatched_label_names() -> None:
    train = Dataset(["a", "b"], [0, 1], ["x", "y"])
    other = Dataset(["c"], [0], ["y", "x"])
    with pytest.raises(QSetFitError) as info:
        DatasetSplits(train, other, None, ["x", "y"])
    assert "DatasetSplits.validation has label_names ['y', 'x']" in str(info.value)


# ---------------------------------------------------------------- load_file


def test_load_csv_string_labels_sorted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [("good, really", "positive"), ("bad", "negative"), ("meh", "neutral")])
    ds = load_file(path)
    assert ds.label_names == ["negative", "neutral", "positive"]
    assert ds.labels == [2, 0, 1]
    assert ds.texts[0] == "good, really"


def test_load_csv_integer_labels_sorted_numerically(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [("a", 10), ("b", 2), ("c", 0), ("d", "02")])
    ds = load_file(path)
    assert ds.label_names == ["0", "2", "10"]
    assert ds.labels == [2, 1, 0, 1]


def test_load_jsonl_and_custom_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"sentence": "a", "y": 1}, {"sentence": "b", "y": 0}])
    ds = load_file(path, text_column="sentence", label_column="y")
    assert ds.texts == ["a", "b"] and ds.labels == [1, 0] and ds.label_names == ["0", "1"]
    same = load_file(write_jsonl(tmp_path / "d.json", [{"text": "a", "label": 1.0}, {"text": "b", "label": 0}]))
    assert same.labels == [1, 0] and same.label_names == ["0", "1"]


def test_load_file_reuses_label_names(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "val.csv", [("x", "positive")])
    ds = load_file(path, label_names=["negative", "positive"])
    assert ds.labels == [1] and ds.label_names == ["negative", "positive"]


def test_load_file_unseen_label(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "val.csv", [("x", "positive"), ("y", "neutral")])
    with pytest.raises(QSetFitError) as info:
        load_file(path, label_names=["negative", "positive"])
    msg = str(info.value)
    assert "label 'neutral' in" in msg and "val.csv" in msg and "row 2" in msg
    assert "never seen in training; known labels: negative, positive" in msg


def test_load_file_missing(tmp_path: Path) -> None:
    with pytest.raises(QSetFitError) as info:
        load_file(tmp_path / "nope.csv")
    assert "nope.csv does not exist" in str(info.value) and "check the path" in str(info.value)


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_load_file_empty(tmp_path: Path, content: str) -> None:
    (tmp_path / "e.csv").write_text(content)
    with pytest.raises(QSetFitError) as info:
        load_file(tmp_path / "e.csv")
    assert "e.csv is empty" in str(info.value)


def test_load_file_header_only(tmp_path: Path) -> None:
    with pytest.raises(QSetFitError) as info:
        load_file(write_csv(tmp_path / "h.csv", []))
    assert "has no rows, only a header" in str(info.value)


def test_load_file_bad_suffix(tmp_path: Path) -> None:
    (tmp_path / "d.tsv").write_text("text\tlabel\na\t1\n")
    with pytest.raises(QSetFitError) as info:
        load_file(tmp_path / "d.tsv")
    assert "suffix '.tsv'" in str(info.value) and ".csv, .jsonl, .json" in str(info.value)


def test_load_csv_missing_column_lists_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [("a", 0)], header=("sentence", "label"))
    with pytest.raises(QSetFitError) as info:
        load_file(path)
    msg = str(info.value)
    assert "no column 'text'" in msg and "columns found: 'sentence', 'label'" in msg and "text_column=" in msg
    with pytest.raises(QSetFitError) as info:
        load_file(path, text_column="sentence", label_column="y")
    assert "no column 'y'" in str(info.value) and "label_column=" in str(info.value)


def test_load_jsonl_missing_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"sentence": "a", "label": 0}])
    with pytest.raises(QSetFitError) as info:
        load_file(path)
    assert "no column 'text' (columns found: 'sentence', 'label')" in str(info.value)


def test_load_csv_empty_text_names_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [("fine", 0), ("  ", 1), ("ok", 1)])
    with pytest.raises(QSetFitError) as info:
        load_file(path)
    msg = str(info.value)
    assert "row 2 (line 3)" in msg and "column 'text' is empty" in msg and "fill it in or delete the row" in msg


def test_load_csv_missing_label_names_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [("fine", 0), ("ok", ""), ("x", 1)])
    with pytest.raises(QSetFitError) as info:
        load_file(path)
    assert "row 2 (line 3): column 'label' is missing" in str(info.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"text": NaN, "label": 1}', "line 2: column 'text' is missing (got nan)"),
        ('{"text": null, "label": 1}', "line 2: column 'text' is missing (got None)"),
        ('{"text": 42, "label": 1}', "line 2: column 'text' is not text (int)"),
        ('{"text": "b", "label": NaN}', "line 2: column 'label' is missing (got nan)"),
        ('{"text": "b", "label": null}', "line 2: column 'label' is missing (got None)"),
        ('{"text": "b"}', "line 2: column 'label' is missing (got None)"),
        ('["b", 1]', "line 2: expected a JSON object"),
        ('{"text": "b", ', "line 2 is not valid JSON"),
    ],
)
def test_load_jsonl_bad_rows(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": 0}\n' + line + "\n")
    with pytest.raises(QSetFitError) as info:
        load_file(path)
    assert expected in str(info.value)


# ---------------------------------------------------------------- load_splits, given protocol


def test_load_splits_single_file_is_train_only(tmp_path: Path) -> None:
    splits = load_splits(write_csv(tmp_path / "d.csv", balanced_rows(3)))
    assert len(splits.train) == 6 and splits.validation is None and splits.test is None
    assert splits.label_names == ["neg", "pos"]


def test_load_splits_folder(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", balanced_rows(4, tag="tr "))
    write_jsonl(tmp_path / "validation.jsonl", [{"text": "v", "label": "pos"}])
    write_csv(tmp_path / "test.csv", [("t1", "neg"), ("t2", "neg")])
    splits = load_splits(tmp_path)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (8, 1, 2)
    assert splits.validation.labels == [1] and splits.test.labels == [0, 0]
    assert splits.validation.label_names == splits.label_names == ["neg", "pos"]


def test_load_splits_folder_without_validation_or_test(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", balanced_rows(2))
    splits = load_splits(str(tmp_path))
    assert splits.validation is None and splits.test is None


def test_load_splits_folder_without_train(tmp_path: Path) -> None:
    write_csv(tmp_path / "dev.csv", balanced_rows(2))
    with pytest.raises(QSetFitError) as info:
        load_splits(tmp_path)
    assert "has no train file (found: dev.csv)" in str(info.value) and "add train.csv" in str(info.value)


def test_load_splits_folder_ambiguous(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", balanced_rows(2))
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": "neg"}])
    with pytest.raises(QSetFitError) as info:
        load_splits(tmp_path)
    assert "several train files (train.csv, train.jsonl)" in str(info.value)


def test_load_splits_unseen_validation_label(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", balanced_rows(2))
    write_csv(tmp_path / "validation.csv", [("v", "neutral")])
    with pytest.raises(QSetFitError) as info:
        load_splits(tmp_path)
    msg = str(info.value)
    assert "label 'neutral' in" in msg and "validation.csv" in msg and "known labels: neg, pos" in msg


@pytest.mark.parametrize("protocol", ["given", "paper"])
def test_load_splits_single_class(tmp_path: Path, protocol: str) -> None:
    path = write_csv(tmp_path / "d.csv", balanced_rows(5, labels=("pos",)))
    with pytest.raises(QSetFitError) as info:
        load_splits(path, protocol=protocol, per_label=2)
    assert "has a single class ('pos')" in str(info.value) and "at least two labels" in str(info.value)


def test_load_splits_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(QSetFitError) as info:
        load_splits(str(tmp_path / "missing.csv"))
    assert "missing.csv does not exist" in str(info.value)
    with pytest.raises(QSetFitError) as info:
        load_splits("./no/such/folder")
    assert "does not exist" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"protocol": "kfold"}, "protocol must be one of given, paper, got 'kfold'"),
        ({"per_label": 0}, "per_label must be an integer >= 2, got 0"),
        ({"per_label": 2.5}, "per_label must be an integer >= 2, got 2.5"),
        ({"val_fraction": 1.0}, "val_fraction must lie strictly between 0 and 1, got 1.0"),
        ({"val_fraction": 0}, "val_fraction must lie strictly between 0 and 1, got 0"),
        ({"seed": "1"}, "seed must be an integer, got '1'"),
    ],
)
def test_load_splits_bad_arguments(tmp_path: Path, kwargs: dict, expected: str) -> None:
    path = write_csv(tmp_path / "d.csv", balanced_rows(3))
    with pytest.raises(QSetFitError) as info:
        load_splits(path, **kwargs)
    assert expected in str(info.value)


# ---------------------------------------------------------------- load_splits, paper protocol


@pytest.fixture()
def pooled_folder(tmp_path: Path) -> Path:
    write_csv(tmp_path / "train.csv", balanced_rows(30, labels=("a", "b", "c"), tag="tr "))
    write_csv(tmp_path / "validation.csv", balanced_rows(5, labels=("a", "b", "c"), tag="va "))
    write_csv(tmp_path / "test.csv", balanced_rows(10, labels=("a", "b", "c"), tag="te "))
    return tmp_path


def test_paper_protocol_counts_and_stratification(pooled_folder: Path) -> None:
    splits = load_splits(pooled_folder, protocol="paper", per_label=20, val_fraction=0.15, seed=3)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (51, 9, 135 - 60)
    assert Counter(splits.train.labels) == {0: 17, 1: 17, 2: 17}
    assert Counter(splits.validation.labels) == {0: 3, 1: 3, 2: 3}
    texts = [set(s.texts) for s in (splits.train, splits.validation, splits.test)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert sum(len(t) for t in texts) == 135
    assert any(t.startswith(("va ", "te ")) for t in splits.train.texts)  # every split is pooled


def test_paper_protocol_is_seeded(pooled_folder: Path) -> None:
    a = load_splits(pooled_folder, protocol="paper", per_label=20, seed=1)
    b = load_splits(pooled_folder, protocol="paper", per_label=20, seed=1)
    c = load_splits(pooled_folder, protocol="paper", per_label=20, seed=2)
    assert a.train.texts == b.train.texts and a.validation.texts == b.validation.texts
    assert set(a.train.texts) != set(c.train.texts)


def test_paper_protocol_per_label_too_large(pooled_folder: Path) -> None:
    with pytest.raises(QSetFitError) as info:
        load_splits(pooled_folder, protocol="paper", per_label=46)
    assert "per_label=46" in str(info.value) and "has 45" in str(info.value) and "per_label<=45" in str(info.value)


def test_paper_protocol_leaves_no_training_example(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", balanced_rows(3))
    with pytest.raises(QSetFitError) as info:
        load_splits(path, protocol="paper", per_label=2, val_fraction=0.9)
    assert "leaves some label with no training example" in str(info.value)


@needs_sst2
def test_paper_protocol_on_sst2() -> None:
    splits = load_splits(SST2, protocol="paper", seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (435, 77, 9101)
    assert splits.label_names == ["0", "1"]
    assert sorted(Counter(splits.train.labels).values()) == [217, 218]
    assert set(splits.train.texts).isdisjoint(splits.test.texts)


@needs_sst2
def test_given_protocol_on_sst2() -> None:
    splits = load_splits(SST2)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (6920, 872, 1821)
    assert Counter(splits.train.labels) == {0: 3310, 1: 3610}


# ---------------------------------------------------------------- hub datasets


def test_hub_unreachable_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'SetFit/sst2' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(QSetFitError) as info:
        load_splits("SetFit/sst2")
    msg = str(info.value)
    assert "could not load 'SetFit/sst2'" in msg and "Hugging Face Hub could not be reached" in msg
    assert "Pass a local CSV/JSONL file or a folder" in msg and "ConnectionError" in msg


def test_hub_dataset_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["pos", "neg"])})
    loaded = datasets.DatasetDict(
        train=datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 1]}, features=features),
        dev=datasets.Dataset.from_dict({"text": ["d"], "label": [1]}, features=features),
        test=datasets.Dataset.from_dict({"text": ["e", "f"], "label": [-1, -1]}, features=features),
    )
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name: calls.append(name) or loaded)
    splits = load_splits("someone/toy")
    assert calls == ["someone/toy"]
    assert splits.label_names == ["pos", "neg"]  # ClassLabel order is kept, not re-sorted
    assert splits.train.labels == [0, 1, 1] and splits.validation.texts == ["d"]
    assert splits.test is None  # an unlabelled (-1) test split is skipped


# ---------------------------------------------------------------- demo set


def test_demo_dataset() -> None:
    splits = demo_dataset()
    assert splits.label_names == ["negative", "positive"]
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (280, 60, 60)
    for split in (splits.train, splits.validation, splits.test):
        counts = Counter(split.labels)
        assert counts[0] == counts[1]
    all_texts = splits.train.texts + splits.validation.texts + splits.test.texts
    assert len(set(all_texts)) == 400
    lengths = [len(t.split()) for t in all_texts]
    assert min(lengths) >= 4 and max(lengths) <= 25
    assert demo_dataset().test.texts == splits.test.texts  # fixed split


def test_csv_field_longer_than_the_csv_modules_limit_loads_like_jsonl(tmp_path: Path) -> None:
    long_text = "word " * 40_000  # 200,000 characters > csv's 131,072 default
    path = tmp_path / "long.csv"
    path.write_text(f'text,label\n"{long_text}",pos\nshort,neg\n')
    ds = load_file(path)
    assert ds.texts[0] == long_text and ds.label_names == ["neg", "pos"]


def test_non_utf8_file_names_the_file_and_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nUn café très réussi, déjà vu à l'été,pos\nmauvais,neg\n".encode("cp1252"))
    with pytest.raises(QSetFitError, match=r"latin\.csv is not UTF-8 \(byte 0xe9 at offset \d+; it looks like "
                                           r"\w+.*save it as UTF-8"):
        load_file(path)
