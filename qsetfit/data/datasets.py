"""Datasets and splits: read CSV/JSONL files, folders or hub datasets and apply a split protocol.

Labels become integer ids ``0..K-1``; ``label_names[i]`` is the original label of id ``i``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)

__all__ = ["Dataset", "DatasetSplits", "demo_dataset", "load_file", "load_splits"]

SUFFIXES = (".csv", ".jsonl", ".json")
SPLITS = ("train", "validation", "test")
PROTOCOLS = ("given", "paper")
DEMO_FILE = "demo_sentiment.csv"
_INT = re.compile(r"[+-]?\d+")
_Record = tuple[str, Any, Any]  # (row description, text, label) as read


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
            raise QSetFitError(f"Dataset got {len(self.texts)} texts but {len(self.labels)} labels; "
                               "pass one label per text")
        if not self.label_names or len(set(self.label_names)) != len(self.label_names):
            raise QSetFitError(f"Dataset label_names must be non-empty and unique, got {self.label_names!r}; "
                               "pass one distinct name per label id")
        for i, text in enumerate(self.texts):
            if not isinstance(text, str) or not text.strip():
                raise QSetFitError(f"Dataset text {i} is {_describe_text(text)} (got {text!r}); "
                                   "every example needs a non-empty string: drop or fill that example")
        n = len(self.label_names)
        for i, label in enumerate(self.labels):
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < n:
                raise QSetFitError(f"Dataset label {i} is {label!r}, outside the ids 0..{n - 1} of label_names "
                                   f"{self.label_names!r}; pass integer ids that index label_names")
        self.labels = [int(label) for label in self.labels]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """Return the examples at ``indices`` (in that order), with the same label names."""
        return Dataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.label_names)


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
                raise QSetFitError(f"DatasetSplits.{name} has label_names {split.label_names!r} but the splits use "
                                   f"{self.label_names!r}; build every split with the same label mapping")


@dataclass
class _Raw:
    """Rows as read, before labels become ids: texts, normalised label keys, row descriptions."""

    texts: list[str]
    keys: list[str]
    where: str
    rows: list[str]


def _describe_text(value: Any) -> str:
    if isinstance(value, str):
        return "empty"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    return f"not text ({type(value).__name__})"


def _label_key(value: Any) -> str | None:
    """Normalise a label to a string key (integer-like labels become ``str(int)``); None if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, np.integer, float)) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    key = str(value).strip()
    if not key or key.lower() in ("nan", "none", "null"):
        return None
    return str(int(key)) if _INT.fullmatch(key) else key


def _require_columns(where: str, found: Sequence[str], text_column: str, label_column: str) -> None:
    for column, arg in ((text_column, "text_column"), (label_column, "label_column")):
        if column not in found:
            listing = ", ".join(map(repr, found)) or "none"
            raise QSetFitError(f"{where} has no column {column!r} (columns found: {listing}); "
                               f"pass {arg}= naming the right column")


def _to_raw(where: str, found: Sequence[str], records: list[_Record], text_col: str, label_col: str) -> _Raw:
    """Check the columns and every record, normalising labels to keys."""
    _require_columns(where, found, text_col, label_col)
    if not records:
        raise QSetFitError(f"{where} has no rows, only a header; add at least one example")
    keys: list[str] = []
    for row, text, label in records:
        if not isinstance(text, str) or not text.strip():
            raise QSetFitError(f"{where}, {row}: column {text_col!r} is {_describe_text(text)} (got {text!r}); "
                               "every row needs a non-empty text: fill it in or delete the row")
        key = _label_key(label)
        if key is None:
            raise QSetFitError(f"{where}, {row}: column {label_col!r} is missing (got {label!r}); "
                               "every row needs a label: fill it in or delete the row")
        keys.append(key)
    return _Raw([r[1] for r in records], keys, where, [r[0] for r in records])


