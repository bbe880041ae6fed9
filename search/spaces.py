"""Named Optuna search spaces: YAML files in ``search/conf/space``, read by the overlay loader.

A space is an overlay (``xane3.overlays``) whose own field ``params`` lists what a trial
draws, in order, each under the config key it sets (Optuna names the parameter the same)::

    model.m0: [16, 32, 48, 64]                       # a list: categorical
    model.num_layers: {int: [2, 6]}                  # int or float range, log: true optional
    model.m1: {choices: [4, 8], when: {model.tensorial: true}, otherwise: 0}
    model.m2: {divide: [model.m0, 4]}                # derived from a drawn key, not drawn

``when`` draws a parameter only where an earlier draw has the given value (``otherwise`` is
recorded elsewhere, so tables show what the model had); ``include`` puts other spaces'
parameters first, each drawn once; ``objectives`` (``search.objectives``) adds costs to
minimise beside the validation objective, making the search multi-objective. ``basis.learn`` (which basis parameters are trained:
centers | widths | both | neither) is the one name that is not a config key: it sets
``model.learn_centers`` and ``model.learn_widths`` (``neither``: both fixed). A sample is an override dict for
:func:`xane3.config.with_overrides`, exactly like an ablation spec; ``--help`` lists every
parameter without sampling.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.objectives import ACCURACY, check
from xane3.config import Config
from xane3.overlays import load_overlay

Overrides = dict[str, Any]
SPACE_DIR = Path(__file__).parent / "conf" / "space"
BASIS_LEARN = "basis.learn"  # -> model.learn_centers, model.learn_widths
LEARN = {"centers": (True, False), "widths": (False, True), "both": (True, True), "neither": (False, False)}
_RANGES = ("int", "float")


@dataclass(frozen=True)
class Param:
    """One parameter: categorical (``choices``), int or float range, or ``derive``d."""

    name: str
    kind: str  # categorical | int | float | derived
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    when: tuple[str, Any] | None = None  # (key, value): drawn only where that draw has value
    otherwise: Any = None  # recorded where ``when`` does not hold (None: nothing)
    derive: tuple[str, int] | None = None  # (key, d): the drawn key's value // d

    @property
    def drawn(self) -> bool:
        return self.kind != "derived"

    def applies(self, values: dict[str, Any]) -> bool:
        return self.when is None or values.get(self.when[0]) == self.when[1]

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        if self.kind == "derived":
            return f"{self.name} = {self.derive[0]} // {self.derive[1]}"
        if self.kind == "categorical":
            rng = "{" + ", ".join(str(c) for c in self.choices) + "}"
        else:
            rng = f"{self.kind} [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")
        cond = f"  (only if {self.when[0]}={self.when[1]}" if self.when else ""
        if cond and self.otherwise is not None:
            cond += f"; else {self.otherwise}"
        return f"{self.name} {rng}" + (cond + ")" if cond else "")


def parse_param(name: str, spec: Any) -> Param:
    """One ``params`` entry of a space file; a ValueError says what is wrong with it."""
    if name != BASIS_LEARN and name not in _config_keys():
        raise ValueError(f"parameter {name!r} is not a config key (or {BASIS_LEARN})")
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"{name}: expected a list of choices or a mapping, got {spec!r}")
    known = {"choices", "int", "float", "log", "when", "otherwise", "divide"}
    if set(spec) - known:
        raise ValueError(f"{name}: unknown field(s) {sorted(set(spec) - known)}; allowed: {sorted(known)}")
    kinds = [k for k in ("choices", *_RANGES, "divide") if k in spec]
    if len(kinds) != 1:
        raise ValueError(f"{name}: give exactly one of choices, int, float, divide (got {kinds})")
    when = spec.get("when")
    if when is not None and not (isinstance(when, dict) and len(when) == 1):
        raise ValueError(f"{name}: 'when' must be one {{key: value}}")
    when = next(iter(when.items())) if when else None
    kind = kinds[0]
    if kind == "divide":
        src, d = spec["divide"]
        return Param(name, "derived", derive=(str(src), int(d)))
    if kind == "choices":
        return Param(name, "categorical", tuple(spec["choices"]), when=when,
                     otherwise=spec.get("otherwise"))
    low, high = spec[kind]
    if not low <= high:
        raise ValueError(f"{name}: range [{low}, {high}] is empty")
    return Param(name, kind, low=float(low), high=float(high), log=bool(spec.get("log", False)),
                 when=when, otherwise=spec.get("otherwise"))


@dataclass(frozen=True)
class SpaceFields:
    """A space file's own fields (beside the overlay's description)."""

    params: dict[str, Any] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    objectives: list[str] = field(default_factory=list)  # search.objectives; default: accuracy only


@dataclass(frozen=True)
class Space:
    name: str
    doc: str
    params: tuple[Param, ...]
    objectives: tuple[str, ...] = (ACCURACY,)  # several: a multi-objective study

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def __call__(self, trial: Any) -> Overrides:
        """One draw: the override dict of ``trial`` (define-by-run, in file order)."""
        o: Overrides = {}
        for p in self.params:
            if p.derive is not None:
                o[p.name] = o[p.derive[0]] // p.derive[1]
            elif p.applies(o):
                o[p.name] = p.suggest(trial)
            elif p.otherwise is not None:
                o[p.name] = p.otherwise
        if BASIS_LEARN in o:
            o["model.learn_centers"], o["model.learn_widths"] = LEARN[o.pop(BASIS_LEARN)]
        return o

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


SIZE_KEYS = ("model.m0", "model.m1", "model.m2", "model.num_layers", "model.n_gaussians",
             "model.num_radial", "model.radial_hidden", "model.readout_hidden")


def bounded(space: Space, base: Overrides, factor: int = 2) -> tuple[Space, list[str]]:
    """``space`` with each size it draws capped at ``factor`` x the value a reduced preset
    (``base``) sets: ``--preset tiny`` must not draw paper-size models that take 50x its epoch.
    Returns the space and one line per cap (none when ``base`` sets no size)."""
    params, notes = [], []
    for p in space.params:
        limit = base.get(p.name)
        if p.name not in SIZE_KEYS or limit is None or not p.drawn:
            params.append(p)
            continue
        cap = factor * int(limit)
        if p.kind == "categorical":
            keep = tuple(c for c in p.choices if c <= cap) or (min(p.choices),)
            if keep != p.choices:
                notes.append(f"{p.name} <= {max(keep)} (the space goes to {max(p.choices)})")
            p = dataclasses.replace(p, choices=keep)
        elif p.high > cap:
            notes.append(f"{p.name} <= {max(cap, int(p.low))} (the space goes to {p.high:g})")
            p = dataclasses.replace(p, high=float(max(cap, p.low)))
        params.append(p)
    return dataclasses.replace(space, params=tuple(params)), notes


def search_space(name: str, base: Overrides) -> Space:
    """The space a search with ``base`` (its preset and --set) draws from: see :func:`bounded`."""
    return bounded(get_space(name), base)[0]


@functools.cache
def _config_keys() -> frozenset[str]:
    return frozenset(Config().flat())


def load_space(path: str | Path, _seen: tuple[str, ...] = ()) -> Space:
    """Read and check one space file (and the spaces it includes)."""
    path = Path(path)
    ov = load_overlay(path, SpaceFields)
    if ov.overrides:
        raise ValueError(f"{path}: a search space draws its keys; fixed overrides belong in "
                         "--preset/--experiment/--set")
    if path.stem in _seen:
        raise ValueError(f"{path}: includes itself ({' -> '.join((*_seen, path.stem))})")
    params: dict[str, Param] = {}
    for inc in ov.extras.include:
        for p in load_space(path.parent / f"{inc}.yaml", (*_seen, path.stem)).params:
            params.setdefault(p.name, p)
    try:
        for name, spec in ov.extras.params.items():
            params[name] = parse_param(str(name), spec)
        for p in params.values():
            for ref in ((p.when or ("",))[0], (p.derive or ("",))[0]):
                if ref and ref not in params:
                    raise ValueError(f"{p.name} refers to {ref!r}, which the space does not draw")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Space(path.stem, ov.description, tuple(params.values()),
                 tuple(check(ov.extras.objectives, str(path))))


@functools.cache
def spaces() -> dict[str, Space]:
    return {p.stem: load_space(p) for p in sorted(SPACE_DIR.glob("*.yaml"))}


def get_space(name: str) -> Space:
    """A space by name (``search/conf/space/<name>.yaml``) or a path to a space file."""
    if name.endswith((".yaml", ".yml")):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such search space file")
        return load_space(name)
    if name not in spaces():
        raise KeyError(f"unknown search space {name!r}; known: {', '.join(spaces())} "
                       "(or a path to a space .yaml)")
    return spaces()[name]


def describe_spaces() -> str:
    """The text ``--help`` shows: every space and its parameters."""
    lines = ["search spaces (--space; search/conf/space/*.yaml, or a path to your own):"]
    for s in spaces().values():
        lines.append(f"  {s.name}: {s.doc}" + (f" [objectives: {', '.join(s.objectives)}]" if s.multi else ""))
        lines.extend(f"      {p.describe()}" for p in s.params)
    lines.append(f"  {BASIS_LEARN} sets model.learn_centers / model.learn_widths "
                 "(centers | widths | both | neither).")
    return "\n".join(lines)
