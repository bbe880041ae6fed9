"""Overlays: every preset, experiment, ablation spec and benchmark target is a small YAML file.

One shape for all of them (lightning-hydra-template's experiment files, in our config tree)::

    description: a reduced model that trains on the embedded set on a 2-core CPU
    base: [cpu]              # optional: presets applied first (xane3/conf/preset)
    overrides:               # dotted config keys, checked against xane3.config
      model.m0: 16
    <kind-specific fields>   # e.g. seeds for an ablation preset; declared by a dataclass

One loader reads and checks them all: unknown fields, unknown config keys and bad values
are errors that name the file. The library's own live in ``xane3/conf/<kind>/<name>.yaml``
(``preset``: model and training size; ``experiment``: a data set's axis and selection);
the drivers keep theirs beside them (``ablations/specs``, ``ablations/presets``,
``benchmarks/xanesnet_presets``). Composition is a dict merge, later wins:
``--preset cpu --experiment xanesnet --set train.lr=5e-4``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xane3.config import Config, ConfigKeyError, with_overrides

CONF_DIR = Path(__file__).parent / "conf"
_COMMON = ("description", "base", "overrides")
# an ablation spec's own fields (ablations/specs.py SpecFields): the one other kind the README lets
# stand as an experiment file. Only these pass unread; any other field is a typo whose overrides
# would be dropped (tests/test_overlays.py keeps this list equal to SpecFields)
SPEC_FIELDS = ("paper_row", "capacity_matched")


@dataclass(frozen=True)
class Overlay:
    name: str
    description: str
    overrides: dict[str, Any]  # the base presets' first, then the file's own
    extras: Any = None  # the kind's dataclass instance, when it declares one
    source: Path | None = None


def load_overlay(path: str | Path, extras: type | None = None, foreign_ok: bool = False) -> Overlay:
    """Read and check one overlay file; ``extras``: a dataclass of the kind's own fields.

    ``foreign_ok``: an ablation spec's fields (:data:`SPEC_FIELDS`) pass unread (a spec used as
    an experiment keeps its ``paper_row``); any other unknown field is still an error.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: unreadable overlay ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: an overlay must be a mapping ({', '.join(_COMMON)}, ...)")
    own = [f.name for f in dataclasses.fields(extras)] if extras else []
    allowed = [*_COMMON, *own, *(SPEC_FIELDS if foreign_ok else ())]
    unknown = sorted(set(raw) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(map(repr, unknown))}; allowed: "
                         f"{', '.join(sorted(allowed))}")
    over = raw.get("overrides") or {}
    if not isinstance(over, dict):
        raise ValueError(f"{path}: 'overrides' must be a mapping of config keys")
    base = raw.get("base") or []
    base = [base] if isinstance(base, str) else base
    try:
        merged = {k: v for name in base for k, v in preset(name).items()}
        merged.update(over)
        with_overrides(Config(), merged)
        kind = extras(**{k: raw[k] for k in own if k in raw}) if extras else None
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Overlay(path.stem, str(raw.get("description", "")).strip(), merged, kind, path)


def overlays(directory: str | Path, extras: type | None = None) -> dict[str, Overlay]:
    """Every ``*.yaml`` in ``directory``, by name (sorted)."""
    return {p.stem: load_overlay(p, extras) for p in sorted(Path(directory).glob("*.yaml"))}


def find(directory: str | Path, name: str, what: str, extras: type | None = None) -> Overlay:
    """``name`` in ``directory``, or a path to a YAML file; a KeyError lists the known ones."""
    if name.endswith((".yaml", ".yml")):
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: no such {what} file")
        return load_overlay(name, extras, foreign_ok=extras is None)
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(Path(directory).glob("*.yaml")))
        raise ConfigKeyError(f"unknown {what} {name!r}; known: {known} (or a path to a .yaml overlay)")
    return load_overlay(path, extras)


@functools.cache
def _library(kind: str, name: str) -> Overlay:
    return find(CONF_DIR / kind, name, kind)


def preset(name: str) -> dict[str, Any]:
    """The overrides of ``xane3/conf/preset/<name>.yaml`` (a fresh dict)."""
    return dict(_library("preset", name).overrides)


def experiment(name: str) -> dict[str, Any]:
    """The overrides of ``xane3/conf/experiment/<name>.yaml``, or of a YAML overlay file."""
    if name.endswith((".yaml", ".yml")):
        return dict(find(CONF_DIR / "experiment", name, "experiment").overrides)
    return dict(_library("experiment", name).overrides)


def names(kind: str) -> list[str]:
    return [p.stem for p in sorted((CONF_DIR / kind).glob("*.yaml"))]


def listing(kind: str, directory: str | Path | None = None, extras: type | None = None) -> str:
    """``name (description); ...`` for ``--help``."""
    d = Path(directory) if directory else CONF_DIR / kind
    return "; ".join(f"{o.name} ({o.description.splitlines()[0] if o.description else ''})"
                     for o in overlays(d, extras).values())


def compose(preset_name: str | None = None, experiment_name: str | None = None,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Preset, then experiment, then explicit overrides: the one order every command uses."""
    return {**(preset(preset_name) if preset_name else {}),
            **(experiment(experiment_name) if experiment_name else {}), **(overrides or {})}
