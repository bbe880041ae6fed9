"""XANE(3): E(3)-equivariant prediction of XANES spectra from atomic structures.

Stable public API::

    from xane3 import ModelConfig, XANE3, predict, load_checkpoint

The model, inference and checkpoint parts load lazily, so data-only commands
(``python -m xane3.data``) start without importing e3nn.
"""

from __future__ import annotations

import importlib
from typing import Any

from xane3.config import Config, DataConfig, ModelConfig, TrainConfig, with_overrides

__version__ = "0.1.0"
_LAZY = {"XANE3": "xane3.model", "predict": "xane3.inference",
         "load_checkpoint": "xane3.train.checkpoint"}
__all__ = ["Config", "DataConfig", "ModelConfig", "TrainConfig", "with_overrides", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xane3' has no attribute {name!r}")
