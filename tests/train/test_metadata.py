"""ModelMetadata: one typed record every consumer reads, old checkpoints included."""

from __future__ import annotations

import dataclasses

import pytest

from xane3.config import Config, with_overrides
from xane3.model import XANE3
from xane3.overlays import preset
from xane3.train.checkpoint import load_checkpoint
from xane3.train.metadata import ModelMetadata, metadata_of


def test_the_shipped_checkpoint_predates_the_record_and_still_reads() -> None:
    pytest.importorskip("xane3.pretrained")
    from xane3.ensemble import resolve_checkpoint

    md = load_checkpoint(resolve_checkpoint(None)).metadata
    assert md.absorber_z == 26 and md.e0_trained and md.energy_axis == "relative"
    assert len(md.energy) == md.config.data.n_points and md.data_hash and md.elements >= {8, 26}
    assert md.absorber_neighbours and md.run["best_epoch"] >= 0


def test_round_trip_and_what_an_untrained_model_says() -> None:
    cfg = with_overrides(Config(), preset("tiny"))
    model = XANE3(cfg.model)
    fresh = metadata_of(model)  # built in memory: E0 statistics never fitted
    assert not fresh.e0_trained and fresh.absorber_z == 26 and len(fresh.energy) == cfg.data.n_points
    md = dataclasses.replace(fresh, e0_trained=True, data_hash="abc", elements=frozenset({8, 26}),
                             absorber_neighbours=(3, 9), splits={"train": [0, 1]}, run={"epoch": 2})
    again = ModelMetadata.from_meta(md.to_meta(), md.config, model)
    assert again == md
    # an explicit field wins over the weights' heuristic
    assert not ModelMetadata.from_meta({**md.to_meta(), "e0_trained": False}, cfg, model).e0_trained


def test_a_checkpoint_whose_config_cannot_be_read_is_named(tmp_path) -> None:
    """A key removed since the checkpoint was written, or no config at all: the file is named."""
    import json

    import pytest
    import torch

    from xane3.ensemble import PRETRAINED
    from xane3.train.checkpoint import read_checkpoint

    payload = torch.load(PRETRAINED, weights_only=True)
    cfg = json.loads(payload["config"])
    cfg["model"]["old_knob"] = 1
    torch.save({**payload, "config": json.dumps(cfg)}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="old.pt: its config .*model.old_knob"):
        read_checkpoint(tmp_path / "old.pt")
    torch.save({k: v for k, v in payload.items() if k != "config"}, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="bare.pt: .*no 'config'"):
        read_checkpoint(tmp_path / "bare.pt")
