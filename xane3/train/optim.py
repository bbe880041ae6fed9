"""The optimiser and the random state a resumed run continues from.

AdamW's weight decay is for network weights. The spectral basis (centres, widths)
and the edge-step background (centre, width) are energies on the data's own axis:
decoupled decay pulls every one of them towards 0 eV by ``lr x weight_decay`` of
its value per step. On an absolute axis (XANESNET's 7097-7172 eV) that is ~0.07 eV
per step at the defaults, ~14 eV an epoch of 200 steps, far more than Adam's own
step (<= lr eV), so the basis slides off the grid and the training loss rises at a
constant learning rate (issue 14; ``tests/train/test_optim.py``). They are never decayed.
"""

from __future__ import annotations

from typing import Any

import torch

from xane3.config import TrainConfig

# parameter-name prefixes of the model's physical (energy-valued) parameters
NO_DECAY_PREFIXES = ("basis.", "background.")


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """[decayed network weights, undecayed basis/background energies] (empty groups dropped)."""
    decay, keep = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (keep if name.startswith(NO_DECAY_PREFIXES) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": keep, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameter_groups(model, t.weight_decay), lr=t.lr)


def rng_states() -> dict[str, torch.Tensor]:
    """CPU (and every CUDA device's) generator state, as CPU byte tensors."""
    out = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_rng"] = torch.stack(torch.cuda.get_rng_state_all())
    return out


def restore_rng(payload: dict[str, Any]) -> None:
    """Set the generators from a checkpoint, wherever ``torch.load`` mapped its tensors.

    ``torch.set_rng_state`` takes a CPU ByteTensor only; a checkpoint read with
    ``map_location="cuda"`` holds the state on the GPU, so it is brought back first.
    """
    if "rng" in payload:
        torch.set_rng_state(payload["rng"].to("cpu", torch.uint8))
    if "cuda_rng" in payload and torch.cuda.is_available():
        states = payload["cuda_rng"].to("cpu", torch.uint8)
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(list(states))
