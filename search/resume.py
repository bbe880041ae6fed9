"""What a ``search.run --resume`` command line may say: the experiment runs what it started
with (``experiment.json``), so an option given again must agree with it. One that differs is
refused, not silently overruled: a user who typed ``--trials 64`` to extend a search would
otherwise get the old 16 and not know it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from search.runner import Experiment
from xane3.config import Config, with_overrides


def journal_path(spec: str | None) -> str | None:
    """A journal file ``--storage`` made absolute (URLs as given), so ``--resume`` from another
    folder opens the same study, not a new empty journal there."""
    return spec if not spec or "://" in spec or spec.startswith("sqlite") else str(Path(spec).resolve())


def _path(value: Any) -> str:
    return str(Path(str(value)).expanduser().resolve())


def as_stored(value: Any) -> Any:
    """``value`` as experiment.json holds it (tuples as lists, paths as strings), to compare."""
    return json.loads(json.dumps(value, default=str))


_UNSET = {"data": "the embedded data set", "storage": "the folder's own journal",
          "preset": "no preset"}


def conflicts(exp: Experiment, given: dict[str, Any], base_of: Callable[[dict], dict] | None = None) -> list[str]:
    """``option (started with ...)`` for every option in ``given`` (the ones on the command
    line; its ``extra``, the --set/--experiment overrides) that differs from the experiment.
    ``base_of(extra)``: the base a new run of this command line would store (``base_overrides``:
    --seed, --epochs and --data win over --set), compared key by key as the config types them,
    so ``--set model.m0=8`` matches a stored 8 and ``lr=5e-4`` a stored 0.0005."""
    started = {"space": exp.space, "trials": exp.trials, "max_epochs": exp.max_epochs,
               "scheduler": exp.scheduler, "seed": exp.seed, "preset": exp.preset,
               "wandb": exp.wandb, "storage": exp.storage, "results_dir": exp.results_dir,
               "data": exp.base.get("data.db")}
    norm = {"storage": journal_path, "results_dir": _path, "data": _path}
    out = []
    for key, value in given.items():
        if key in started:
            asked = norm.get(key, lambda v: v)(value)
            if as_stored(asked) != as_stored(started[key]):
                was = started[key] if started[key] is not None else _UNSET.get(key, "none")
                out.append(f"--{key.replace('_', '-')} {asked} (started with {was})")
    extra = given.get("extra") or {}
    return out + set_conflicts(exp.base, base_of(extra) if base_of and extra else extra, extra)


def set_conflicts(started: dict[str, Any], asked: dict[str, Any],
                  keys: Iterable[str] | None = None) -> list[str]:
    """``key=value (started with ...)`` for each key of ``keys`` (default: all of ``asked``,
    the overrides a new run would store) whose typed value differs from the experiment's
    stored base (``started``); keys left out are no conflict: the experiment keeps its own."""
    if not asked:
        return []
    now = with_overrides(Config(), asked).flat()
    was = with_overrides(Config(), started).flat()
    return [f"{k}={now[k]} (started with {was[k]})" for k in (asked if keys is None else keys)
            if as_stored(now[k]) != as_stored(was[k])]


def check(exp: Experiment, given: dict[str, Any], base_of: Callable[[dict], dict] | None = None) -> None:
    differs = conflicts(exp, given, base_of)
    if differs:
        raise ValueError(f"--resume {exp.name}: the experiment runs what it started with, and this "
                         f"command line asks otherwise: {'; '.join(differs)}. Drop those options "
                         "(--name and --resume are enough), or start a new --name")
