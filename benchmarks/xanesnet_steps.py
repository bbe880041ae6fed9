"""The steps of ``benchmarks.xanesnet``: pick and ingest molecules, find the default and best
trials of the search, retrain the best config on whole epochs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xane3.atomic import atomic_path


def select_pairs(root: Path, n: int | None, seed: int) -> list[tuple[Path, Path]]:
    """``n`` (xyz, spectrum) pairs drawn at random (seeded) from the whole folder, name-sorted."""
    from xane3.data.readers.xanesnet import xanesnet_pairs

    pairs = xanesnet_pairs(root)
    if n is None or n >= len(pairs):
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), size=n, replace=False))
    return [pairs[i] for i in keep]


def build_db(pairs: list[tuple[Path, Path]], db: Path) -> dict[str, Any]:
    """Ingest the pairs into a fresh DB (written beside, then renamed into place)."""
    from xane3.data.database import Source, ingest
    from xane3.data.readers.xanesnet import read_xanesnet_pair

    sources = [Source(str(s), lambda x=x, s=s: [read_xanesnet_pair(x, s)]) for x, s in pairs]
    with atomic_path(db) as tmp:  # a unique hidden name, removed if ingest fails
        tmp.unlink()  # ingest makes its own SQLite file
        report = ingest(sources, tmp, progress=False, total=len(sources))
        if report.written == 0:
            raise ValueError(f"no usable spectrum among {len(pairs)} pairs: {report.summary()}")
    return {"molecules": len(pairs), "ingested": report.written,
            "skipped": [f"{src}: {why}" for src, why in report.skipped]}


def default_point(space: str, base: dict[str, Any]) -> dict[str, Any]:
    """The preset's own values of the searched parameters: enqueued as the first trial."""
    from search.spaces import BASIS_LEARN, LEARN, get_space
    from xane3.config import Config, with_overrides

    flat = with_overrides(Config(), base).flat()
    learn = {flags: name for name, flags in LEARN.items()}
    flat[BASIS_LEARN] = learn.get((flat["model.learn_centers"], flat["model.learn_widths"]))

    point = {p.name: flat[p.name] for p in get_space(space).params if p.drawn and p.applies(flat)}
    allowed = {p.name: p.choices for p in get_space(space).params if p.kind == "categorical"}
    for name, choices in allowed.items():
        if point[name] not in choices:
            raise ValueError(f"space {space}: the default {name}={point[name]} is not one of {choices}")
    return point


def trial_checkpoint(exp_dir: Path, trial_id: str) -> Path:
    """The newest checkpoint Tune kept for a trial holds the run's ``best.pt``."""
    found = sorted(exp_dir.glob(f"tune/*{trial_id}*/checkpoint_*/best.pt"))
    if not found:
        raise FileNotFoundError(f"{exp_dir}: no checkpoint with best.pt for trial {trial_id}")
    return found[-1]


def pick_trials(exp_dir: Path, results_dir: Path, name: str,
                point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(default trial row, best trial row, trials table): best by the val objective."""
    from search.results import read_table
    from search.trainable import OBJECTIVE

    df = read_table(results_dir, "trials", name)
    ok = df[(df["status"] != "failed") & df[OBJECTIVE].notna()]
    if ok.empty:
        raise RuntimeError(f"{exp_dir}: no trial finished; see the Tune output above")

    want = dict(point)
    if "basis.learn" in want:  # an Optuna parameter; the table records the two config keys
        learn = want.pop("basis.learn")
        want["model.learn_centers"] = learn in ("centers", "both")
        want["model.learn_widths"] = learn in ("widths", "both")

    def is_default(params: str | None) -> bool:
        got = json.loads(params or "{}")
        return all(np.isclose(got.get(k, np.nan), v) if isinstance(v, float) else got.get(k) == v
                   for k, v in want.items())

    default = ok[ok["params_json"].map(is_default)]
    if default.empty:
        raise RuntimeError(f"{exp_dir}: the default-config trial did not finish")
    best = ok.sort_values(OBJECTIVE).iloc[0]
    return default.iloc[0].to_dict(), best.to_dict(), df


def retrain(best: dict[str, Any], run_dir: Path, epochs: int, progress: bool) -> Path:
    """The best trial's config, ``epochs`` whole epochs (no step cap) on the same split."""
    from xane3.config import Config, with_overrides
    from xane3.train.trainer import fit

    cfg = with_overrides(Config.from_dict(json.loads(best["config_json"])), {
        "train.epochs": epochs, "train.max_steps_per_epoch": None, "train.device": "auto"})
    res = fit(cfg, out_dir=run_dir, resume=(run_dir / "last.pt").exists(), progress=progress)
    if res.checkpoint is None:
        raise RuntimeError(f"{run_dir}: the retrained run wrote no best.pt")
    import pandas as pd

    from xane3.plots import plot_learning_curves

    plot_learning_curves(run_dir.parent / "final_curves.png", pd.read_parquet(run_dir / "metrics.parquet"))
    return res.checkpoint
