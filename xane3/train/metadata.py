"""What a checkpoint tells its consumers, in one typed record (nequip's model_metadata idea).

Every reader of a trained model (prediction, evaluation, ensembles, calibration, the
benchmarks) asks this record, never the raw checkpoint dict: the absorbing element,
the energy grid and axis, the normalisation, whether the E0 head was trained, the
data hash and split, the elements and neighbour counts seen in training. Checkpoints
written before a field existed get what their config and weights imply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xane3.config import DEFAULT_ABSORBER_Z, Config, DataConfig

RUN_KEYS = ("n_train", "epoch", "best", "best_epoch", "best_total", "bad_epochs", "history", "device",
            "init_from", "init_epochs", "init_best_epoch")


@dataclass(frozen=True)
class ModelMetadata:
    config: Config  # the full config the model was trained with
    absorber_z: int = DEFAULT_ABSORBER_Z
    energy: tuple[float, ...] = ()  # the prediction grid (eV; relative to E0 or absolute)
    e0_trained: bool = False  # the E0 head was fitted to known E0s
    data_hash: str | None = None
    dataset: str | None = None
    splits: dict[str, list[int]] = field(default_factory=dict)
    elements: frozenset[int] | None = None  # Z seen in the training structures
    absorber_neighbours: tuple[int, int] | None = None  # [min, max] atoms within r_max
    run: dict[str, Any] = field(default_factory=dict)  # epochs, best, history, warm start

    @property
    def energy_axis(self) -> str:
        return self.config.data.energy_axis

    @property
    def normalization(self) -> str:
        return self.config.data.normalization

    def to_meta(self) -> dict[str, Any]:
        """The JSON the checkpoint stores (the config is stored beside it)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("config", "run")}
        d["energy"] = list(self.energy)
        d["elements"] = sorted(self.elements) if self.elements is not None else None
        d["absorber_neighbours"] = list(self.absorber_neighbours) if self.absorber_neighbours else []
        return {**d, **self.run}

    @classmethod
    def from_meta(cls, meta: dict[str, Any], config: Config, model=None) -> ModelMetadata:
        """Read a checkpoint's JSON; ``model`` (its weights) answers for old checkpoints."""
        grid = meta.get("energy")
        if grid is None:
            grid = (model.energy.tolist() if model is not None else
                    np.linspace(config.data.e_min, config.data.e_max, config.data.n_points).tolist())
        trained = meta.get("e0_trained")
        if trained is None:  # before the field: E0 statistics left at mean 0, std 1 = never fitted
            trained = bool(model is not None and model.e0_head is not None
                           and not (float(model.e0_mean) == 0.0 and float(model.e0_std) == 1.0))
        nb = meta.get("absorber_neighbours") or []
        return cls(config, int(meta.get("absorber_z", DEFAULT_ABSORBER_Z)),
                   tuple(float(e) for e in grid), bool(trained), meta.get("data_hash"),
                   meta.get("dataset"), dict(meta.get("splits") or {}),
                   frozenset(int(z) for z in meta["elements"]) if meta.get("elements") else None,
                   (int(nb[0]), int(nb[1])) if len(nb) == 2 else None,
                   {k: meta[k] for k in RUN_KEYS if k in meta})


def metadata_of(model) -> ModelMetadata:
    """The model's record: the one ``load_checkpoint`` attached, or, for a model built in
    memory, what its config and weights imply (trained for Fe, nothing else recorded)."""
    if getattr(model, "metadata", None) is not None:
        return model.metadata
    mc = model.config  # its data section: the axis and cutoff the model was built for
    data = DataConfig(e_min=mc.e_min, e_max=mc.e_max, n_points=mc.n_points, r_max=mc.r_max)
    return ModelMetadata.from_meta({}, Config(data=data, model=mc), model)
