"""Phase 1's forward passes with less padding: a step's sentences embedded together, sorted by length.

sentence-transformers embeds each column of a pair batch on its own, padded to the column's longest sentence;
on SST-2 (25 tokens on average, 62 at most) half of the tokens of a 16-sentence column are padding. Here the
sentences of all columns of the step are pooled, sorted by length and embedded in forwards of as many rows as
one column had, each cut to its own longest sentence. Padding is masked in attention and in pooling, so the
embeddings, the loss and its gradients are those of the column-wise forward (up to float rounding); only the
work on padding goes (1.2-1.4x faster steps on MiniLM, ``benchmarks/time_body_tuning.py``). No library offers
this for a sentence-transformers loss: ``merge_feature_batches`` pads the merged batch to its widest column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

_TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _poolable(features_list: list[dict[str, Any]]) -> bool:
    """Right-padded token matrices with the same keys in every column, plus metadata equal in every column
    (e.g. ``modality``); nothing else."""
    first = features_list[0]
    tensors = {k for k, v in first.items() if isinstance(v, torch.Tensor)}
    if not tensors <= set(_TOKEN_KEYS) or "attention_mask" not in tensors:
        return False
    for f in features_list:
        if set(f) != set(first) or any(f[k] != first[k] for k in set(first) - tensors):
            return False
    # Right padding: every row's mask is ones then zeros, so cutting columns off the end drops only padding.
    return all(bool((f["attention_mask"].diff(dim=1) <= 0).all()) for f in features_list)


def embed_length_sorted(model: Any, features_list: Iterable[dict[str, Any]]) -> list[torch.Tensor] | None:
    """Sentence embeddings of each column (as ``model(features)["sentence_embedding"]``), computed with the
    step's sentences sorted by length; None when the features are not plain right-padded token matrices."""
    features_list = list(features_list)
    if not features_list or not _poolable(features_list):
        return None
    rows = [f["attention_mask"].shape[0] for f in features_list]
    width = max(f["attention_mask"].shape[1] for f in features_list)
    first = features_list[0]
    metadata = {k: v for k, v in first.items() if not isinstance(v, torch.Tensor)}
    pooled = {
        k: torch.cat([F.pad(f[k], (0, width - f[k].shape[1])) for f in features_list])
        for k in first
        if k not in metadata
    }
    lengths = pooled["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, stable=True)
    pieces = []
    for rows_of_forward in order.split(max(rows)):
        cut = int(lengths[rows_of_forward].max())
        batch = {k: v[rows_of_forward, :cut] for k, v in pooled.items()}
        pieces.append(model({**batch, **metadata})["sentence_embedding"])
    embeddings = torch.cat(pieces)[torch.argsort(order)]
    return list(embeddings.split(rows))


def length_sorted_loss(loss_class: type[Any]) -> type[Any]:
    """``loss_class`` (a sentence-transformers loss with ``compute_loss_from_embeddings``) whose forward embeds
    with ``embed_length_sorted``; the class itself when it has no such method."""
    if not hasattr(loss_class, "compute_loss_from_embeddings"):
        return loss_class

    def forward(self: Any, sentence_features: Iterable[dict[str, Any]], labels: torch.Tensor) -> Any:
        features_list = list(sentence_features)
        embeddings = embed_length_sorted(self.model, features_list)
        if embeddings is None:  # not plain token matrices: the loss's own forward
            return loss_class.forward(self, features_list, labels)
        return self.compute_loss_from_embeddings(embeddings, labels)

    return type(
        loss_class.__name__,
        (loss_class,),
        {"forward": forward, "__doc__": loss_class.__doc__, "__module__": loss_class.__module__},
    )