def _read_rows(path: Path, text_col: str, label_col: str) -> _Raw:
    """Read a CSV or JSON-lines file into a ``_Raw``."""
    where, suffix = str(path), path.suffix.lower()
    if not path.is_file():
        raise QSetFitError(f"data file {where} does not exist; check the path (relative to {Path.cwd()})")
    if suffix not in SUFFIXES:
        raise QSetFitError(f"data file {where} has suffix {path.suffix!r}; expected one of {', '.join(SUFFIXES)} "
                           "(CSV with a header row, or JSON lines): convert or rename the file")
    content = _read_utf8(path)
    if not content.strip():
        raise QSetFitError(f"data file {where} is empty; pass a file with a header and at least one row")
    if suffix == ".csv":
        # No field is longer than the file: lift the csv module's 131072-character default to that.
        csv.field_size_limit(max(csv.field_size_limit(), len(content)))
        reader = csv.DictReader(io.StringIO(content, newline=""))
        try:
            records = [(f"row {i} (line {reader.line_num})", rec.get(text_col), rec.get(label_col))
                       for i, rec in enumerate(reader, start=1)]
        except csv.Error as exc:
            raise QSetFitError(f"{where}, line {reader.line_num} is not valid CSV ({exc}); fix the quoting "
                               "of that line or use JSON lines") from None
        return _to_raw(where, list(reader.fieldnames or []), records, text_col, label_col)
    items: list[tuple[int, dict[str, Any]]] = []
    for n, line in [(n, line) for n, line in enumerate(content.split("\n"), 1) if line.strip()]:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QSetFitError(f"{where}, line {n} is not valid JSON ({exc}); write one object per line") from exc
        if not isinstance(item, dict):
            raise QSetFitError(f'{where}, line {n}: expected a JSON object like {{"text": ..., "label": ...}}, '
                               f"got {type(item).__name__}; write one object per line")
        items.append((n, item))
    records = [(f"line {n}", item.get(text_col), item.get(label_col)) for n, item in items]
    return _to_raw(where, list(items[0][1]) if items else [], records, text_col, label_col)


def _read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 is named with the encoding it most likely is."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        from charset_normalizer import from_bytes

        guess = from_bytes(data).best()
        likely = f"; it looks like {guess.encoding}" if guess is not None else ""
        raise QSetFitError(f"data file {path} is not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}"
                           f"{likely}): save it as UTF-8, e.g. iconv -f {guess.encoding if guess else 'latin1'} "
                           f"-t utf-8") from None


def _label_names_from(keys: Sequence[str]) -> list[str]:
    """Sorted unique label keys: numerically when every label is an integer, else as strings."""
    unique = set(keys)
    if all(_INT.fullmatch(k) for k in unique):
        return [str(v) for v in sorted(int(k) for k in unique)]
    return sorted(unique)


def _to_dataset(raw: _Raw, label_names: list[str]) -> Dataset:
    index = {name: i for i, name in enumerate(label_names)}
    for row, key in zip(raw.rows, raw.keys, strict=True):
        if key not in index:
            raise QSetFitError(f"label {key!r} in {raw.where} ({row}) was never seen in training; known labels: "
                               f"{', '.join(label_names)}. Fix the label or drop rows whose label training lacks")
    return Dataset(raw.texts, [index[k] for k in raw.keys], label_names)


def _check_two_classes(raw: _Raw, label_col: str) -> None:
    unique = sorted(set(raw.keys))
    if len(unique) < 2:
        raise QSetFitError(f"the training data in {raw.where} has a single class ({unique[0]!r}); a classifier "
                           f"needs at least two labels: check label_column={label_col!r} and the data")


def load_file(path: str | Path, *, text_column: str = "text", label_column: str = "label",
              label_names: Sequence[str] | None = None) -> Dataset:
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
    raw = _read_rows(Path(path).expanduser(), text_column, label_column)
    return _to_dataset(raw, list(label_names) if label_names is not None else _label_names_from(raw.keys))


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split in SPLITS:
        matches = [folder / f"{split}{s}" for s in SUFFIXES if (folder / f"{split}{s}").is_file()]
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            raise QSetFitError(f"folder {folder} holds several {split} files ({names}); keep one per split")
        found.update({split: matches[0]} if matches else {})
    if "train" not in found:
        listing = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise QSetFitError(f"folder {folder} has no train file (found: {listing}); add train.csv or train.jsonl "
                           "(validation and test files are optional)")
    return found


