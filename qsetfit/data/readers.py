"""Reading labelled text: CSV/JSONL/JSON files, split folders and hub datasets, as rows before labels become ids."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from qsetfit.errors import QSetFitError

SUFFIXES = (".csv", ".jsonl", ".json")
SPLITS = ("train", "validation", "test")
INT_LABEL = re.compile(r"[+-]?\d+")
Record = tuple[str, Any, Any]  # (row description, text, label) as read
logger = logging.getLogger(__name__)


@dataclass
class RawRows:
    """Rows as read, before labels become ids: texts, normalised label keys, row descriptions."""

    texts: list[str]
    keys: list[str]
    where: str
    rows: list[str]


def describe_text(value: Any) -> str:
    if isinstance(value, str):
        return "empty"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    return f"not text ({type(value).__name__})"


def label_key(value: Any) -> str | None:
    """Normalise a label to a string key (integer-like labels become ``str(int)``); None if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, np.integer, float)) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    key = str(value).strip()
    if not key or key.lower() in ("nan", "none", "null"):
        return None
    return str(int(key)) if INT_LABEL.fullmatch(key) else key


def require_columns(where: str, found: Sequence[str], text_column: str, label_column: str) -> None:
    for column, arg in ((text_column, "text_column"), (label_column, "label_column")):
        if column not in found:
            listing = ", ".join(map(repr, found)) or "none"
            raise QSetFitError(
                f"{where} has no column {column!r} (columns found: {listing}); pass {arg}= naming the right column"
            )


def to_raw(where: str, found: Sequence[str], records: list[Record], text_col: str, label_col: str) -> RawRows:
    """Check the columns and every record, normalising labels to keys."""
    require_columns(where, found, text_col, label_col)
    if not records:
        raise QSetFitError(f"{where} has no rows, only a header; add at least one example")
    keys: list[str] = []
    for row, text, label in records:
        if not isinstance(text, str) or not text.strip():
            raise QSetFitError(
                f"{where}, {row}: column {text_col!r} is {describe_text(text)} (got {text!r}); "
                "every row needs a non-empty text: fill it in or delete the row"
            )
        key = label_key(label)
        if key is None:
            raise QSetFitError(
                f"{where}, {row}: column {label_col!r} is missing (got {label!r}); "
                "every row needs a label: fill it in or delete the row"
            )
        keys.append(key)
    return RawRows([r[1] for r in records], keys, where, [r[0] for r in records])


def read_rows(path: Path, text_col: str, label_col: str) -> RawRows:
    """Read a CSV or JSON-lines file into a ``RawRows``."""
    where, suffix = str(path), path.suffix.lower()
    if not path.is_file():
        raise QSetFitError(f"data file {where} does not exist; check the path (relative to {Path.cwd()})")
    if suffix not in SUFFIXES:
        raise QSetFitError(
            f"data file {where} has suffix {path.suffix!r}; expected one of {', '.join(SUFFIXES)} "
            "(CSV with a header row, or JSON lines): convert or rename the file"
        )
    content = read_utf8(path)
    if not content.strip():
        raise QSetFitError(f"data file {where} is empty; pass a file with a header and at least one row")
    if suffix == ".csv":
        # No field is longer than the file: lift the csv module's 131072-character default to that.
        csv.field_size_limit(max(csv.field_size_limit(), len(content)))
        reader = csv.DictReader(io.StringIO(content, newline=""))
        try:
            records = [
                (f"row {i} (line {reader.line_num})", rec.get(text_col), rec.get(label_col))
                for i, rec in enumerate(reader, start=1)
            ]
        except csv.Error as exc:
            raise QSetFitError(
                f"{where}, line {reader.line_num} is not valid CSV ({exc}); fix the quoting "
                "of that line or use JSON lines"
            ) from None
        return to_raw(where, list(reader.fieldnames or []), records, text_col, label_col)
    items: list[tuple[int, dict[str, Any]]] = []
    for n, line in [(n, line) for n, line in enumerate(content.split("\n"), 1) if line.strip()]:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QSetFitError(f"{where}, line {n} is not valid JSON ({exc}); write one object per line") from exc
        if not isinstance(item, dict):
            raise QSetFitError(
                f'{where}, line {n}: expected a JSON object like {{"text": ..., "label": ...}}, '
                f"got {type(item).__name__}; write one object per line"
            )
        items.append((n, item))
    records = [(f"line {n}", item.get(text_col), item.get(label_col)) for n, item in items]
    return to_raw(where, list(items[0][1]) if items else [], records, text_col, label_col)


