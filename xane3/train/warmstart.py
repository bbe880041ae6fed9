"""Warm start (``train.init_from``): begin from a trained checkpoint's weights.

Fine-tuning, or continuing a run whose optimiser state is gone (a shipped ``best.pt``
holds weights only), needs the same architecture and, when the data are the same, the
same split: otherwise spectra the checkpoint trained on would be scored as unseen.
The optimiser, LR schedule and epoch count start afresh; ``--resume`` of a warm-started
run continues from its own ``last.pt`` as usual.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

from xane3.config import Config
from xane3.model import XANE3
from xane3.train.checkpoint import load_state, read_checkpoint

# model fields that change kernels or bookkeeping, not the function the weights compute
FREE_MODEL_FIELDS = ("backend",)


def model_differences(theirs: Any, ours: Any) -> list[tuple[str, Any, Any]]:
    """``(field, theirs, ours)`` for each model-config field where one set of weights would
    not compute the other's function: what warm starts and soups refuse."""
    a, b = dataclasses.asdict(theirs), dataclasses.asdict(ours)
    return [(k, a.get(k), v) for k, v in b.items() if k not in FREE_MODEL_FIELDS and a.get(k) != v]


def same_split(a: dict[str, list[int]], b: dict[str, list[int]]) -> bool:
    """Whether two runs put the same spectra in each split (order within a split is free)."""
    def norm(s: dict[str, list[int]]) -> dict[str, list[int]]:
        return {k: sorted(int(i) for i in v) for k, v in s.items()}
    return norm(a) == norm(b)


def warm_start(model: XANE3, cfg: Config, data_hash: str,
               splits: dict[str, list[int]]) -> dict[str, Any]:
    """Load ``cfg.train.init_from`` into ``model``; what to record in the run's checkpoints."""
    path = Path(cfg.train.init_from)
    payload = read_checkpoint(path)
    differ = model_differences(payload["config"].model, cfg.model)
    if differ:
        raise ValueError(f"{path}: train.init_from needs the same model config; it differs in "
                         + ", ".join(f"model.{k} ({a!r} there, {b!r} here)" for k, a, b in differ))
    meta = payload["meta"]
    if meta.get("data_hash") == data_hash and "splits" in meta:
        if not same_split(meta["splits"], splits):
            raise ValueError(f"{path}: trained on another split of these data, so its training "
                             "spectra would sit in this run's validation or test split; use its "
                             "data.split, data.split_seed and fractions")
    elif meta.get("data_hash") not in (None, data_hash):  # grown or other data: no split to compare
        warnings.warn(f"{path}: trained on other data (data hash {meta['data_hash']}, here {data_hash}); "
                      "spectra it trained on may sit in this run's validation or test split, which "
                      "would make their figures optimistic", stacklevel=2)
    load_state(model, payload["model"], str(path))
    return {"init_from": str(path), "init_epochs": int(meta.get("epoch", 0)),
            "init_best_epoch": int(meta.get("best_epoch", -1))}
