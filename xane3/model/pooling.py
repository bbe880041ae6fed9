"""Absorber readout features and absorber-query attention pooling (2.2.3).

A spectrum ("sample") is pooled from a group of absorber atoms of one structure.
Samples index atoms of the batched backbone output, so a structure's backbone is
computed once however many of its absorbers the batch holds.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn
from torch_geometric.utils import scatter, softmax


def irreps_blocks(irreps: o3.Irreps) -> tuple[tuple[int, int, int, int], ...]:
    """(mul, l, start, stop) per irreps entry as plain ints: torch.compile cannot guard
    on e3nn ``Irrep`` objects, so forward passes iterate over these instead."""
    irreps = o3.Irreps(irreps)
    return tuple((mul, ir.l, sl.start, sl.stop) for (mul, ir), sl in zip(irreps, irreps.slices()))


def absorber_features(
    h: torch.Tensor, irreps: o3.Irreps | tuple, atom: torch.Tensor, sample: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean absorber scalars [n, m0], mean per-channel norms of l>0 [n, m1+m2]).

    ``irreps`` may be given as :func:`irreps_blocks` (what the model passes).
    """
    blocks = irreps if isinstance(irreps, tuple) else irreps_blocks(irreps)
    scalars, norms = [], []
    ha = h[atom]
    for mul, deg, start, stop in blocks:
        block = ha[:, start:stop]
        if deg == 0:
            scalars.append(block)
        else:
            sq = block.reshape(-1, mul, 2 * deg + 1).pow(2).sum(-1)
            norms.append(torch.sqrt(sq + 1e-12))
    s = scatter(torch.cat(scalars, -1), sample, 0, dim_size=n, reduce="mean")
    if not norms:
        return s, s.new_zeros(n, 0)
    return s, scatter(torch.cat(norms, -1), sample, 0, dim_size=n, reduce="mean")


class AbsorberAttentionPooling(nn.Module):
    """Context c_g = softmax-weighted mean of non-absorber atom scalars.

    Score = MLP([absorber summary (query) || atom scalars]); absorbers are masked
    by the loader (they are not in the context index lists).
    """

    def __init__(self, m0: int, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(
            nn.Linear(2 * m0, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )

    def forward(
        self, s_abs: torch.Tensor, s: torch.Tensor, ctx_atom: torch.Tensor,
        ctx_sample: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(context [S, m0], attention weight per context entry [C]): the weights are an output,
        what a user draws on the structure, not module state a later call overwrites."""
        n = s_abs.shape[0]
        e = self.score(torch.cat([s_abs[ctx_sample], s[ctx_atom]], -1)).squeeze(-1)
        a = softmax(e, ctx_sample, num_nodes=n)
        return scatter(a.unsqueeze(-1) * s[ctx_atom], ctx_sample, 0, dim_size=n, reduce="sum"), a


class MeanContextPooling(nn.Module):
    """Ablation: plain mean over non-absorber atoms."""

    def __init__(self, m0: int, hidden: int) -> None:
        super().__init__()

    def forward(
        self, s_abs: torch.Tensor, s: torch.Tensor, ctx_atom: torch.Tensor,
        ctx_sample: torch.Tensor,
    ) -> tuple[torch.Tensor, None]:
        return scatter(s[ctx_atom], ctx_sample, 0, dim_size=s_abs.shape[0], reduce="mean"), None
