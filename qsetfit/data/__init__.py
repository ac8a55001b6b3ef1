"""Text data and embeddings: dataset readers, split protocols, the on-disk embedding cache."""

from qsetfit.data.datasets import Dataset, DatasetSplits, demo_dataset, load_file, load_splits

__all__ = ["Dataset", "DatasetSplits", "demo_dataset", "load_file", "load_splits"]
