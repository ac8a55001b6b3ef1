"""Module 1's input reduction: the embedding projected onto its top principal components.

The PCA is fitted by scikit-learn on the training embeddings only; its mean and components live in torch
buffers, so they are saved in ``head.safetensors`` with the weights and applied identically at training and
inference whatever engine runs module 2.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from qsetfit.errors import QSetFitError


class PCAReduction(nn.Module):
    """(B, D) embeddings -> (B, k) coordinates on the top-k principal components of the training embeddings.

    Components beyond what the training set supports (k > min(N, D)) stay zero rows, so the shape depends
    only on the head's configuration and the embedding width, never on the data size.
    """

    mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    components: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, input_dim: int, components: int) -> None:
        super().__init__()
        if input_dim < 1 or components < 1:
            raise QSetFitError(f"PCA needs input_dim >= 1 and components >= 1, got {input_dim}, {components}")
        self.register_buffer("mean", torch.zeros(input_dim, dtype=torch.float64))
        self.register_buffer("components", torch.zeros(components, input_dim, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.float64))  # 1 once fit() has run

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted.item())

    def fit(self, embeddings: torch.Tensor) -> PCAReduction:
        """Fit on (N, D) training embeddings (deterministic: full SVD)."""
        from sklearn.decomposition import PCA

        x = np.asarray(embeddings.detach().cpu().to(torch.float64).numpy())
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise QSetFitError(f"PCA expects embeddings of width {self.mean.shape[0]}, got shape {x.shape}")
        k = min(self.components.shape[0], x.shape[0], x.shape[1])
        if x.shape[0] < 2:
            raise QSetFitError("reduction='pca' needs at least 2 training embeddings")
        pca = PCA(n_components=k, svd_solver="full").fit(x)
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(pca.mean_))
            self.components.zero_()
            self.components[:k] = torch.as_tensor(pca.components_)
            self.fitted.fill_(1.0)
        return self

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if not self.is_fitted:
            raise QSetFitError("the PCA reduction was never fitted; train the head (fit) before using it")
        if embeddings.shape[-1] != self.mean.shape[0]:
            raise QSetFitError(
                f"expected {self.mean.shape[0]}-dim embeddings (the PCA was fitted on them), got "
                f"{embeddings.shape[-1]}; use the body the head was trained with"
            )
        return (embeddings.to(torch.float64) - self.mean) @ self.components.T  # (B, k)
