"""Config values: one meaning whether they come from --set, JSON or YAML; nonsense fails by name."""

from __future__ import annotations

import json

import pytest

from xane3.config import Config, with_overrides


@pytest.mark.parametrize("key,value", [("data.e_min", "nan"), ("data.r_max", float("inf")),
                                       ("model.basis_widths", "0.1,inf"), ("model.m0", 16.5),
                                       ("train.epochs", 10.7), ("model.m0", True)])
def test_non_finite_and_fractional_values_are_refused(key, value) -> None:
    with pytest.raises(ValueError, match=key):
        with_overrides(Config(), {key: value})


def test_whole_number_floats_from_json_are_ints(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"m0": 16.0}, "data": {"split_seed": 1.0, "subset": 30.0}}))
    cfg = Config.load(path)
    assert (cfg.model.m0, cfg.data.split_seed, cfg.data.subset) == (16, 1, 30)
    assert all(isinstance(x, int) for x in (cfg.model.m0, cfg.data.split_seed, cfg.data.subset))
    path.write_text('{"data": {"e_max": Infinity}}')
    with pytest.raises(ValueError, match=f"{path}.*data.e_max"):
        Config.load(path)
