"""The one training objective, for tensors and floats alike (paper 2.3).

    total = spectrum MSE + lambda_grad * first-difference MSE + lambda_curv * second-difference MSE
            (+ lambda_e0 * E0 L1 while training)

Training (``xane3.train.loss``), validation, the search's ranking, the metrics summary and
Table 1 all take their total from here, so "total" means one thing. Dependency-free on
purpose: importing it pulls in neither torch's training loop nor the data layer.
"""

from __future__ import annotations

from typing import Any


def combine(terms: dict[str, Any], w_grad: float, w_curv: float, w_e0: float = 0.0) -> Any:
    """``terms``: spectrum, gradient, curvature (and optionally e0) as tensors, floats,
    arrays or Series; the weighted total of the same type."""
    total = terms["spectrum"] + w_grad * terms["gradient"] + w_curv * terms["curvature"]
    if "e0" in terms and w_e0:
        total = total + w_e0 * terms["e0"]
    return total


# what the trainer reports, named once: the epoch log, the search's tables and W&B read these
EVAL_TERMS = ("spectrum", "gradient", "curvature", "gradient_weighted", "curvature_weighted", "total",
              "e0_mae_ev")  # trainer.evaluate's keys (val_*, test_*)
TRAIN_TERMS = ("spectrum", "gradient", "curvature", "e0", "loss")  # one epoch's means (train_*)
EPOCH_METRICS = ("lr", "deriv_factor", "epoch_time_s", *(f"train_{k}" for k in TRAIN_TERMS),
                 *(f"val_{k}" for k in EVAL_TERMS), "best_val_total", "best_val_selected")
