"""XANE(3) model parts, one module per section of the paper."""

from xane3.model.xane3 import XANE3

__all__ = ["XANE3"]
