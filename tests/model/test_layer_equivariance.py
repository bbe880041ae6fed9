"""Every model part that carries irreps, checked on its own with e3nn's ``assert_equivariant``
(random rotations and inversions), so a broken layer shows as that layer, not as a wrong spectrum."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant

from xane3.model.channelwise import ChannelwiseTensorProduct
from xane3.model.gate import make_gate
from xane3.model.interaction import InteractionBlock
from xane3.model.norm import EquivariantLayerNorm
from xane3.model.radial import EdgeGeometry
from xane3.model.residual import AdaptiveGatedResidual, PlainResidual

HIDDEN = o3.Irreps("8x0e+4x1o+2x2e")
TOL = 1e-9  # float64 throughout


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


def _perturbed(module: torch.nn.Module) -> torch.nn.Module:
    """Random non-trivial weights everywhere (an identity-initialised part checks nothing)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module.double()


def test_layer_norm() -> None:
    norm = _perturbed(EquivariantLayerNorm(HIDDEN))
    assert_equivariant(norm, irreps_in=[HIDDEN], irreps_out=[HIDDEN], tolerance=TOL)


def test_gate() -> None:
    gate = make_gate(HIDDEN)
    assert_equivariant(gate, irreps_in=[gate.irreps_in], irreps_out=[gate.irreps_out], tolerance=TOL)


@pytest.mark.parametrize("cls", [AdaptiveGatedResidual, PlainResidual])
def test_residuals(cls) -> None:
    res = _perturbed(cls(HIDDEN))
    assert_equivariant(res, irreps_in=[HIDDEN, HIDDEN], irreps_out=[HIDDEN], tolerance=TOL)


def test_channelwise_tensor_product_and_its_mix() -> None:
    sh = o3.Irreps.spherical_harmonics(2)
    tp = _perturbed(ChannelwiseTensorProduct(HIDDEN, sh, HIDDEN))
    weights = torch.randn(5, tp.weight_numel)  # invariant: from edge lengths

    def edge_then_mix(x, y, w):
        return tp.mix(tp(x, y, w))

    args = [HIDDEN.randn(5, -1), sh.randn(5, -1), weights]
    assert_equivariant(edge_then_mix, args_in=args, irreps_in=[HIDDEN, sh, None], irreps_out=[HIDDEN],
                       tolerance=TOL)


@pytest.mark.parametrize("kind", ["full", "channelwise"])
@pytest.mark.parametrize("layer_norm,residual", [(True, "gated"), (False, "plain"), (True, "none")])
def test_interaction_block_on_a_point_cloud(kind, layer_norm, residual) -> None:
    """The whole block (edge TP, radial weights, mean aggregation, norm, gate, residual) with
    its edge features recomputed from rotated positions, as the model does."""
    geometry = EdgeGeometry(3.0, 8, 2, "bessel")
    block = _perturbed(InteractionBlock(HIDDEN, HIDDEN, geometry.sh_irreps, 8, 16, layer_norm, residual,
                                        tensor_product_kind=kind))
    pos = torch.randn(12, 3) * 1.5
    dist = torch.cdist(pos, pos)
    edge_index = torch.nonzero((dist < 3.0) & (dist > 0)).T  # rotations keep distances: same edges

    def block_of(h, positions):
        sh, rad = geometry(positions[edge_index[1]] - positions[edge_index[0]])
        return block(h, edge_index, sh, rad)

    assert edge_index.shape[1] > 20
    assert_equivariant(block_of, args_in=[HIDDEN.randn(12, -1), pos], irreps_in=[HIDDEN, "cartesian_points"],
                       irreps_out=[HIDDEN], tolerance=TOL)


def test_the_check_can_fail() -> None:
    """A layer that mixes a vector's components with a scalar is caught."""
    irreps = o3.Irreps("1x0e+1x1o")

    def broken(x):
        return x + torch.cat([x[:, 1:2], torch.zeros_like(x[:, 1:])], dim=1)

    with pytest.raises(AssertionError):
        assert_equivariant(broken, irreps_in=[irreps], irreps_out=[irreps], tolerance=TOL)
