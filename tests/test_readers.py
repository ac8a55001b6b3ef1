"""Reading labelled rows (data/readers.py): label keys, label order, CSV/JSONL round trips, source dispatch."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from qsetfit import QSetFitError
from qsetfit.data import readers
from qsetfit.data.readers import describe_text, label_key, label_names_from, read_rows, read_source, split_files

# Texts a CSV writer must quote: commas, quotes, a newline inside a field, non-ASCII, leading spaces.
TRICKY = ["plain", 'a "quoted", comma', "two\nlines", "  café ☕", "ends with a comma,"]
LABELS = ["pos", 3, "-2", "+1", "neg"]


@pytest.mark.parametrize("value, key", [
    (3, "3"), (np.int64(-4), "-4"), (2.0, "2"), ("+7", "7"), (" 05 ", "5"), ("-0", "0"), ("pos", "pos"),
    (" pos ", "pos"), (2.5, "2.5"), (True, "True"),  # a bool is a name, not the integer 1
    (None, None), (float("nan"), None), ("", None), ("  ", None), ("NaN", None), ("null", None), ("None", None),
])
def test_label_key_normalises_integer_like_labels_and_spots_missing_ones(value, key):
    assert label_key(value) == key


def test_label_names_sort_numerically_when_every_label_is_an_integer():
    assert label_names_from(["10", "2", "-1", "2"]) == ["-1", "2", "10"]
    assert label_names_from(["10", "2", "b"]) == ["10", "2", "b"]  # one name: all sort as strings


def test_describe_text_says_why_a_text_is_unusable():
    assert [describe_text(v) for v in ("", None, float("nan"), 4)] == ["empty", "missing", "missing",
                                                                       "not text (int)"]


def _write(folder: Path, stem: str, texts, labels) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, jsonl_path = folder / f"{stem}.csv", folder / f"{stem}.jsonl"
    with csv_path.open("w", newline="", encoding="utf-8-sig") as fh:  # with a BOM, as Excel writes it
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        writer.writerows(zip(labels, texts, strict=True))
    lines = [json.dumps({"text": t, "label": lab}) for t, lab in zip(texts, labels, strict=True)]
    jsonl_path.write_text("\n".join(lines) + "\n\n")  # a blank line at the end is skipped
    return csv_path, jsonl_path


def test_csv_and_jsonl_give_back_the_rows_that_were_written(tmp_path):
    csv_path, jsonl_path = _write(tmp_path, "train", TRICKY, LABELS)
    for path in (csv_path, jsonl_path):
        raw = read_rows(path, "text", "label")
        assert raw.texts == TRICKY and raw.keys == ["pos", "3", "-2", "1", "neg"] and raw.where == str(path)
    # a row's description counts rows and (CSV) the line it ends on: the newline in row 3 shifts the lines
    assert read_rows(csv_path, "text", "label").rows[2:4] == ["row 3 (line 5)", "row 4 (line 6)"]
    assert read_rows(jsonl_path, "text", "label").rows[:2] == ["line 1", "line 2"]


def test_an_empty_text_is_named_by_its_row(tmp_path):
    csv_path, _ = _write(tmp_path, "train", ["fine", ""], ["a", "b"])
    with pytest.raises(QSetFitError, match=r"row 2 \(line 3\): column 'text' is empty"):
        read_rows(csv_path, "text", "label")


def test_split_files_and_read_source_dispatch_folders_files_and_hub_names(tmp_path, monkeypatch):
    _write(tmp_path / "data", "train", ["a", "b"], ["x", "y"])
    (tmp_path / "data" / "train.jsonl").unlink()
    _, test_jsonl = _write(tmp_path / "data", "test", ["c"], ["x"])
    (tmp_path / "data" / "test.csv").unlink()
    assert split_files(tmp_path / "data") == {"train": tmp_path / "data" / "train.csv", "test": test_jsonl}
    raws, fixed = read_source(tmp_path / "data", "text", "label")
    assert sorted(raws) == ["test", "train"] and raws["test"].texts == ["c"] and fixed is None
    raws, _ = read_source(str(test_jsonl), "text", "label")
    assert list(raws) == ["train"]  # a single file is a training set
    monkeypatch.setattr(readers, "read_hub", lambda name, t, lab: ({"hub": name}, ["n"]))
    assert read_source("user/dataset", "text", "label") == ({"hub": "user/dataset"}, ["n"])
    with pytest.raises(QSetFitError, match="does not exist"):  # a path-like name is never sent to the hub
        read_source("./missing.csv", "text", "label")
