"""Config values from the command line, JSON and YAML, turned into a field's type.

``--set`` gives strings, a saved config gives JSON numbers, an overlay gives YAML values;
all three meet here, so ``model.m0: 16.0``, ``--set model.m0=16`` and ``{"m0": 16}`` mean
the same, and ``nan``, ``inf``, ``16.5`` for an int or ``yes`` for a number fail by name.
"""

from __future__ import annotations

import math
from typing import Any


def coerce(value: Any, typ: Any, key: str) -> Any:
    """The field's type from a CLI string (``--set model.m0=16``) or a JSON/YAML value; a
    whole-number float for an int field (``m0: 16.0``) is taken, 16.5, NaN and inf are not."""
    t = str(typ)
    is_int = t == "<class 'int'>" or t.startswith(("int |", "int|"))
    v = _parse(value, t, is_int, key)
    if is_int and (isinstance(v, bool) or isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"{key}={value!r}: expected a whole number")
    if is_int and isinstance(v, float):
        v = int(v)
    for x in v if isinstance(v, tuple) else (v,):
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError(f"{key}={value!r}: expected a finite number")
    return v


def _parse(value: Any, t: str, is_int: bool, key: str) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if "bool" in t:
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{key}: {value!r} is not a boolean")
        if low in ("none", "null") and "None" in t:
            return None
        try:
            if "tuple" in t:
                return tuple(float(x) for x in value.strip("()[] ").split(",") if x)
            if is_int:
                return int(value)
            if "float" in t:
                return float(value)
        except ValueError:
            kind = t.replace("<class ", "").strip("<>'")
            raise ValueError(f"{key}={value!r}: not a valid {kind}") from None
        return value
    if "tuple" in t and isinstance(value, (list, tuple)):
        return tuple(value)
    if "float" in t and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
