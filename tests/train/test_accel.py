"""The GPU-path switches, tested on CPU: bf16 autocast, torch.compile, pinned batches.

CUDA itself is never faked here: the one test that replaces a torch function
(page-locking, which needs a CUDA driver) says so; the real pinned-memory path
runs in ``test_pinned_batches_on_cuda`` where a GPU exists.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.data.graphs import StructureGraph, collate
from xane3.data.loader import SpectrumLoader
from xane3.model import XANE3
from xane3.overlays import preset
from xane3.testing import feo_slab
from xane3.train import fit
from xane3.train.accel import CompiledForward, autocast, forward_fn, pin_memory_for, resolve_device, to_device


@pytest.fixture(scope="module")
def real_ds(xanesnet_records):
    cfg = with_overrides(Config(), preset("tiny"))
    return XASDataset.from_records(xanesnet_records, cfg.data, name="xanesnet40")


@pytest.fixture(scope="module")
def tiny_model_and_batch():
    cfg = with_overrides(Config(), preset("tiny"))
    torch.manual_seed(0)
    model = XANE3(cfg.model).eval()
    slab = feo_slab(layers=2, seed=3)
    batch = collate([StructureGraph.from_atoms(slab, cfg.model.r_max)], [(0, [0]), (0, [1])],
                    "structure", model.geometry)
    return model, batch


def test_autocast_is_bf16_on_cpu_and_off_without_amp(tiny_model_and_batch) -> None:
    model, batch = tiny_model_and_batch
    cpu = torch.device("cpu")
    with autocast(cpu, True):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
        y = torch.ones(4, 4) @ torch.ones(4, 4)
    assert y.dtype == torch.bfloat16
    with autocast(cpu, False):
        assert not torch.is_autocast_enabled("cpu")
    with torch.no_grad():
        ref = model(batch)["spectrum"]
        with autocast(cpu, True):
            low = model(batch)["spectrum"].float()
    err = (low - ref).abs().max().item()
    assert 0 < err < 0.05 * max(ref.abs().max().item(), 1.0)  # bf16 really ran, and stayed close


def test_amp_training_on_cpu_tracks_fp32(real_ds, tmp_path) -> None:
    over = {**preset("tiny"), "train.epochs": 2, "train.max_steps_per_epoch": 2}
    a = fit(with_overrides(Config(), over), real_ds, tmp_path / "fp32", progress=False)
    b = fit(with_overrides(Config(), {**over, "train.amp": True}), real_ds, tmp_path / "bf16",
            progress=False)
    va, vb = (np.array([h["val_spectrum"] for h in r.history]) for r in (a, b))
    assert np.isfinite(vb).all() and not np.array_equal(va, vb)
    np.testing.assert_allclose(vb, va, rtol=0.1)


def test_compile_failure_falls_back_to_eager_with_a_warning(tiny_model_and_batch) -> None:
    model, batch = tiny_model_and_batch

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no code generator here")

    fwd = CompiledForward(model, backend=broken_backend)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="torch.compile failed.*eager"):
        out = fwd(batch)["spectrum"]
    assert fwd.failed and "no code generator" in fwd.failed
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later calls go straight to eager
        torch.testing.assert_close(fwd(batch)["spectrum"], out)
        torch.testing.assert_close(model(batch)["spectrum"], out)
    assert forward_fn(model, False) is model


def test_model_traces_as_one_graph(tiny_model_and_batch) -> None:
    """No graph breaks: the forward never iterates e3nn Irrep objects dynamo cannot guard."""
    model, batch = tiny_model_and_batch
    torch._dynamo.reset()
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(batch)
    assert explained.graph_count == 1 and explained.graph_break_count == 0


@pytest.mark.slow
def test_compiled_training_matches_eager(real_ds, tmp_path) -> None:
    """torch.compile (inductor, CPU) trains to the same numbers as eager, within noise.

    Not bit-equal: inductor fuses differently and draws its own dropout masks.
    """
    over = {**preset("tiny"), "train.epochs": 1, "train.max_steps_per_epoch": 2}
    a = fit(with_overrides(Config(), over), real_ds, tmp_path / "eager", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a compile failure fails the test
        b = fit(with_overrides(Config(), {**over, "train.compile": True}), real_ds,
                tmp_path / "compiled", progress=False)
    np.testing.assert_allclose(b.history[0]["val_spectrum"], a.history[0]["val_spectrum"], rtol=2e-3)
    assert set(torch.load(tmp_path / "compiled" / "best.pt")["model"]) == set(a.model.state_dict())


def test_a_device_this_machine_lacks_is_bad_input() -> None:
    """ValueError (one line from every command), so the commands need not catch RuntimeError,
    which would also turn a genuine fault into an exit-2 "error:" line."""
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a device name"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="cuda:99"):
        resolve_device("cuda:99")


def test_pinning_follows_the_device() -> None:
    assert pin_memory_for(torch.device("cuda")) and pin_memory_for(torch.device("cuda:1"))
    assert not pin_memory_for(torch.device("cpu"))


def test_pinned_loader_pins_every_tensor(real_ds, monkeypatch) -> None:
    """MOCK: page-locking needs a CUDA driver, so ``Tensor.pin_memory`` is replaced by a recorder.

    What is tested is our side: with ``pin_memory=True`` every tensor of the graph
    batch and of the targets goes through ``pin_memory()``, and nothing without it.
    """
    pinned: list[tuple[int, ...]] = []

    def record(self):
        pinned.append(tuple(self.shape))
        return self

    monkeypatch.setattr(torch.Tensor, "pin_memory", record)
    idx = list(range(8))
    batch, tgt, _ = SpectrumLoader(real_ds, idx, 4, pin_memory=False).make_batch(np.array(idx[:4]))
    assert pinned == []
    batch, tgt, _ = SpectrumLoader(real_ds, idx, 4, pin_memory=True).make_batch(np.array(idx[:4]))
    tensors = [v for v in vars(batch).values() if isinstance(v, torch.Tensor)] + list(tgt.values())
    assert sorted(pinned) == sorted(tuple(t.shape) for t in tensors)


def test_to_device_moves_batch_and_targets(real_ds) -> None:
    idx = np.arange(4)
    batch, tgt, _ = SpectrumLoader(real_ds, idx, 4).make_batch(idx)
    b2, t2 = to_device(batch, tgt, torch.device("cpu"))
    assert set(t2) == set(tgt) and all(torch.equal(t2[k], tgt[k]) for k in tgt)
    assert torch.equal(b2.edge_index, batch.edge_index)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pinned_batches_on_cuda(real_ds) -> None:
    idx = np.arange(8)
    batch, tgt, _ = SpectrumLoader(real_ds, idx, 4, pin_memory=True).make_batch(idx[:4])
    assert batch.edge_index.is_pinned() and all(v.is_pinned() for v in tgt.values())
    b2, t2 = to_device(batch, tgt, torch.device("cuda"))
    torch.cuda.synchronize()
    assert b2.edge_index.is_cuda and torch.equal(t2["spectrum"].cpu(), tgt["spectrum"])
