"""Equivariant interaction block (2.2.2).

message m_ij = TP(h_j, Y(x_ij); w(d_ij)) with per-edge weights from a radial MLP,
mean aggregation, equivariant LayerNorm, gated nonlinearity, then (where the
block's input and output irreps match) a residual mix with the block input.
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn
from torch_geometric.utils import scatter

from xane3.model.backend import tensor_product
from xane3.model.channelwise import ChannelwiseTensorProduct
from xane3.model.gate import gated_irreps, make_gate
from xane3.model.norm import EquivariantLayerNorm
from xane3.model.residual import AdaptiveGatedResidual, PlainResidual


class InteractionBlock(nn.Module):
    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        sh_irreps: o3.Irreps,
        num_radial: int,
        radial_hidden: int,
        layer_norm: bool,
        residual: str,
        backend: str = "e3nn",
        tensor_product_kind: str = "full",
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        scalars, gates, gated = gated_irreps(self.irreps_out)
        # TP output: scalars + one gate scalar per l>0 channel + gated channels
        self.tp_out = o3.Irreps(list(scalars) + list(gates) + list(gated))
        if tensor_product_kind == "channelwise":
            if backend != "e3nn":
                raise ValueError("model.tensor_product='channelwise' runs on model.backend='e3nn' only")
            self.tp = ChannelwiseTensorProduct(self.irreps_in, sh_irreps, self.tp_out)
        else:
            self.tp = tensor_product(backend, self.irreps_in, sh_irreps, self.tp_out)
        self.radial_mlp = FullyConnectedNet(
            [num_radial, radial_hidden, self.tp.weight_numel], torch.nn.functional.silu
        )
        self.norm = EquivariantLayerNorm(self.tp_out) if layer_norm else None
        self.gate = make_gate(self.irreps_out)
        self.residual: nn.Module | None = None
        if residual != "none" and self.irreps_in == self.irreps_out:
            cls = AdaptiveGatedResidual if residual == "gated" else PlainResidual
            self.residual = cls(self.irreps_out, backend)

    def forward(
        self, h: torch.Tensor, edge_index: torch.Tensor, sh: torch.Tensor, rad: torch.Tensor
    ) -> torch.Tensor:
        receiver, sender = edge_index[0], edge_index[1]
        weights = self.radial_mlp(rad)
        msg = self.tp(h[sender], sh, weights)
        m = scatter(msg, receiver, dim=0, dim_size=h.shape[0], reduce="mean")
        if isinstance(self.tp, ChannelwiseTensorProduct):
            m = self.tp.mix(m)  # linear, so after the mean: once per node, not per edge
        if self.norm is not None:
            m = self.norm(m)
        m = self.gate(m)
        if self.residual is not None:
            return self.residual(h, m)
        return m
