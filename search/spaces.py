"""Named Optuna search spaces, declared in one place.

A space is a list of parameter declarations plus a define-by-run function, so
conditionals work (m1, m2 exist only when the model keeps tensorial features)
and ``--help`` can list every parameter without sampling. A sample is an override
dict for :func:`xane3.config.with_overrides`, exactly like an ablation spec.

Optuna parameter names are the config keys they set, except ``basis.learn``
(which basis parameters are trained), which maps onto two boolean config keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Overrides = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """One searched parameter: categorical (``choices``), int or float range."""

    name: str
    kind: str  # categorical | int | float
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    when: str = ""  # human-readable condition, shown by --help

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        if self.kind == "categorical":
            rng = "{" + ", ".join(str(c) for c in self.choices) + "}"
        else:
            rng = f"{self.kind} [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")
        return f"{self.name} {rng}" + (f"  (only if {self.when})" if self.when else "")


@dataclass(frozen=True)
class Space:
    name: str
    doc: str
    params: tuple[Param, ...]
    sample: Callable[[Any, dict[str, Param]], Overrides] = field(repr=False)

    def __call__(self, trial: Any) -> Overrides:
        return self.sample(trial, {p.name: p for p in self.params})

    def keys(self, samples: int = 64) -> set[str]:
        """Every config key some sample of this space sets (all conditional branches)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        out: set[str] = set()
        for _ in range(samples):
            trial = study.ask()
            out |= set(self(trial))
            study.tell(trial, 0.0)
        return out


# --- parameter declarations (shared between spaces) ---------------------------------
TENSORIAL = Param("model.tensorial", "categorical", (True, False))
M0 = Param("model.m0", "categorical", (16, 32, 48, 64))
M1 = Param("model.m1", "categorical", (4, 8, 16, 32), when="model.tensorial=True")
M2 = Param("model.m2", "categorical", (0, 4, 8, 16), when="model.tensorial=True")
LAYERS = Param("model.num_layers", "int", low=2, high=6)
LR = Param("train.lr", "float", low=1e-4, high=1e-2, log=True)
BASIS_LEARN = Param("basis.learn", "categorical", ("centers", "widths", "both"))
N_GAUSS = Param("model.n_gaussians", "categorical", (50, 100, 200, 300))  # multiples of 5 widths
WEIGHT_DECAY = Param("train.weight_decay", "float", low=1e-5, high=1e-1, log=True)
BATCH = Param("train.batch_size", "categorical", (8, 16, 32))
LAMBDA_GRAD = Param("train.lambda_grad", "float", low=10.0, high=500.0, log=True)
LAMBDA_CURV = Param("train.lambda_curv", "float", low=10.0, high=500.0, log=True)
RAMP_START = Param("train.ramp_start", "float", low=0.0, high=0.5)  # fractions of the run
RAMP_EPOCHS = Param("train.ramp_epochs", "float", low=0.05, high=0.5)
RADIAL = Param("model.radial_basis", "categorical", ("bessel", "gaussian"))
NUM_RADIAL = Param("model.num_radial", "categorical", (8, 16, 32))
DROPOUT = Param("model.dropout", "float", low=0.0, high=0.2)
CENTERS_INIT = Param("model.centers_init", "categorical", ("uniform", "physics"))


def _irreps_basis(trial: Any, p: dict[str, Param]) -> Overrides:
    o: Overrides = {"model.tensorial": p["model.tensorial"].suggest(trial)}
    o["model.m0"] = p["model.m0"].suggest(trial)
    if o["model.tensorial"]:
        o["model.m1"] = p["model.m1"].suggest(trial)
        o["model.m2"] = p["model.m2"].suggest(trial)
    else:  # recorded as 0 so tables and plots show what the model really had
        o["model.m1"] = o["model.m2"] = 0
    o["model.num_layers"] = p["model.num_layers"].suggest(trial)
    o["train.lr"] = p["train.lr"].suggest(trial)
    learn = p["basis.learn"].suggest(trial)
    o["model.learn_centers"] = learn in ("centers", "both")
    o["model.learn_widths"] = learn in ("widths", "both")
    o["model.n_gaussians"] = p["model.n_gaussians"].suggest(trial)
    return o


def _optim(trial: Any, p: dict[str, Param]) -> Overrides:
    return {name: p[name].suggest(trial) for name in (
        "train.lr", "train.weight_decay", "train.batch_size", "train.lambda_grad",
        "train.lambda_curv", "train.ramp_start", "train.ramp_epochs")}


def _full(trial: Any, p: dict[str, Param]) -> Overrides:
    o = _irreps_basis(trial, p)
    o.update(_optim(trial, p))  # train.lr is suggested once: Optuna returns the same value
    for name in ("model.radial_basis", "model.num_radial", "model.dropout", "model.centers_init"):
        o[name] = p[name].suggest(trial)
    return o


