"""What a ``search.run --resume`` command line may say: the experiment runs what it started
with (``experiment.json``), so an option given again must agree with it. One that differs is
refused, not silently overruled: a user who typed ``--trials 64`` to extend a search would
otherwise get the old 16 and not know it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from search.runner import PATH_KEYS, Experiment


def journal_path(spec: str | None) -> str | None:
    """A journal file ``--storage`` made absolute (URLs as given), so ``--resume`` from another
    folder opens the same study, not a new empty journal there."""
    return spec if not spec or "://" in spec or spec.startswith("sqlite") else str(Path(spec).resolve())


def _path(value: Any) -> str:
    return str(Path(str(value)).expanduser().resolve())


def _plain(value: Any) -> Any:  # as experiment.json holds it
    return json.loads(json.dumps(value, default=str))


def conflicts(exp: Experiment, given: dict[str, Any]) -> list[str]:
    """``option: asked, started with`` for every option in ``given`` (the ones on the command
    line; ``extra`` the --set/--experiment overrides) that differs from the experiment."""
    started = {"space": exp.space, "trials": exp.trials, "max_epochs": exp.max_epochs,
               "scheduler": exp.scheduler, "seed": exp.seed, "preset": exp.preset,
               "wandb": exp.wandb, "storage": exp.storage, "results_dir": exp.results_dir,
               "data": exp.base.get("data.db")}
    norm = {"storage": journal_path, "results_dir": _path, "data": _path}
    out = []
    for key, value in given.items():
        if key in started:
            asked = norm.get(key, lambda v: v)(value)
            if _plain(asked) != _plain(started[key]):
                out.append(f"--{key.replace('_', '-')} {value} (started with {started[key]})")
    for key, value in (given.get("extra") or {}).items():
        asked = _path(value) if key in PATH_KEYS and value else value
        if _plain(asked) != _plain(exp.base.get(key)):
            out.append(f"{key}={value} (started with {exp.base.get(key, 'the default')})")
    return out


def check(exp: Experiment, given: dict[str, Any]) -> None:
    differs = conflicts(exp, given)
    if differs:
        raise ValueError(f"--resume {exp.name}: the experiment runs what it started with, and this "
                         f"command line asks otherwise: {'; '.join(differs)}. Drop those options "
                         "(--name and --resume are enough), or start a new --name")
