"""Edge geometry: radial bases x smooth cosine cutoff, and spherical harmonics.

Positions are fixed per structure, so everything here depends on geometry alone
and is computed once per structure and cached (see ``edge_features``).
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn


def cosine_cutoff(r: torch.Tensor, r_max: float) -> torch.Tensor:
    """0.5 (cos(pi r / r_max) + 1) inside r_max, 0 outside: smooth at the cutoff."""
    return torch.where(r < r_max, 0.5 * (torch.cos(math.pi * r / r_max) + 1.0), 0.0 * r)


class BesselBasis(nn.Module):
    """sqrt(2/r_c) sin(n pi r / r_c) / r, n = 1..N (the paper's default radial basis)."""

    def __init__(self, r_max: float, num: int) -> None:
        super().__init__()
        self.r_max = r_max
        self.register_buffer("freq", torch.arange(1, num + 1) * math.pi / r_max)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1).clamp_min(1e-9)
        freq = self.freq.to(r.dtype)
        return math.sqrt(2.0 / self.r_max) * torch.sin(freq * r) / r


class GaussianRadialBasis(nn.Module):
    """Gaussians with centres uniform on [0, r_c] and width r_c / N."""

    def __init__(self, r_max: float, num: int) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, r_max, num))
        self.width = r_max / num

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        c = self.centers.to(r.dtype)
        return torch.exp(-0.5 * ((r.unsqueeze(-1) - c) / self.width) ** 2)


class EdgeGeometry(nn.Module):
    """Edge vectors -> (spherical harmonics, radial features x cutoff)."""

    def __init__(self, r_max: float, num_radial: int, l_max: int, basis: str) -> None:
        super().__init__()
        self.r_max = r_max
        self.sh_irreps = o3.Irreps.spherical_harmonics(l_max)
        self.radial = (
            BesselBasis(r_max, num_radial) if basis == "bessel"
            else GaussianRadialBasis(r_max, num_radial)
        )

    def forward(self, edge_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = edge_vec.norm(dim=-1)
        sh = o3.spherical_harmonics(
            self.sh_irreps, edge_vec, normalize=True, normalization="component"
        )
        rad = self.radial(r) * cosine_cutoff(r, self.r_max).unsqueeze(-1)
        return sh, rad

    def cache_key(self) -> tuple:
        """What the cached features depend on (a config change invalidates them)."""
        return (self.r_max, type(self.radial).__name__, self.radial_num, str(self.sh_irreps))

    @property
    def radial_num(self) -> int:
        buf = getattr(self.radial, "freq", None)
        return int(buf.numel()) if buf is not None else int(self.radial.centers.numel())
