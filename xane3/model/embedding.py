"""Initial atomic representation (2.2.1): a learnable table indexed by Z."""

from __future__ import annotations

import torch
from torch import nn


class SpeciesEmbedding(nn.Module):
    """Z -> m0 scalars; dense rows let chemically similar elements end up close."""

    def __init__(self, num_species: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(num_species, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.table(z)
