"""Derivative-weight annealing: off until ``start``, then a linear ramp to 1.

Start and length are epochs (>= 1) or fractions of the run (< 1), so a 10-epoch
smoke run exercises the same schedule the paper's 150-epoch run does.
"""

from __future__ import annotations


def _epochs(value: float, total: int) -> float:
    return value * total if 0 < value < 1 else value


def derivative_factor(epoch: int, start: float, ramp: float, total_epochs: int) -> float:
    """Weight multiplier in [0, 1] for 0-based ``epoch``."""
    s, r = _epochs(start, total_epochs), _epochs(ramp, total_epochs)
    if epoch < s:
        return 0.0
    if r <= 0:
        return 1.0
    return min(1.0, (epoch - s + 1) / r)
