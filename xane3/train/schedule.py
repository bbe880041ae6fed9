"""Derivative-weight annealing: off until ``start``, then a linear ramp to 1.

Start and length are epochs (>= 1) or fractions of the run (< 1), so a 10-epoch
smoke run exercises the same schedule the paper's 150-epoch run does.
"""

from __future__ import annotations

import warnings
from typing import Any


def _epochs(value: float, total: int) -> float:
    # rounded so that 0.28 x 25 is epoch 7, not 7.000000000000001 (which would start a step late)
    return round(value * total, 9) if 0 < value < 1 else value


def derivative_factor(epoch: int, start: float, ramp: float, total_epochs: int) -> float:
    """Weight multiplier in [0, 1] for 0-based ``epoch``."""
    s, r = _epochs(start, total_epochs), _epochs(ramp, total_epochs)
    if epoch < s:
        return 0.0
    if r <= 0:
        return 1.0
    return min(1.0, (epoch - s + 1) / r)


def warn_unfinished_ramp(t: Any) -> None:
    """A run whose ramp has not reached full weight by its last epoch trains less (or none) of the
    derivative loss that its validation total, and so best.pt and early stopping, weigh in full."""
    if not (t.lambda_grad or t.lambda_curv):
        return
    last = derivative_factor(t.epochs - 1, t.ramp_start, t.ramp_epochs, t.epochs)
    if last < 1:
        full = next(e for e in range(t.epochs, 100 * t.epochs + 10 ** 4)
                    if derivative_factor(e, t.ramp_start, t.ramp_epochs, t.epochs) >= 1)
        warnings.warn(f"train.ramp_start={t.ramp_start:g} and train.ramp_epochs={t.ramp_epochs:g} reach "
                      f"the full derivative weights from epoch {full + 1}, but train.epochs={t.epochs}: "
                      f"its last epoch trains them at {last:.2f} of lambda_grad/lambda_curv, while "
                      "best.pt is chosen on a total that weighs them in full (ramp values below 1 are "
                      "fractions of the run)", stacklevel=3)