def _read_hub(name: str, text_col: str, label_col: str) -> tuple[dict[str, _Raw], list[str] | None]:
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
    raws: dict[str, _Raw] = {}
    fixed: list[str] | None = None
    for split, hub_names in aliases.items():
        hub_split = next((n for n in hub_names if n in loaded), None)
        if hub_split is None:
            continue
        ds, where = loaded[hub_split], f"hub dataset {name!r} split {hub_split!r}"
        _require_columns(where, list(ds.column_names), text_col, label_col)
        labels = list(ds[label_col])
        if labels and all(lab == -1 for lab in labels):
            logger.warning("%s is unlabelled (every label is -1); skipping it", where)
            continue
        feature = ds.features.get(label_col)
        if isinstance(feature, datasets.ClassLabel):
            fixed = list(feature.names)
            labels = [fixed[lab] if isinstance(lab, int) and 0 <= lab < len(fixed) else None for lab in labels]
        records = [(f"row {i}", t, lab) for i, (t, lab) in enumerate(zip(list(ds[text_col]), labels, strict=True), 1)]
        raws[split] = _to_raw(where, list(ds.column_names), records, text_col, label_col)
    if "train" not in raws:
        raise QSetFitError(f"hub dataset {name!r} has no labelled train split (found {list(loaded)})")
    return raws, fixed


def _read_source(source: str | Path, text_col: str, label_col: str) -> tuple[dict[str, _Raw], list[str] | None]:
    """Read every split of ``source``; also return label names fixed by the source (hub ClassLabel)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return {s: _read_rows(p, text_col, label_col) for s, p in _split_files(path).items()}, None
    local = isinstance(source, Path) or path.suffix.lower() in SUFFIXES or str(source).startswith(("/", ".", "~"))
    if path.is_file() or local:
        return {"train": _read_rows(path, text_col, label_col)}, None
    return _read_hub(str(source), text_col, label_col)


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


def _paper_splits(raws: dict[str, _Raw], fixed: list[str] | None, *, seed: int, per_label: int,
                  val_fraction: float, label_col: str) -> DatasetSplits:
    """Pool every split, sample ``per_label`` a label, split it stratified; test on the rest."""
    pool = _Raw(
        [t for r in raws.values() for t in r.texts],
        [k for r in raws.values() for k in r.keys],
        " + ".join(r.where for r in raws.values()),
        [f"{r.where} {row}" for r in raws.values() for row in r.rows],
    )
    _check_two_classes(pool, label_col)
    names = fixed or _label_names_from(pool.keys)
    pooled = _to_dataset(pool, names)
    labels, rng = np.asarray(pooled.labels), np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_label:
            raise QSetFitError(f"protocol='paper' samples per_label={per_label} examples of each label, but label "
                               f"{names[c]!r} has {len(members)} in {pool.where}; pass per_label<={len(members)}")
        chosen.append(rng.choice(members, size=per_label, replace=False))
    sampled = np.sort(np.concatenate(chosen))
    keep, hold = _stratified_holdout(labels[sampled], _holdout_size(len(sampled), val_fraction), rng)
    train, val = sampled[keep], sampled[hold]
    if set(labels[train]) != set(labels[sampled]):
        raise QSetFitError(f"per_label={per_label} with val_fraction={val_fraction} leaves some label with no "
                           "training example; raise per_label or lower val_fraction")
    test = np.setdiff1d(np.arange(len(pooled)), sampled)
    logger.info("paper protocol: %d train / %d validation / %d test", len(train), len(val), len(test))
    tested = pooled.subset(test) if len(test) else None
    return DatasetSplits(pooled.subset(train), pooled.subset(val), tested, names)


def load_splits(source: str | Path, *, protocol: str = "given", seed: int = 0, per_label: int = 256,
                val_fraction: float = 0.15, text_column: str = "text",
                label_column: str = "label") -> DatasetSplits:
    """Load train/validation/test sets from a file, a folder or a hub dataset.

    Args:
        source: A CSV/JSONL file (train only), a folder holding ``train``/``validation``/``test``
            files (``.csv`` or ``.jsonl``; validation and test optional), or a hub dataset name
            such as ``"SetFit/sst2"`` (loaded with ``datasets.load_dataset``).
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
    if protocol not in PROTOCOLS:
        raise QSetFitError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if isinstance(per_label, bool) or not isinstance(per_label, int) or per_label < 2:
        raise QSetFitError(f"per_label must be an integer >= 2, got {per_label!r}; the paper uses 256")
    if not isinstance(val_fraction, (int, float)) or not 0.0 < val_fraction < 1.0:
        raise QSetFitError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}; e.g. 0.15")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise QSetFitError(f"seed must be an integer, got {seed!r}")
    raws, fixed = _read_source(source, text_column, label_column)
    if protocol == "paper":
        return _paper_splits(raws, fixed, seed=int(seed), per_label=per_label, val_fraction=val_fraction,
                             label_col=label_column)
    _check_two_classes(raws["train"], label_column)
    names = fixed or _label_names_from(raws["train"].keys)
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
