"""Residual mixing where block input and output irreps match (2.2.2).

Adaptive gated residual: h' = g * W_sc h + (1 - g) * m, with g in [0,1] per channel
predicted from the scalars of h and m and broadcast over each irrep's 2l+1
components (scalar gates keep it equivariant). ``plain`` is h' = W_sc h + m.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from xane3.model.backend import linear


class AdaptiveGatedResidual(nn.Module):
    def __init__(self, irreps: o3.Irreps, backend: str = "e3nn") -> None:
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.self_connection = linear(backend, self.irreps, self.irreps)
        self.n_scalars = sum(m for m, ir in self.irreps if ir.l == 0)
        self.gate = nn.Linear(2 * self.n_scalars, self.irreps.num_irreps)
        # each channel's gate repeated over its 2l+1 components
        index = torch.cat([
            torch.arange(m).repeat_interleave(ir.dim) + off
            for off, (m, ir) in zip(_offsets(self.irreps), self.irreps)
        ])
        self.register_buffer("expand", index, persistent=False)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        s = torch.cat([h[..., : self.n_scalars], m[..., : self.n_scalars]], dim=-1)
        g = torch.sigmoid(self.gate(s))[..., self.expand]
        return g * self.self_connection(h) + (1.0 - g) * m


class PlainResidual(nn.Module):
    def __init__(self, irreps: o3.Irreps, backend: str = "e3nn") -> None:
        super().__init__()
        self.self_connection = linear(backend, irreps, irreps)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.self_connection(h) + m


def _offsets(irreps: o3.Irreps) -> list[int]:
    out, acc = [], 0
    for m, _ in irreps:
        out.append(acc)
        acc += m
    return out
