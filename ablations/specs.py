"""Ablation specs are data: ``specs/<name>.yaml`` holds a description and an override diff.

A new spec is a new YAML file, no code. Unknown keys (in the file or in its
overrides) are errors, never silent no-ops: an ablation that quietly runs the
baseline would be worse than none.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xane3.config import Config, with_overrides
from xane3.model import XANE3
from xane3.overlays import load_overlay, overlays

SPEC_DIR = Path(__file__).parent / "specs"
PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class SpecFields:
    """What a spec file holds beside the overlay's description and overrides."""

    paper_row: str | None = None
    capacity_matched: bool = False


@dataclass(frozen=True)
class RunPreset:
    """An ablation preset's own fields: seeds per spec, and whether capacity-matched specs
    re-pick m0 when the preset shrinks the widths."""

    seeds: int = 3
    rescale: bool = False
    config: str | None = None  # a saved config (repo-relative), e.g. a search's best: the base
    specs: list[str] | None = None  # the specs `all` means here (default: every spec)


@dataclass
class Spec:
    name: str
    description: str
    overrides: dict[str, Any]
    paper_row: str | None = None
    capacity_matched: bool = False
    source: Path | None = field(default=None, repr=False)


def load_spec(path: Path) -> Spec:
    """One spec file, through the one overlay loader (unknown fields and keys are errors)."""
    o = load_overlay(path, SpecFields)
    return Spec(o.name, o.description, o.overrides, o.extras.paper_row,
                bool(o.extras.capacity_matched), o.source)


def presets() -> dict[str, Any]:
    """``ablations/presets/*.yaml``: name -> Overlay (``extras`` a :class:`RunPreset`). A
    preset with ``config`` starts from that saved config's values (where they differ from the
    defaults, less where it ran: data.db, device, threads), then its own overrides."""
    out = {}
    for name, ov in overlays(PRESET_DIR, RunPreset).items():
        if ov.extras.config:
            path = Path(__file__).resolve().parents[1] / ov.extras.config
            try:
                saved = Config.load(path).flat()
            except (OSError, ValueError, KeyError) as exc:
                raise ValueError(f"{ov.source}: config {ov.extras.config}: {exc}") from exc
            default = Config().flat()
            base = {k: v for k, v in saved.items() if v != default[k]
                    and k not in ("data.db", "train.device", "train.num_threads", "train.seed")}
            ov = dataclasses.replace(ov, overrides={**base, **ov.overrides})
        out[name] = ov
    return out


def load_specs(spec_dir: Path = SPEC_DIR) -> dict[str, Spec]:
    """Every spec, baseline first, then alphabetical."""
    specs = {p.stem: load_spec(p) for p in sorted(spec_dir.glob("*.yaml"))}
    if "baseline" not in specs:
        raise ValueError(f"{spec_dir}: no baseline.yaml")
    return {"baseline": specs.pop("baseline"), **specs}


def count_parameters(cfg: Config) -> int:
    return XANE3(cfg.model).num_parameters()


def capacity_matched_m0(base: Config, overrides: dict[str, Any]) -> int:
    """The m0 whose parameter count is closest to the baseline's (for reduced presets)."""
    target = count_parameters(base)
    best, best_gap = 1, float("inf")
    lo, hi = 1, 4 * base.model.m0 + 64
    # parameter count grows monotonically with m0: bisect, then check neighbours
    while lo < hi:
        mid = (lo + hi) // 2
        n = count_parameters(with_overrides(base, {**overrides, "model.m0": mid}))
        lo, hi = (mid + 1, hi) if n < target else (lo, mid)
    for m0 in (lo - 1, lo):
        if m0 < 1:
            continue
        gap = abs(count_parameters(with_overrides(base, {**overrides, "model.m0": m0})) - target)
        if gap < best_gap:
            best, best_gap = m0, gap
    return best


def resolve(spec: Spec, preset_overrides: dict[str, Any], rescale_capacity: bool) -> dict[str, Any]:
    """Preset + spec diff; capacity-matched specs re-pick m0 when the preset shrinks widths."""
    merged = {**preset_overrides, **spec.overrides}
    if spec.capacity_matched and rescale_capacity:
        base = with_overrides(Config(), preset_overrides)
        merged["model.m0"] = capacity_matched_m0(base, {k: v for k, v in merged.items()
                                                        if k != "model.m0"})
    return merged
