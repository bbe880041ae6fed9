"""One tree of dataclass configs: data, model, training.

Every choice the paper ablates is a field here, so an ablation or a search-space sample
is an override dict (``{"model.layer_norm": False}``) applied with :func:`with_overrides`,
never a code fork. Unknown keys are errors: a typo must never silently run the baseline.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from xane3.atomic import write_text_atomic
from xane3.coerce import coerce


class ConfigKeyError(KeyError):
    """An unknown or unsettable key. A KeyError (callers catch it as one) whose text is the
    message itself: a plain KeyError prints its repr, quotes and all."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class DataConfig:
    """Where spectra come from and how they become graphs and targets."""

    db: str | None = None  # an ASE DB from ``xane3.data ingest``; None = embedded set
    e_min: float = -30.0  # energy grid relative to E0 (eV)
    e_max: float = 100.0
    n_points: int = 150
    r_max: float = 5.0  # neighbour cutoff (Å)
    split: str = "random"  # random | structure | parent | facet | phase (xane3.data.splits)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    subset: int | None = None  # keep only this many spectra (quick runs)
    normalization: str = "edge_step"  # edge_step | none (raw intensities)
    energy_axis: str = "relative"  # relative (to E0) | absolute

    def __post_init__(self) -> None:
        _choice("data.split", self.split, ("random", "structure", "parent", "facet", "phase"))
        _choice("data.normalization", self.normalization, ("edge_step", "none"))
        _choice("data.energy_axis", self.energy_axis, ("relative", "absolute"))
        if self.n_points < 3 or self.e_max <= self.e_min:
            raise ValueError("data grid needs n_points >= 3 and e_max > e_min")
        if not self.r_max > 0:
            raise ValueError(f"data.r_max={self.r_max}: expected > 0 Å")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError(f"data.val_fraction={self.val_fraction}, data.test_fraction="
                             f"{self.test_fraction}: each in [0, 1), together < 1")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"data.subset={self.subset}: expected None or >= 1")


@dataclass
class ModelConfig:
    """XANE(3) architecture (paper section 2.2); defaults give ~1.19 M parameters."""

    m0: int = 32  # scalar channels (0e)
    m1: int = 16  # vector channels (1o)
    m2: int = 8  # rank-2 channels (2e)
    tensorial: bool = True  # False: scalars only (m1 = m2 = 0), the scalar_only variant
    num_layers: int = 4
    l_max: int = 2  # spherical harmonics of edge directions
    num_radial: int = 16
    radial_basis: str = "bessel"  # bessel | gaussian (both x cosine cutoff)
    radial_hidden: int = 64
    layer_norm: bool = True  # custom equivariant LayerNorm after aggregation
    residual: str = "gated"  # gated (adaptive) | plain | none
    pooling: str = "attention"  # attention (absorber query) | mean
    attention_hidden: int = 64
    readout_hidden: int = 256
    dropout: float = 0.01
    # spectral basis (2.2.4)
    n_gaussians: int = 200
    basis_widths: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 4.0)
    learn_centers: bool = True
    learn_widths: bool = False
    # physics: centres denser ~15 eV above the edge, as the paper's public code drew them;
    # uniform centres leave the sharpest scale a comb of isolated peaks (session 3: test
    # curvature term 81e-3 vs 39-43e-3 with physics, ablations cpu preset, 280 spectra)
    centers_init: str = "physics"  # physics | uniform
    background: bool = True  # global sigmoid edge-step background
    # auxiliary E0 head on detached readout features (2.2.5)
    e0_head: bool = True
    e0_hidden: int = 64
    num_species: int = 119  # embedding rows, indexed by Z
    # kernels for the edge tensor product and self-connections: e3nn | cuequivariance
    # (pip install 'xane3[cuda]'); the weights are the same numbers either way
    backend: str = "e3nn"
    # edge tensor product: full (the paper's fully connected) | channelwise (a weight per path
    # and channel, then a per-node linear, as NequIP/MACE: ~10x fewer per-edge weights)
    tensor_product: str = "full"
    # the data's energy axis and cutoff: derived from data.* (DERIVED below), not settable
    r_max: float = 5.0
    e_min: float = -30.0
    e_max: float = 100.0
    n_points: int = 150

    def __post_init__(self) -> None:
        _choice("model.radial_basis", self.radial_basis, ("bessel", "gaussian"))
        _choice("model.residual", self.residual, ("gated", "plain", "none"))
        _choice("model.pooling", self.pooling, ("attention", "mean"))
        _choice("model.centers_init", self.centers_init, ("uniform", "physics"))
        _choice("model.backend", self.backend, ("e3nn", "cuequivariance"))
        _choice("model.tensor_product", self.tensor_product, ("full", "channelwise"))
        self.basis_widths = tuple(float(w) for w in self.basis_widths)
        if self.n_gaussians % len(self.basis_widths):
            raise ValueError(
                f"model.n_gaussians={self.n_gaussians} must be a multiple of the "
                f"{len(self.basis_widths)} basis widths"
            )
        if self.m0 < 1 or self.num_layers < 1:
            raise ValueError("model.m0 and model.num_layers must be >= 1")

    @property
    def hidden_irreps(self) -> str:
        parts = [f"{self.m0}x0e"]
        if self.tensorial:
            if self.m1:
                parts.append(f"{self.m1}x1o")
            if self.m2:
                parts.append(f"{self.m2}x2e")
        return "+".join(parts)


SELECT_ON = ("total", "spectrum")
DEFAULT_ABSORBER_Z = 26  # Fe: assumed wherever a record or checkpoint names no absorbing element


