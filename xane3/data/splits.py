"""Train/validation/test splits: over spectra, structures, or parent structures.

``random`` is the paper's (80/10/10 over spectra). ``structure`` keeps every
absorber of a structure on one side; ``parent`` also keeps rattled copies with
the structure they were made from, the honest test of generalisation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def split_indices(
    groups: Sequence[str], kind: str, val: float, test: float, seed: int
) -> dict[str, list[int]]:
    """Indices of samples per split; ``groups`` labels each sample for group splits."""
    n = len(groups)
    rng = np.random.default_rng(seed)
    if kind == "random":
        units = [[i] for i in range(n)]
    elif kind in ("structure", "parent"):
        by: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(groups):
            by[g].append(i)
        units = [by[k] for k in sorted(by)]
    else:
        raise ValueError(f"unknown split {kind!r}")
    order = rng.permutation(len(units))
    n_test, n_val = round(test * n), round(val * n)
    out: dict[str, list[int]] = {"test": [], "val": [], "train": []}
    for u in order:
        target = "test" if len(out["test"]) < n_test else (
            "val" if len(out["val"]) < n_val else "train")
        out[target].extend(units[u])
    if n >= 3 and (not out["train"] or (val > 0 and not out["val"])):
        raise ValueError(
            f"split {kind!r} of {n} spectra in {len(units)} groups leaves a split empty; "
            "use more data or the 'random' split"
        )
    return {k: sorted(v) for k, v in out.items()}
