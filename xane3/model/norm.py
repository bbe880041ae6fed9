"""Custom equivariant LayerNorm (2.2.2).

l = 0: standard LayerNorm with affine scale and bias. l > 0: RMS over channels
and components jointly, learnable per-channel scale, no centring, no bias, so the
direction information of vectors and tensors is preserved.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn


class EquivariantLayerNorm(nn.Module):
    def __init__(self, irreps: o3.Irreps, eps: float = 1e-5) -> None:
        super().__init__()
        self.irreps = o3.Irreps(irreps).simplify()
        self.eps = eps
        self.scales = nn.ParameterList()
        self.n_scalars = sum(mul for mul, ir in self.irreps if ir.l == 0)
        self.scalar_norm = nn.LayerNorm(self.n_scalars, eps=eps) if self.n_scalars else None
        for mul, ir in self.irreps:
            if ir.l > 0:
                self.scales.append(nn.Parameter(torch.ones(mul)))
        # plain ints for forward (torch.compile cannot guard on e3nn Irrep objects)
        self.blocks = tuple((mul, ir.l, ir.dim, sl.start, sl.stop)
                            for (mul, ir), sl in zip(self.irreps, self.irreps.slices()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        k = 0
        for mul, deg, dim, start, stop in self.blocks:
            block = x[..., start:stop]
            if deg == 0:
                out.append(self.scalar_norm(block))
                continue
            block = block.reshape(*x.shape[:-1], mul, dim)
            rms2 = block.pow(2).mean(dim=(-1, -2), keepdim=True)
            block = block * torch.rsqrt(rms2 + self.eps) * self.scales[k].unsqueeze(-1)
            out.append(block.reshape(*x.shape[:-1], mul * dim))
            k += 1
        return torch.cat(out, dim=-1)
