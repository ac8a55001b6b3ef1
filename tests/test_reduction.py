"""Module 1's PCA reduction (head/reduction.py) against the eigenvectors of the covariance matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qsetfit import QSetFitError
from qsetfit.head.reduction import PCAReduction


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.5, d)  # distinct variances: a unique principal basis
    return rng.normal(size=(n, d)) * scales + rng.normal(size=d)


def test_coordinates_are_projections_on_the_top_covariance_eigenvectors():
    x = _data(60, 5)
    pca = PCAReduction(5, 3).fit(torch.tensor(x))
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vectors[:, ::-1][:, :3]  # (D, k) by decreasing variance
    got = pca(torch.tensor(x)).numpy()
    want = (x - x.mean(0)) @ top
    signs = np.sign((got * want).sum(0))  # an eigenvector's sign is arbitrary
    assert np.abs(got - want * signs).max() <= 1e-10
    assert np.allclose(got.var(0, ddof=1), values[::-1][:3], atol=1e-10)  # each variance is its eigenvalue


def test_components_beyond_the_data_stay_zero_rows():
    x = _data(3, 6)  # 3 examples support at most 3 components
    pca = PCAReduction(6, 5).fit(torch.tensor(x))
    out = pca(torch.tensor(x))
    assert out.shape == (3, 5) and torch.all(pca.components[3:] == 0) and torch.all(out[:, 3:] == 0)
    assert pca.is_fitted and dict(pca.named_buffers()).keys() == {"mean", "components", "fitted"}  # saved


@pytest.mark.parametrize("act, message", [
    (lambda: PCAReduction(0, 2), "input_dim >= 1"),
    (lambda: PCAReduction(4, 2)(torch.zeros(1, 4)), "never fitted"),
    (lambda: PCAReduction(4, 2).fit(torch.zeros(5, 3)), "width 4"),
    (lambda: PCAReduction(4, 2).fit(torch.zeros(1, 4)), "at least 2"),
    (lambda: PCAReduction(4, 2).fit(torch.tensor(_data(5, 4)))(torch.zeros(2, 3)), "expected 4-dim"),
])
def test_bad_shapes_and_order_are_refused(act, message):
    with pytest.raises(QSetFitError, match=message):
        act()