@dataclass
class TrainConfig:
    """Optimisation (paper 2.3-2.4 and the early public code's numbers)."""

    epochs: int = 150
    batch_size: int = 16  # spectra per batch
    lr: float = 1e-3
    weight_decay: float = 0.01
    lambda_grad: float = 150.0  # final weight of the first-difference MSE
    lambda_curv: float = 200.0  # final weight of the second-difference MSE
    lambda_e0: float = 0.1  # L1 on z-scored E0 (head is detached: no effect on spectra)
    # derivative-weight ramp: start and length in epochs (>= 1) or fractions of the run (< 1)
    ramp_start: float = 20.0
    ramp_epochs: float = 15.0
    grad_clip: float = 5.0
    patience: int = 20  # early stopping on the selection metric below
    # what best.pt, early stopping and the LR plateau watch on the validation split:
    # total (spectrum + fixed-weight derivative terms, the paper's) | spectrum (MSE alone)
    select_on: str = "total"
    plateau_patience: int = 10
    plateau_factor: float = 0.5
    min_lr: float = 1e-6
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batching: str = "structure"  # structure (backbone once per structure) | absorber
    amp: bool = False  # bf16 autocast (CUDA or CPU); loss and metrics stay float32
    compile: bool = False  # torch.compile the model; falls back to eager with a warning
    num_threads: int | None = None  # torch intra-op threads; None = leave as is
    # warm start: the weights of this checkpoint (same model config), a fresh optimiser;
    # the run keeps the checkpoint's split when the data are the same (xane3.train.warmstart)
    init_from: str | None = None
    # exponential moving average of the weights, per step (0 = off); the average is what is
    # validated, selected and saved as best (xane3.train.ema)
    ema_decay: float = 0.0
    max_steps_per_epoch: int | None = None  # cap for smoke runs

    def __post_init__(self) -> None:
        _choice("train.batching", self.batching, ("structure", "absorber"))
        _choice("train.select_on", self.select_on, SELECT_ON)
        _at_least("train", self, 1, "epochs", "batch_size", "patience", "plateau_patience")
        _at_least("train", self, 0, "weight_decay", "lambda_grad", "lambda_curv", "lambda_e0",
                  "ramp_start", "ramp_epochs", "grad_clip", "min_lr")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"train.ema_decay={self.ema_decay}: expected 0 (off) or a decay in (0, 1)")
        if not self.lr > 0 or not 0 < self.plateau_factor < 1:
            raise ValueError(f"train.lr={self.lr} must be > 0 and train.plateau_factor="
                             f"{self.plateau_factor} in (0, 1)")
        for name in ("max_steps_per_epoch", "num_threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)}: expected None or >= 1")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"train.device={self.device!r}: expected auto, cpu, cuda or cuda:N")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        cfg = cls()
        unknown = [sec for sec in d if sec not in {f.name for f in fields(cls)}]
        if unknown:  # an empty misspelt section ({"trian": {}}) would pass unread
            raise ConfigKeyError(f"unknown config section(s) {', '.join(map(repr, unknown))} "
                                 "(sections: data, model, train)")
        bad = [sec for sec, sub in d.items() if not isinstance(sub, dict)]
        if bad:
            raise ValueError(f"config section(s) {', '.join(map(repr, bad))} must be objects of "
                             "key: value (data, model, train)")
        flat = {f"{sec}.{k}": v for sec, sub in d.items() for k, v in sub.items()}
        return with_overrides(cfg, flat)

    def flat(self) -> dict[str, Any]:
        """``{"model.m0": 32, ...}``: the flat view search tables and W&B use."""
        return {f"{sec}.{k}": list(v) if isinstance(v, tuple) else v
                for sec, sub in self.to_dict().items() for k, v in sub.items()}

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Config:
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable JSON config ({exc})") from exc
        if not isinstance(d, dict):
            raise ValueError(f"{path}: a config must be a JSON object")
        try:
            return cls.from_dict(d)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc


def _at_least(section: str, obj: Any, low: float, *names: str) -> None:
    bad = [n for n in names if not getattr(obj, n) >= low]  # NaN fails too
    if bad:
        raise ValueError(f"{section}.{bad[0]}={getattr(obj, bad[0])}: expected >= {low}")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")


DERIVED = {f"model.{k}": f"data.{k}" for k in ("e_min", "e_max", "n_points", "r_max")}


def with_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """A new Config with dotted-key overrides applied; unknown keys raise KeyError."""
    sections = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    pending: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, value in overrides.items():
        sec, _, name = key.partition(".")
        if sec not in sections or not name:
            raise ConfigKeyError(f"unknown config key {key!r} (sections: {', '.join(sections)})")
        hints = get_type_hints(type(sections[sec]))
        if name not in hints:
            typed = name.translate(str.maketrans("ol", "01"))  # the letters o/l for digits 0/1
            near = [typed] if typed in hints else difflib.get_close_matches(name, list(hints), n=1, cutoff=0.5)
            hint = f"did you mean {sec}.{near[0]}? " if near else ""
            raise ConfigKeyError(f"unknown config key {key!r}; {hint}{sec} has: {', '.join(sorted(hints))}")
        pending[sec][name] = coerce(value, hints[name], key)
    out = Config(**{sec: dataclasses.replace(obj, **pending[sec]) if pending[sec] else obj
                    for sec, obj in sections.items()})
    # the model reads the data's energy axis and graph: derived, not settable (a --set
    # model.r_max=6 silently ran 5 A); the same value, as a saved config holds, passes
    derived = {k[6:]: getattr(out.data, k[6:]) for k in DERIVED}
    for key in set(overrides) & set(DERIVED):
        if pending["model"][key[6:]] != derived[key[6:]]:
            raise ConfigKeyError(f"{key} is derived from {DERIVED[key]} (the model reads the data's axis "
                           f"and graph); set {DERIVED[key]} instead")
    out.model = dataclasses.replace(out.model, **derived)
    return out