# a small space for public-benchmark runs (benchmarks.xanesnet): learning rate, width, basis
# size. Width is m0 with m1 = m0/2 and m2 = m0/4 (the default irreps' ratio), so the preset's
# own model (cpu: 16/8/4, paper: 32/16/8) is a point of the space and can be enqueued.
LR_SMALL = Param("train.lr", "float", low=3e-4, high=3e-3, log=True)
WIDTH_CPU = Param("model.m0", "categorical", (8, 16, 24))
WIDTH_GPU = Param("model.m0", "categorical", (16, 32, 48, 64))
N_GAUSS_SMALL = Param("model.n_gaussians", "categorical", (50, 100, 200))
N_GAUSS_GPU = Param("model.n_gaussians", "categorical", (100, 200, 300))


def _width_lr_basis(trial: Any, p: dict[str, Param]) -> Overrides:
    m0 = p["model.m0"].suggest(trial)
    return {"train.lr": p["train.lr"].suggest(trial), "model.m0": m0, "model.m1": m0 // 2,
            "model.m2": m0 // 4, "model.n_gaussians": p["model.n_gaussians"].suggest(trial)}


# molecules (benchmarks.xanesnet --preset full): one absorber per molecule, so every
# spectrum costs a backbone pass; sized for a 2-core CPU. The paper's fully connected TP
# (~8x slower a step than channel-wise at the cpu width, benchmarks.molecules) is searched
# at the narrow widths only, or one trial would outlast the whole budget.
TP_KIND = Param("model.tensor_product", "categorical", ("channelwise", "full"))
M0_MOL = Param("model.m0", "categorical", (16, 32, 48))
M1_MOL = Param("model.m1", "categorical", (8, 16))
M2_MOL = Param("model.m2", "categorical", (0, 4, 8))
LAYERS_MOL = Param("model.num_layers", "int", low=2, high=4)
R_MAX = Param("data.r_max", "categorical", (4.0, 5.0))
WIDE_FULL_TP = {"model.m0": 16, "model.m1": 8, "model.m2": 4}  # full TP: the cpu preset's widths


def _molecules(trial: Any, p: dict[str, Param]) -> Overrides:
    o: Overrides = {"train.lr": p["train.lr"].suggest(trial)}
    learn = p["basis.learn"].suggest(trial)
    o["model.learn_centers"] = learn in ("centers", "both")
    o["model.learn_widths"] = learn in ("widths", "both")
    o["model.tensor_product"] = p["model.tensor_product"].suggest(trial)
    if o["model.tensor_product"] == "channelwise":
        for name in ("model.m0", "model.m1", "model.m2"):
            o[name] = p[name].suggest(trial)
    else:  # recorded, so the table shows what the model had
        o.update(WIDE_FULL_TP)
    o["model.num_layers"] = p["model.num_layers"].suggest(trial)
    o["data.r_max"] = p["data.r_max"].suggest(trial)
    return o


_IRREPS = (TENSORIAL, M0, M1, M2, LAYERS, LR, BASIS_LEARN, N_GAUSS)
_OPTIM = (LR, WEIGHT_DECAY, BATCH, LAMBDA_GRAD, LAMBDA_CURV, RAMP_START, RAMP_EPOCHS)

SPACES: dict[str, Space] = {
    s.name: s for s in (
        Space("irreps_basis", "irreps multiplicities, depth, learning rate and spectral basis",
              _IRREPS, _irreps_basis),
        Space("optim", "optimiser, batch size, derivative-loss weights and their annealing ramp",
              _OPTIM, _optim),
        Space("full", "irreps_basis + optim + radial basis, dropout and centre initialisation",
              _IRREPS + tuple(q for q in _OPTIM if q is not LR)
              + (RADIAL, NUM_RADIAL, DROPOUT, CENTERS_INIT), _full),
        Space("width_lr_small", "learning rate, width (m0; m1 = m0/2, m2 = m0/4) and number of "
              "Gaussians, sized for a 2-core CPU", (LR_SMALL, WIDTH_CPU, N_GAUSS_SMALL), _width_lr_basis),
        Space("width_lr", "learning rate, width (m0; m1 = m0/2, m2 = m0/4) and number of Gaussians, "
              "around the paper's model", (LR, WIDTH_GPU, N_GAUSS_GPU), _width_lr_basis),
        Space("molecules", "molecules on a 2-core CPU: learning rate, basis learning, tensor-product "
              "kind, channels (full TP: the cpu preset's 16/8/4 only), layers and r_max",
              (LR_SMALL, BASIS_LEARN, TP_KIND,
               dataclasses.replace(M0_MOL, when="model.tensor_product=channelwise"),
               dataclasses.replace(M1_MOL, when="model.tensor_product=channelwise"),
               dataclasses.replace(M2_MOL, when="model.tensor_product=channelwise"),
               LAYERS_MOL, R_MAX), _molecules),
    )
}


def get_space(name: str) -> Space:
    if name not in SPACES:
        raise KeyError(f"unknown search space {name!r}; known: {', '.join(SPACES)}")
    return SPACES[name]


def describe_spaces() -> str:
    """The text ``--help`` shows: every space and its parameters."""
    lines = ["search spaces (--space):"]
    for s in SPACES.values():
        lines.append(f"  {s.name}: {s.doc}")
        lines.extend(f"      {p.describe()}" for p in s.params)
    lines.append("  basis.learn sets model.learn_centers / model.learn_widths "
                 "(centers | widths | both).")
    return "\n".join(lines)
