"""Named presets and model variants: plain override dicts for :func:`xane3.config.with_overrides`."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # the paper's training setup (the defaults)
    "paper": {},
    # a reduced model that trains on the embedded set on a 2-core CPU in minutes
    "cpu": {
        "model.m0": 16, "model.m1": 8, "model.m2": 4, "model.num_layers": 3,
        "model.radial_hidden": 32, "model.readout_hidden": 128, "model.n_gaussians": 100,
        "train.epochs": 20, "train.ramp_start": 0.3, "train.ramp_epochs": 0.3,
        "train.patience": 10, "train.plateau_patience": 4,
    },
    # a tiny model for tests and smoke runs: minutes on a laptop CPU
    "tiny": {
        "model.m0": 8, "model.m1": 4, "model.m2": 2, "model.num_layers": 2,
        "model.radial_hidden": 16, "model.readout_hidden": 32, "model.attention_hidden": 16,
        "model.e0_hidden": 16, "model.n_gaussians": 50, "train.epochs": 4, "data.r_max": 4.0,
        "train.ramp_start": 0.25, "train.ramp_epochs": 0.5, "train.batch_size": 16,
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def variant(name: str) -> dict[str, Any]:
    """Named model variants: overrides over the default config."""
    variants = {
        "default": {},
        "scalar_only": {"model.tensorial": False, "model.m0": 63},
    }
    if name not in variants:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(variants)}")
    return variants[name]
