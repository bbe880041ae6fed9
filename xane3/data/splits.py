"""Train/validation/test splits: over spectra, structures, parent structures, facets or phases.

``random`` is the paper's (80/10/10 over spectra). ``structure`` keeps every
absorber of a structure on one side; ``parent`` also keeps rattled copies with
the structure they were made from, the honest test of generalisation.
``facet`` and ``phase`` hold whole facets (every phase's (104) slabs, say) or whole
phases out: test takes whole groups, drawn by the seed, until it holds at least the
test fraction; val is drawn from the spectra left, so there are still spectra of
every other group to train on (with 4 facets, the test split is one facet: 25 %).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

LEAVE_OUT = ("facet", "phase")  # few large groups: whole ones held out for test only


def _leave_groups_out(groups: Sequence[str], kind: str, val: float, test: float,
                      rng: np.random.Generator) -> dict[str, list[int]]:
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError(f"split {kind!r}: the data carry {len(names)} {kind} label(s) "
                         f"({', '.join(names)}); holding one out needs at least 2")
    held: list[str] = []
    for g in rng.permutation(names):
        if sum(x in held for x in groups) >= test * len(groups) or len(held) == len(names) - 1:
            break
        held.append(str(g))
    rest = rng.permutation([i for i, g in enumerate(groups) if g not in held])
    n_val = round(val * len(groups))
    return {"test": sorted(i for i, g in enumerate(groups) if g in held),
            "val": sorted(int(i) for i in rest[:n_val]), "train": sorted(int(i) for i in rest[n_val:])}


def split_indices(
    groups: Sequence[str], kind: str, val: float, test: float, seed: int
) -> dict[str, list[int]]:
    """Indices of samples per split; ``groups`` labels each sample for group splits."""
    n = len(groups)
    rng = np.random.default_rng(seed)
    if kind == "random":
        units = [[i] for i in range(n)]
    elif kind in LEAVE_OUT:
        return _leave_groups_out(groups, kind, val, test, rng)
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


def splits_of(dataset, d) -> dict[str, list[int]]:
    """The split a run of ``d`` (a DataConfig) uses on ``dataset``: what trainer, evaluation
    and benchmarks all call, so a held-out spectrum is the same one everywhere."""
    return split_indices(dataset.group_labels(d.split), d.split, d.val_fraction, d.test_fraction,
                         d.split_seed)
