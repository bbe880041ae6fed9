"""Warm start: seed a new Optuna study with an earlier study's finished trials, from its table.

Budget spent is never thrown away: each earlier trial becomes a COMPLETE trial of the new
study (no rerun) when it lies in the new space (the same or a wider one) and ran with the
same fixed settings. Its parameters are read back from the trial's full config
(``config_json``), so a key the earlier space did not draw counts at the value it had;
each is checked against the new space's distributions by running the space itself on a
trial that records what it is asked for.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd

from search.spaces import BASIS_LEARN, LEARN, Space
from xane3.config import Config, with_overrides

# where a trial ran, not what it was: never a reason to leave a trial out
IGNORED = {"train.device", "train.num_threads", "data.db", "train.seed"}
FINISHED = ("completed", "stopped_early")


class Outside(ValueError):
    """The earlier trial's value is not one the new space can draw."""


class RecordingTrial:
    """Answers a space's suggestions from a fixed config and records each distribution."""

    def __init__(self, flat: dict[str, Any]) -> None:
        self.flat = flat
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}

    def _value(self, name: str) -> Any:
        if name == BASIS_LEARN:
            pair = (self.flat["model.learn_centers"], self.flat["model.learn_widths"])
            names = [k for k, v in LEARN.items() if v == pair]
            if not names:
                raise Outside(f"{BASIS_LEARN}: learn_centers/widths {pair} is neither")
            return names[0]
        return self.flat[name]

    def _keep(self, name: str, value: Any, dist: Any) -> Any:
        if not dist._contains(dist.to_internal_repr(value)):
            raise Outside(f"{name}={value!r}")
        self.params[name], self.distributions[name] = value, dist
        return value

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        from optuna.distributions import CategoricalDistribution

        value = self._value(name)
        if value not in choices:
            raise Outside(f"{name}={value!r}")
        return self._keep(name, value, CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        from optuna.distributions import IntDistribution

        return self._keep(name, int(self._value(name)), IntDistribution(low, high, log=log))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        from optuna.distributions import FloatDistribution

        return self._keep(name, float(self._value(name)), FloatDistribution(low, high, log=log))


def as_trial(row: dict[str, Any], space: Space, base_flat: dict[str, Any], sampled: set[str],
             objectives: list[str]) -> tuple[dict, dict, list[float]]:
    """(params, distributions, values) of one earlier trial; Outside/ValueError says why not."""
    flat = Config.from_dict(json.loads(row["config_json"])).flat()
    fixed = sorted(k for k in base_flat if k not in sampled and k not in IGNORED
                   and _norm(flat.get(k)) != _norm(base_flat[k]))
    if fixed:
        raise ValueError("ran with other fixed settings: " + ", ".join(fixed))
    rec = RecordingTrial(flat)
    drawn = space(rec)
    off = sorted(k for k, v in drawn.items() if _norm(flat.get(k)) != _norm(v))  # derived/otherwise
    if off:
        raise Outside(", ".join(f"{k}={flat.get(k)!r}" for k in off))
    values = [row.get(o) for o in objectives]
    missing = [o for o, v in zip(objectives, values) if v is None or v != v]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    return rec.params, rec.distributions, [float(v) for v in values]


def _norm(v: Any) -> Any:
    return json.dumps(v, default=str)


def seed_study(storage: Any, study_name: str, space: Space, rows: pd.DataFrame,
               base: dict[str, Any], source: str) -> tuple[int, Counter]:
    """Add the usable earlier ``rows`` to the study; returns (added, reasons for the rest)."""
    import optuna

    objectives = list(space.objectives)
    kw: dict[str, Any] = ({"directions": ["minimize"] * len(objectives)} if len(objectives) > 1
                          else {"direction": "minimize"})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage, load_if_exists=True, **kw)
    base_flat = with_overrides(Config(), base).flat()
    sampled = space.keys()
    added, skipped = 0, Counter()
    for row in rows.to_dict("records"):
        if row.get("status") not in FINISHED or not row.get("config_json"):
            skipped["not finished"] += 1
            continue
        try:
            params, dists, values = as_trial(row, space, base_flat, sampled, objectives)
        except Outside as exc:
            skipped[f"outside this space ({exc})"] += 1
            continue
        except (ValueError, KeyError) as exc:
            skipped[str(exc)] += 1
            continue
        value = {"values": values} if len(values) > 1 else {"value": values[0]}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=dists, **value,
            user_attrs={"warm_start_from": f"{source}/{row['trial_id']}"}))
        added += 1
    return added, skipped
