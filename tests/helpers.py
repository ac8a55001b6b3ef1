"""Small helpers shared by several test modules."""

from __future__ import annotations

import csv
from pathlib import Path


def write_splits(splits, folder: Path) -> Path:
    """Write ``splits`` as train/validation/test CSV files (label names as labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "validation", "test"):
        ds = getattr(splits, name)
        with (folder / f"{name}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows((t, ds.label_names[y]) for t, y in zip(ds.texts, ds.labels))
    return folder


def seeded(seed: int = 0):
    """A torch ``Generator`` with a fixed seed, so test inputs drawn with ``torch.rand``/``randn`` repeat."""
    import torch

    return torch.Generator().manual_seed(seed)
