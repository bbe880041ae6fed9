"""One training step and one evaluation pass: what ``fit``, evaluation and every benchmark run.

A benchmark that times "a training step" times this one (forward under the run's
autocast, the paper's loss at the scheduled derivative weights, the E0 term, gradient
clipping, the optimiser step), so its figures are the trainer's, not a look-alike's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from xane3.config import TrainConfig
from xane3.objective import combine
from xane3.train.accel import autocast, to_device
from xane3.train.loss import e0_term, loss_terms, mean_of

_SUMMED = ("spectrum", "gradient", "curvature", "e0")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def _terms(model, out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]):
    """(sum, count) per term of one batch; E0 only where the model and the targets have one."""
    terms = loss_terms(out["spectrum"].float(), tgt["spectrum"], tgt["mask"])
    if "e0" in out and "e0" in tgt:
        terms["e0"] = e0_term(out["e0"].float(), tgt["e0"], model.e0_mean, model.e0_std)
    return terms


def train_step(model, batch, tgt: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
               t: TrainConfig, device: torch.device, factor: float = 1.0,
               forward: Callable | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimiser step; ``factor`` scales the derivative weights (the ramp). Returns the
    detached loss and per-term means. Batches must already be on ``device``."""
    forward = forward or model
    model.train()
    with autocast(device, t.amp):
        out = forward(batch)
    terms = {k: mean_of(v) for k, v in _terms(model, out, tgt).items()}
    loss = combine(terms, factor * t.lambda_grad, factor * t.lambda_curv, t.lambda_e0)
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"training loss became {float(loss.detach())} "
                               f"(lr={opt.param_groups[0]['lr']:.2e})")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if t.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    opt.step()
    return loss.detach(), {k: v.detach() for k, v in terms.items()}


def eval_sums(model, batches: Iterable[Any], device: torch.device, amp: bool,
              forward: Callable | None = None) -> dict[str, list[float]]:
    """Exact dataset-level [sum, count] per term over ``(batch, tgt, ...)`` items (E0 in eV)."""
    forward = forward or model
    model.eval()
    sums = {k: [0.0, 0.0] for k in _SUMMED}
    with torch.no_grad():
        for batch, tgt, *_ in batches:
            batch, tgt = to_device(batch, tgt, device)
            with autocast(device, amp):
                out = forward(batch)
            for k, (s, n) in _terms(model, out, tgt).items():
                scale = float(model.e0_std) if k == "e0" else 1.0  # z-score back to eV
                sums[k][0] += float(s) * scale
                sums[k][1] += float(n)
    return sums
