"""Exponential moving average of the weights (``train.ema_decay``), as nequip and MACE keep.

Why: at a fixed learning rate the pretrained recipe's validation spectrum MSE swings by
~20 % from one epoch to the next (``docs/pretrained/run/metrics.parquet``): each epoch's
weights are one noisy point of the optimiser's walk, and their running average is a better
model than any of them. With ``ema_decay`` > 0 the average is what is validated, selected,
saved as ``best.pt`` and tested; the raw weights keep training and are saved in ``last.pt``
beside it, so ``--resume`` continues both. The decay is per optimiser step: 0.99 averages
over ~100 steps (~1.5 epochs of the embedded set at batch 16), 0.995 over ~200.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def make_ema(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """The averaged copy of ``model`` (None when ``decay`` is 0, i.e. off).

    Buffers are not averaged: the model's are constants (energy grid, E0 statistics,
    Wigner-3j tables, masks), copied as they are when the average starts.
    """
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


def scored(model: torch.nn.Module, ema: AveragedModel | None) -> torch.nn.Module:
    """The weights a run validates, selects and saves as best: the average when there is one."""
    return model if ema is None else ema.module


def ema_state(ema: AveragedModel | None) -> dict[str, Any]:
    """What ``last.pt`` carries for a resumed run: the average and its step count."""
    return {} if ema is None else {"ema": ema.state_dict()}


def restore_ema(ema: AveragedModel | None, saved: dict[str, Any] | None) -> None:
    """Continue the average saved in ``last.pt``; without one it starts afresh (its first
    update copies the weights)."""
    if ema is not None and saved is not None:
        ema.load_state_dict(saved)
