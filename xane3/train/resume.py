"""``--resume``: continue a run from its ``last.pt``, or extend it by more epochs.

A resumed run must be the run that was stopped (same data, same config), or its
numbers would mix two experiments. The one exception is ``train.epochs``: training a
converging run longer is what a user resumes for (issue 14's public-set model), and the
epochs already run are unchanged by it. Fractional ramp settings are then fractions of
the new total for the epochs still to run; the epochs run keep their logged factors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from xane3.config import Config
from xane3.model import XANE3
from xane3.train.checkpoint import load_state, read_checkpoint
from xane3.train.optim import restore_rng
from xane3.train.warmstart import same_split

# may differ between the checkpoint and the resumed run: how long, and where, it goes on training
EXTENDABLE = ("train.epochs", "train.patience", "train.device", "train.num_threads")


def restore_run(last: Path, cfg: Config, data_hash: str, model: XANE3, opt: torch.optim.Optimizer,
                sched: Any, splits: dict[str, list[int]]) -> dict[str, Any]:
    """Load weights, optimiser and scheduler moments and RNG from ``last``; return the loop state
    and, under ``"warm"``, the run's warm-start record (``init_*``) to keep saving and, under
    ``"ema"``, its weight average (None without one)."""
    payload = read_checkpoint(last, "cpu")  # load_state_dict moves weights and moments
    meta = payload["meta"]
    # the config first: a changed data.subset or data.split_seed also changes the data or the
    # split below, and the field that did it is what the user needs to hear
    old, new = payload["config"].flat(), cfg.flat()
    diff = {k: (old[k], new.get(k)) for k in sorted(old) if old[k] != new.get(k)}
    fixed = {k: v for k, v in diff.items() if k not in EXTENDABLE}
    if fixed:
        said = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in fixed.items())
        raise ValueError(f"{last}: checkpoint config differs from this run's ({said}); cannot resume "
                         f"(only {', '.join(EXTENDABLE)} may change)")
    if meta.get("data_hash") != data_hash:
        raise ValueError(f"{last}: checkpoint was trained on other data "
                         f"(hash {meta.get('data_hash')} != {data_hash}); cannot resume")
    if "splits" in meta and not same_split(meta["splits"], splits):
        raise ValueError(f"{last}: the data split differently than when it was trained (the "
                         "structures changed while the spectra did not?), so resuming would train on "
                         "its validation or test spectra; cannot resume")
    done = meta["epoch"]
    if "train.epochs" in diff:
        before, after = diff["train.epochs"]
        if after < done:
            raise ValueError(f"{last}: {done} epochs already run; train.epochs={after} cannot resume it")
        print(f"{last}: extending the run from {before} to {after} epochs ({done} done)", file=sys.stderr)
    load_state(model, payload["model"], str(last))
    opt.load_state_dict(payload["optimizer"])
    restore_rng(payload)  # dropout continues where it left off
    sched.load_state_dict(payload["scheduler"])
    keys = ("epoch", "best", "best_epoch", "bad_epochs", "history")
    # best_total is new (2026-12); before it, selection was on the total, so it equals best
    return {**{k: meta[k] for k in keys}, "best_total": meta.get("best_total", meta["best"]),
            "warm": {k: v for k, v in meta.items() if k.startswith("init_")},
            "ema": payload.get("ema")}
