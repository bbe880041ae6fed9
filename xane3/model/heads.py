"""Readout MLP (invariant features -> basis coefficients) and the E0 head (2.2.5)."""

from __future__ import annotations

import torch
from torch import nn


class CoefficientHead(nn.Module):
    """z -> K Gaussian coefficients (+1 background coefficient), dropout in between."""

    def __init__(self, dim_in: int, hidden: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim_in, hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, n_out)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class E0Head(nn.Module):
    """Predicts z-scored E0 from DETACHED readout features.

    The paper found E0 gradients through the backbone hurt the spectra, so the
    input is detached: this head can never change the spectral prediction.
    """

    def __init__(self, dim_in: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim_in, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.detach()).squeeze(-1)
