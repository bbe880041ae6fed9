"""Training: the loss, the derivative schedule, checkpoints and the one loop."""

from xane3.train.checkpoint import load_checkpoint
from xane3.train.trainer import FitResult, TrainingDiverged, evaluate, fit

__all__ = ["FitResult", "TrainingDiverged", "evaluate", "fit", "load_checkpoint"]
