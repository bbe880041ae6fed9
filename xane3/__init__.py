"""XANE(3): E(3)-equivariant prediction of XANES spectra from atomic structures.

Stable public API::

    from xane3 import ModelConfig, XANE3, predict, load_checkpoint
"""

from xane3.config import Config, DataConfig, ModelConfig, TrainConfig, with_overrides
from xane3.inference import predict
from xane3.model import XANE3
from xane3.train.checkpoint import load_checkpoint

__version__ = "0.1.0"
__all__ = [
    "Config", "DataConfig", "ModelConfig", "TrainConfig", "XANE3", "load_checkpoint",
    "predict", "with_overrides",
]
