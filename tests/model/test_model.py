"""The model: parameter counts, every variant's symmetry, the detached E0 head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO

from xane3.config import Config, with_overrides
from xane3.model import XANE3
from xane3.overlays import load_overlay
from xane3.testing import assert_invariant_spectra, feo_slab, predict_groups

# the capacity-matched scalar-only backbone is the ablation spec, not a second definition
SCALAR_ONLY = load_overlay(REPO / "ablations/specs/no_tensorial_features.yaml", foreign_ok=True).overrides

VARIANTS = {
    "default": {},
    "scalar_only": SCALAR_ONLY,
    "no_layer_norm": {"model.layer_norm": False},
    "plain_residual": {"model.residual": "plain"},
    "no_residual": {"model.residual": "none"},
    "mean_pooling": {"model.pooling": "mean"},
    "no_background": {"model.background": False},
    "learn_widths": {"model.learn_widths": True, "model.learn_centers": False},
    "physics_centres": {"model.centers_init": "physics", "model.learn_widths": True},
    "gaussian_radial": {"model.radial_basis": "gaussian"},
    "no_e0_head": {"model.e0_head": False},
    "channelwise_tp": {"model.tensor_product": "channelwise"},
}


SMALL = {"model.m0": 8, "model.m1": 4, "model.m2": 2, "model.radial_hidden": 16,
         "model.readout_hidden": 32, "model.n_gaussians": 50}


def build(overrides: dict, seed: int = 0) -> XANE3:
    torch.manual_seed(seed)
    return XANE3(with_overrides(Config(), overrides).model)


def test_parameter_counts_match_paper() -> None:
    assert abs(build({}).num_parameters() - 1.19e6) <= 0.03 * 1.19e6
    assert abs(build(SCALAR_ONLY).num_parameters() - 1.17e6) <= 0.03 * 1.17e6


@pytest.fixture(scope="module")
def slab():
    return feo_slab(layers=2, seed=3).repeat((2, 1, 1))


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_every_variant_is_invariant(name, dtype, slab) -> None:
    # paper widths for the two variants the paper counts, reduced widths for the switches
    widths = {} if name in ("default", "scalar_only") else SMALL
    model = build({**widths, **VARIANTS[name]})
    # random, non-trivial weights in every part so the check can fail
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert_invariant_spectra(model, slab, absorber=0, dtype=dtype)


def _spec_names() -> list[str]:
    from ablations.specs import load_specs

    return list(load_specs())


@pytest.mark.parametrize("spec", _spec_names())
def test_every_ablation_spec_is_invariant(spec, slab) -> None:
    """Issue 15: every spec file, not a hand-written list: a new ablation is checked by existing."""
    from ablations.specs import load_specs

    model = build({**SMALL, **load_specs()[spec].overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert_invariant_spectra(model, slab, absorber=0, dtype=torch.float64)


def test_invariance_check_can_fail(slab) -> None:
    """A real geometric change must change the spectrum (the check is not vacuous)."""
    model = build({}).double().eval()
    ref = predict_groups(model, slab, [[0]], torch.float64)
    moved = slab.copy()
    moved.positions[1] += np.array([0.3, -0.2, 0.1])
    out = predict_groups(model, moved, [[0]], torch.float64)
    assert (out - ref).abs().max() > 1e-6


def test_e0_gradients_do_not_reach_backbone(slab) -> None:
    model = build({})
    from xane3.data.graphs import StructureGraph, collate

    batch = collate([StructureGraph.from_atoms(slab, 5.0)], [(0, [0])])
    out = model(batch)
    out["e0"].sum().backward()
    for name, p in model.named_parameters():
        if not name.startswith("e0_head"):
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.e0_head.parameters())


def test_structure_batching_equals_per_absorber(slab) -> None:
    """k absorbers of one structure pooled from one backbone pass = k separate graphs."""
    from xane3.data.graphs import StructureGraph, collate

    model = build({}).eval()
    graph = StructureGraph.from_atoms(slab, 5.0)
    fe = [i for i, z in enumerate(slab.numbers) if z == 26]
    samples = [(0, [a]) for a in fe] + [(0, fe[:2])]
    with torch.no_grad():
        a = model(collate([graph], samples, "structure", model.geometry))["spectrum"]
        b = model(collate([graph], samples, "absorber", model.geometry))["spectrum"]
        c = model(collate([graph], samples, "absorber", None))["spectrum"]
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, c, atol=1e-5)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(KeyError, match="model.layer_nrom"):
        with_overrides(Config(), {"model.layer_nrom": False})


def test_attention_is_an_output_not_module_state(slab) -> None:
    """Issue 15: the weights were stored on the pooling module by forward; now they are returned,
    one per context atom, summing to 1 per spectrum (absent with mean pooling)."""
    from xane3.data.graphs import StructureGraph
    from xane3.data.loader import collate

    model = build(SMALL).eval()
    batch = collate([StructureGraph.from_atoms(slab, 5.0)], [(0, [0]), (0, [2])])
    with torch.no_grad():
        out = model(batch)
    w = out["attention"]
    assert w.shape == batch.ctx_atom.shape and torch.all(w >= 0)
    sums = torch.zeros(2).index_add_(0, batch.ctx_sample, w)
    torch.testing.assert_close(sums, torch.ones(2))
    assert not hasattr(model.pooling, "last_weights")
    assert "attention" not in build({**SMALL, "model.pooling": "mean"}).eval()(batch)


def test_bf16_autocast_keeps_the_energy_grid_in_float32() -> None:
    """The readout cast the energy grid to its features' dtype: under bf16 autocast an absolute
    7097-7172 eV grid fell on 32 eV steps and the spectrum was 54 % off (CUDA amp runs)."""
    absolute = {"data.energy_axis": "absolute", "data.e_min": 7097.0, "data.e_max": 7172.0,
                "data.n_points": 226}
    for axis in (absolute, {}):
        model = build({**SMALL, **axis}).eval()
        z = torch.randn(4, model.readout_dim)
        with torch.no_grad():
            ref = model.spectrum(z)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = model.spectrum(z.bfloat16()).float()
        assert float((low - ref).norm() / ref.norm()) < 0.03, axis  # bf16 rounding of the sums only
