"""What a search minimises: the validation objective, and optionally costs measured in the trial.

A space file names them (``objectives: [best_val_objective, n_parameters]``); the first is
the accuracy every space has, the others are costs. Several objectives make a
multi-objective Optuna study (TPE handles them; Ray passes the list through), whose answer
is a Pareto front rather than one best trial. Multi-fidelity schedulers (ASHA) rank trials
on one metric at a rung, and a trial they stop reports a half-trained accuracy beside a
final cost, which would bias the front: multi-objective searches run every trial to its
budget (FIFO).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

ACCURACY = "best_val_objective"
COSTS = {
    "n_parameters": "trainable parameters",
    "s_per_epoch": "training seconds per epoch (mean over the trial's epochs, where it ran)",
    "infer_ms_per_structure": "milliseconds to predict one test structure's spectra (median, "
                              "batch of one, where it ran)",
}
KNOWN = (ACCURACY, *COSTS)


def check(objectives: list[str], where: str) -> list[str]:
    """A space's ``objectives``: the accuracy first, then known costs, each once."""
    objs = list(objectives or [ACCURACY])
    bad = [o for o in objs if o not in KNOWN]
    if bad or objs[0] != ACCURACY or len(set(objs)) != len(objs):
        raise ValueError(f"{where}: objectives {objs}: the first must be {ACCURACY}, the rest any of "
                         f"{', '.join(COSTS)}, each once" + (f" (unknown: {bad})" if bad else ""))
    return objs


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (n x k, all minimised) that no other row dominates."""
    v = np.asarray(values, float)
    keep = np.ones(len(v), bool)
    for i in range(len(v)):
        others = np.delete(v, i, axis=0)
        dominated = np.any(np.all(others <= v[i], axis=1) & np.any(others < v[i], axis=1))
        keep[i] = not dominated
    return keep


def pareto(trials: pd.DataFrame, objectives: list[str]) -> pd.Series:
    """True for finished trials on the Pareto front of ``objectives``; False elsewhere
    (failed trials and trials missing an objective are never on it)."""
    ok = trials["status"].isin(["completed", "stopped_early"]) & trials[list(objectives)].notna().all(axis=1)
    out = pd.Series(False, index=trials.index)
    if ok.any():
        out[ok] = pareto_mask(trials.loc[ok, list(objectives)].to_numpy(float))
    return out


def inference_ms(model: Any, cfg: Any, max_structures: int = 16) -> float | None:
    """Median ms to predict one test structure (all its absorbers), after one warm-up."""
    import torch

    from xane3.data.dataset import load_dataset
    from xane3.data.loader import SpectrumLoader
    from xane3.data.splits import splits_of
    from xane3.train.step import to_device

    ds = load_dataset(cfg.data)
    test = splits_of(ds, cfg.data)["test"]
    if len(test) == 0:
        return None
    loader = SpectrumLoader(ds, test, 1, mode="structure", seed=0)
    graph_of = np.array([ds.samples[i].graph for i in test])
    device = next(model.parameters()).device
    times = []
    model.eval()
    with torch.no_grad():
        for i, g in enumerate(np.unique(graph_of)[: max_structures + 1]):
            batch, tgt, _ = loader.make_batch(np.asarray(test)[graph_of == g])  # every absorber of it
            batch, _ = to_device(batch, tgt, device)
            t0 = time.perf_counter()
            model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first call pays for lazy set-up
                times.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(times)) if times else None
