"""Equivariant gated nonlinearity (2.2.2): SiLU on scalars, sigmoid gates on l > 0."""

from __future__ import annotations

import torch
from e3nn import nn as enn
from e3nn import o3


def gated_irreps(hidden: o3.Irreps) -> tuple[o3.Irreps, o3.Irreps, o3.Irreps]:
    """Split the hidden irreps into (scalars, gates, gated); one gate per l>0 channel."""
    scalars = o3.Irreps([(m, ir) for m, ir in hidden if ir.l == 0])
    gated = o3.Irreps([(m, ir) for m, ir in hidden if ir.l > 0])
    gates = o3.Irreps([(gated.num_irreps, (0, 1))]) if gated.num_irreps else o3.Irreps("")
    return scalars, gates, gated


def make_gate(hidden: o3.Irreps) -> enn.Gate:
    scalars, gates, gated = gated_irreps(hidden)
    return enn.Gate(
        scalars, [torch.nn.functional.silu] * len(scalars),
        gates, [torch.sigmoid] * len(gates),
        gated,
    )
