"""The channel-wise edge tensor product: paths, equivariance of the block, cost, config switch."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from xane3.config import Config, with_overrides
from xane3.model import XANE3
from xane3.model.channelwise import ChannelwiseTensorProduct, channelwise_paths
from xane3.model.interaction import InteractionBlock
from xane3.overlays import preset

IRREPS = o3.Irreps("8x0e+4x1o+2x2e")
SH = o3.Irreps.spherical_harmonics(2)


def test_paths_keep_channels_and_reach_every_output_irrep() -> None:
    mid, instructions = channelwise_paths(IRREPS, SH, IRREPS)
    assert all(mode == "uvu" for *_, mode, _ in instructions)
    # each path keeps its input multiplicity; no irrep outside the output's is made
    assert {ir for _, ir in mid} == {ir for _, ir in IRREPS}
    assert [mul for mul, _ in mid] == [IRREPS[i].mul for i, *_ in instructions]
    tp = ChannelwiseTensorProduct(IRREPS, SH, IRREPS)
    assert tp.weight_numel == sum(mul for mul, _ in mid)


def test_unreachable_output_irrep_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot reach"):
        ChannelwiseTensorProduct(o3.Irreps("4x0e"), o3.Irreps("0e"), o3.Irreps("4x0e+2x1o"))


@pytest.mark.parametrize("kind", ["full", "channelwise"])
def test_interaction_block_is_equivariant(kind) -> None:
    """e3nn's assert_equivariant on one block: node features, edge harmonics, radial features."""
    torch.manual_seed(0)
    block = InteractionBlock(IRREPS, IRREPS, SH, 8, 16, True, "gated", tensor_product_kind=kind).double()
    n, e = 6, 14
    edge_index = torch.randint(0, n, (2, e))
    rad = torch.randn(e, 8, dtype=torch.float64)

    def f(h, sh):
        return block(h, edge_index, sh, rad)

    assert_equivariant(f, irreps_in=[IRREPS, SH], irreps_out=[IRREPS],
                       args_in=[IRREPS.randn(n, -1, dtype=torch.float64),
                                SH.randn(e, -1, dtype=torch.float64)])


def test_switch_cuts_per_edge_weights_and_is_refused_on_cuequivariance() -> None:
    full = XANE3(with_overrides(Config(), preset("cpu")).model)
    cw = XANE3(with_overrides(Config(), {**preset("cpu"), "model.tensor_product": "channelwise"}).model)
    assert [b.tp.weight_numel for b in full.blocks] == [640, 1200, 1200]
    assert [b.tp.weight_numel for b in cw.blocks] == [48, 96, 96]
    with pytest.raises(ValueError, match="model.tensor_product"):
        with_overrides(Config(), {"model.tensor_product": "sparse"})
    pytest.importorskip("cuequivariance_torch")
    with pytest.raises(ValueError, match="runs on model.backend='e3nn' only"):
        XANE3(with_overrides(Config(), {**preset("tiny"), "model.tensor_product": "channelwise",
                                        "model.backend": "cuequivariance"}).model)
