"""e3nn vs cuEquivariance backends: same weights, same spectra, same symmetry.

Runs on CPU through cuequivariance-torch's pure-PyTorch ("naive") path, which
computes the same polynomial as its CUDA kernels; the kernels themselves are only
exercised where ``cuequivariance-ops-torch`` and a GPU are present.
"""

from __future__ import annotations

import sys
import warnings

import pytest
import torch

from xane3.config import Config, with_overrides
from xane3.data.graphs import StructureGraph, collate
from xane3.model import XANE3
from xane3.model.backend import cuequivariance_available
from xane3.overlays import preset
from xane3.testing import assert_invariant_spectra, feo_slab, predict_groups

needs_cueq = pytest.mark.skipif(
    not cuequivariance_available(),
    reason="cuequivariance-torch not installed (pip install -e '.[test]' or 'xane3[cuda]')")

SMALL = {"model.m0": 8, "model.m1": 4, "model.m2": 2, "model.radial_hidden": 16,
         "model.readout_hidden": 32, "model.n_gaussians": 50, "model.num_layers": 3}
CUE = {"model.backend": "cuequivariance"}


def build(overrides: dict, seed: int = 0) -> XANE3:
    torch.manual_seed(seed)
    return XANE3(with_overrides(Config(), overrides).model)


@pytest.fixture(scope="module")
def slab():
    return feo_slab(layers=2, seed=3).repeat((2, 1, 1))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*cuequivariance_ops_torch is not available.*")
        yield


def perturbed(model: XANE3) -> XANE3:
    """Non-trivial weights in every part, so a wrong path order or norm would show."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@needs_cueq
def test_state_dicts_are_interchangeable() -> None:
    e3, cu = build(SMALL), build({**SMALL, **CUE})
    real = {k for k in e3.state_dict() if "._compiled_main" not in k}  # e3nn's 3j constants
    assert real == set(cu.state_dict())
    for k in real:
        assert e3.state_dict()[k].shape == cu.state_dict()[k].shape, k
    # same seed, same initial weights: the backends consume the RNG alike
    assert all(torch.equal(e3.state_dict()[k], cu.state_dict()[k]) for k in real)
    cu.load_state_dict(perturbed(e3).state_dict(), strict=True)
    e3b = build(SMALL, seed=7)
    e3b.load_state_dict(cu.state_dict(), strict=True)
    assert all(torch.equal(e3b.state_dict()[k], e3.state_dict()[k]) for k in e3.state_dict())


@needs_cueq
@pytest.mark.parametrize("overrides", [{}, {"model.residual": "plain"}, {"model.tensorial": False}],
                         ids=["gated", "plain_residual", "scalar_only"])
def test_same_weights_same_spectra_and_gradients(overrides, slab) -> None:
    e3 = perturbed(build({**SMALL, **overrides}))
    cu = build({**SMALL, **overrides, **CUE})
    cu.load_state_dict(e3.state_dict())
    graph = StructureGraph.from_atoms(slab, e3.config.r_max)
    batch = collate([graph], [(0, [0]), (0, [1, 2])], "structure", e3.geometry)
    outs = []
    for m in (e3, cu):
        m.train()
        torch.manual_seed(1)  # same dropout mask
        out = m(batch)
        (out["spectrum"].pow(2).mean() + out["e0"].sum()).backward()
        outs.append((out["spectrum"].detach(), {n: p.grad for n, p in m.named_parameters()}))
    (a, ga), (b, gb) = outs
    assert (a - b).abs().max() <= 1e-5 * max(a.abs().max().item(), 1.0)
    for n, g in ga.items():
        if g is not None:
            assert torch.allclose(g, gb[n], rtol=1e-4, atol=1e-6), n


@needs_cueq
def test_float64_parity_is_exact(slab) -> None:
    """Built in float64 (coefficient tables included), the backends agree to rounding."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        e3, cu = perturbed(build(SMALL)).eval(), build({**SMALL, **CUE}).eval()
        cu.load_state_dict(e3.state_dict())
        a = predict_groups(e3, slab, [[0], [3]], torch.float64)
        b = predict_groups(cu, slab, [[0], [3]], torch.float64)
    finally:
        torch.set_default_dtype(old)
    assert (a - b).abs().max() <= 1e-12


@needs_cueq
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_cuequivariance_model_is_invariant(dtype, slab) -> None:
    assert_invariant_spectra(perturbed(build({**SMALL, **CUE})), slab, absorber=0, dtype=dtype)


@needs_cueq
def test_e3nn_checkpoint_runs_on_cuequivariance(tmp_path, slab) -> None:
    from xane3.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = with_overrides(Config(), {**preset("tiny")})
    torch.manual_seed(0)
    model = perturbed(XANE3(cfg.model)).eval()
    save_checkpoint(tmp_path / "m.pt", model, cfg)
    cu = load_checkpoint(tmp_path / "m.pt", backend="cuequivariance")
    assert cu.config.backend == "cuequivariance" and type(cu.blocks[0].tp).__name__ == "CueTensorProduct"
    a = predict_groups(model, slab, [[0]], torch.float32)
    b = predict_groups(cu, slab, [[0]], torch.float32)
    assert (a - b).abs().max() <= 1e-5 * max(a.abs().max().item(), 1.0)


def test_missing_cuequivariance_names_the_extra(monkeypatch, tmp_path) -> None:
    """Without the package the error says what to install (simulated by hiding the module)."""
    monkeypatch.setitem(sys.modules, "cuequivariance_torch", None)
    with pytest.raises(ImportError, match=r"xane3\[cuda\]"):
        build({**SMALL, **CUE})
    # a checkpoint trained on cuEquivariance still loads, on e3nn, with a warning
    from xane3.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = with_overrides(Config(), {**preset("tiny")})
    save_checkpoint(tmp_path / "m.pt", XANE3(cfg.model), with_overrides(cfg, CUE))
    with pytest.warns(UserWarning, match="running the same weights on e3nn"):
        model = load_checkpoint(tmp_path / "m.pt")
    assert model.config.backend == "e3nn"
    with pytest.raises(ImportError, match=r"xane3\[cuda\]"):
        load_checkpoint(tmp_path / "m.pt", backend="cuequivariance")


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(ValueError, match="model.backend"):
        with_overrides(Config(), {"model.backend": "jax"})