def read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 is named with the encoding it most likely is."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        from charset_normalizer import from_bytes

        guess = from_bytes(data).best()
        likely = f"; it looks like {guess.encoding}" if guess is not None else ""
        raise QSetFitError(
            f"data file {path} is not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}"
            f"{likely}): save it as UTF-8, e.g. iconv -f {guess.encoding if guess else 'latin1'} "
            f"-t utf-8"
        ) from None


def label_names_from(keys: Sequence[str]) -> list[str]:
    """Sorted unique label keys: numerically when every label is an integer, else as strings."""
    unique = set(keys)
    if all(INT_LABEL.fullmatch(k) for k in unique):
        return [str(v) for v in sorted(int(k) for k in unique)]
    return sorted(unique)


def check_two_classes(raw: RawRows, label_col: str) -> None:
    unique = sorted(set(raw.keys))
    if len(unique) < 2:
        raise QSetFitError(
            f"the training data in {raw.where} has a single class ({unique[0]!r}); a classifier "
            f"needs at least two labels: check label_column={label_col!r} and the data"
        )


def split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split in SPLITS:
        matches = [folder / f"{split}{s}" for s in SUFFIXES if (folder / f"{split}{s}").is_file()]
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            raise QSetFitError(f"folder {folder} holds several {split} files ({names}); keep one per split")
        found.update({split: matches[0]} if matches else {})
    if "train" not in found:
        listing = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise QSetFitError(
            f"folder {folder} has no train file (found: {listing}); add train.csv or train.jsonl "
            "(validation and test files are optional)"
        )
    return found


def read_hub(name: str, text_col: str, label_col: str) -> tuple[dict[str, RawRows], list[str] | None]:
    """Load a hub dataset through ``datasets.load_dataset``; ClassLabel names fix the label order."""
    import datasets

    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:
        raise QSetFitError(
            f"could not load {name!r}: it is not a local file or folder, and the Hugging Face Hub could not "
            f"be reached or has no such dataset ({type(exc).__name__}: {str(exc)[:200]}). Pass a local "
            "CSV/JSONL file or a folder holding train/validation/test files instead"
        ) from exc
    aliases = {"train": ("train",), "validation": ("validation", "dev", "valid"), "test": ("test",)}
    raws: dict[str, RawRows] = {}
    fixed: list[str] | None = None
    for split, hub_names in aliases.items():
        hub_split = next((n for n in hub_names if n in loaded), None)
        if hub_split is None:
            continue
        ds, where = loaded[hub_split], f"hub dataset {name!r} split {hub_split!r}"
        require_columns(where, list(ds.column_names), text_col, label_col)
        labels = list(ds[label_col])
        if labels and all(lab == -1 for lab in labels):
            logger.warning("%s is unlabelled (every label is -1); skipping it", where)
            continue
        feature = ds.features.get(label_col)
        if isinstance(feature, datasets.ClassLabel):
            fixed = list(feature.names)
            labels = [fixed[lab] if isinstance(lab, int) and 0 <= lab < len(fixed) else None for lab in labels]
        records = [(f"row {i}", t, lab) for i, (t, lab) in enumerate(zip(list(ds[text_col]), labels, strict=True), 1)]
        raws[split] = to_raw(where, list(ds.column_names), records, text_col, label_col)
    if "train" not in raws:
        raise QSetFitError(f"hub dataset {name!r} has no labelled train split (found {list(loaded)})")
    return raws, fixed


def read_source(source: str | Path, text_col: str, label_col: str) -> tuple[dict[str, RawRows], list[str] | None]:
    """Read every split of ``source``; also return label names fixed by the source (hub ClassLabel)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return {s: read_rows(p, text_col, label_col) for s, p in split_files(path).items()}, None
    local = isinstance(source, Path) or path.suffix.lower() in SUFFIXES or str(source).startswith(("/", ".", "~"))
    if path.is_file() or local:
        return {"train": read_rows(path, text_col, label_col)}, None
    return read_hub(str(source), text_col, label_col)
