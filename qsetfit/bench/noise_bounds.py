"""Which examples a noise cell can change: the read-out box of a cell and the examples decided on all of it.

Only examples whose prediction a cell can change are simulated, which is exact, not an approximation.
The logits are linear in module 2's read-outs z (``linear([f, z])``; f comes from module 1, always exact),
so an example whose class wins for every z in a box keeps it. The box is [-1, 1]^Qm for shots and device
noise; for depolarizing noise it is (1 - 2r) [P0 z - (1 - P0), P0 z + (1 - P0)] (``noise_box``): with
probability P0 no gate suffers a Pauli error and the state is the ideal one, a symmetric readout flip r maps
z to (1 - 2r) z. Low-noise cells thus simulate few examples; the count is in each row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qsetfit.bench.noise_grid import Cell
from qsetfit.head.hybrid import HybridHead


def no_error_probability(circuit: Any, cell: Cell) -> float | None:
    """P0: the chance that no gate of ``circuit`` suffers a Pauli error in a depolarizing cell; None otherwise.

    Aer's ``depolarizing_error(p, n)`` is rho -> (1 - p) rho + p I / 2^n, i.e. a non-identity Pauli with
    probability p (4^n - 1) / 4^n; the noisy state is therefore P0 rho_ideal + (1 - P0) sigma for some state sigma.
    """
    if cell.axis != "p2":
        return None
    if cell.noise is None:
        return 1.0
    p0 = 1.0
    for inst in circuit.data:
        n = len(inst.qubits)
        rate = {1: cell.noise["p1"], 2: cell.noise["p2"]}.get(n, 0.0)
        p0 *= 1.0 - rate * (4**n - 1) / 4**n
    return p0


def noise_box(circuit: Any, cell: Cell, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The box [low, high] each noisy read-out of ``cell`` lies in, given the exact read-outs ``z`` (N, Qm).

    Depolarizing cells: <Z>_noisy = P0 z + (1 - P0) <Z>_sigma with |<Z>_sigma| <= 1, then a symmetric readout
    flip r scales it by (1 - 2r). Shots and device noise: the whole [-1, 1].
    """
    p0 = no_error_probability(circuit, cell)
    if p0 is None:
        return -torch.ones_like(z), torch.ones_like(z)
    scale = 1.0 - 2.0 * (cell.noise or {}).get("readout", 0.0)
    return scale * (p0 * z - (1.0 - p0)), scale * (p0 * z + (1.0 - p0))


def decided_mask(
    head: HybridHead, features: torch.Tensor, predictions: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> np.ndarray:
    """(N,) bool: True where ``predictions`` wins for every read-out z in the box [low, high].

    With logits = A f + B z + c, class k beats class j on the whole box iff
    (A f + c)_k - (A f + c)_j + sum_m min((B_km - B_jm) low_m, (B_km - B_jm) high_m) > 0.

    Args:
        head: a hybrid head (``readout_weights`` splits its final layer into A, B, c).
        features: (N, Q) float64 module-1 features f.
        predictions: (N,) the class to test for each example (e.g. its exact prediction).
        low, high: (N, Qm) the box's corners (within [-1, 1]).
    """
    a, b, c = head.readout_weights()  # (K, Q), (K, Qm), (K,)
    k = predictions.long()
    base = features @ a.T + c  # (N, K)
    slope = b[k][:, None, :] - b[None, :, :]  # (N, K, Qm): B_k - B_j
    worst = torch.minimum(slope * low[:, None, :], slope * high[:, None, :]).sum(-1)  # (N, K)
    margin = base.gather(1, k[:, None]) - base + worst  # (N, K)
    margin[torch.arange(len(k)), k] = torch.inf
    return (margin.min(dim=1).values > 1e-9).numpy()
