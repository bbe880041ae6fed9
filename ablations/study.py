"""An ablation study that continues anywhere: its definition sits beside its result rows.

``<results>/ablations.parquet/experiment=<name>/_study.json`` holds what the study runs
(preset, seeds, every (spec, seed) label with its overrides); pyarrow skips ``_`` files, so
the dataset still reads rows only. A study is continued from these files alone, on any
machine, with the Ray Tune folder gone: finished (spec, seed) rows are kept, the rest run as
a new piece. ``--shard K/N`` gives each of N machines a disjoint part; their rows merge
because every trial owns its part file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ablations import table
from ablations.specs import load_specs
from search.resume import as_stored
from xane3.atomic import write_csv_atomic, write_text_atomic
from xane3.config import Config, with_overrides

TABLE = "ablations"
STUDY_FILE = "_study.json"
FINISHED = ("completed", "stopped_early")


@dataclass
class Study:
    name: str
    preset: str
    seeds: int
    base: dict[str, Any]  # preset + --set: what every run starts from
    configs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (spec__seedK, overrides)
    command: str = ""

    @staticmethod
    def path(results_dir: str | Path, name: str) -> Path:
        return Path(results_dir) / f"{TABLE}.parquet" / f"experiment={name}" / STUDY_FILE

    def save(self, results_dir: str | Path) -> None:
        write_text_atomic(self.path(results_dir, self.name), json.dumps(asdict(self), indent=1, default=str))

    @classmethod
    def load(cls, results_dir: str | Path, name: str) -> Study | None:
        path = cls.path(results_dir, name)
        if not path.exists():
            return None
        try:
            d = json.loads(path.read_text())
            d["configs"] = [(str(a), dict(b)) for a, b in d["configs"]]
            return cls(**d)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a study file ({exc})") from exc

    def differs(self, configs: list[tuple[str, dict[str, Any]]], base: dict[str, Any], preset: str) -> str:
        """Why a command line asks for another study than this one ('' when it does not)."""
        if preset != self.preset:
            return f"preset {preset} (started with {self.preset})"
        if as_stored(with_overrides(Config(), base).to_dict()) != \
                as_stored(with_overrides(Config(), self.base).to_dict()):  # typed: 5e-4 == 0.0005
            return f"other --set values (started with {json.dumps(self.base)})"
        if as_stored(dict(configs)) != as_stored(dict(self.configs)):
            return f"{len(configs)} runs (started with {len(self.configs)}: other specs or --seeds)"
        return ""


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) for argparse."""
    import argparse

    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected K/N, e.g. 1/2") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: K must be 1..N")
    return k, n


def shard(configs: list[tuple[str, dict[str, Any]]], k: int, n: int) -> list[tuple[str, dict[str, Any]]]:
    """The K-th of N disjoint parts, by position in the study's (seed-major) order, so every
    machine computes the same split and each part holds whole-ish seeds."""
    return [c for i, c in enumerate(configs) if i % n == k - 1]


def read_rows(results_dir: str | Path, name: str) -> pd.DataFrame:
    from search.results import read_table

    root = Path(results_dir) / f"{TABLE}.parquet"
    return read_table(results_dir, TABLE, name) if root.exists() else pd.DataFrame()


def finished(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per finished label: a (spec, seed) that finished twice counts once, the later."""
    if rows.empty:
        return rows
    done = rows[rows["status"].isin(FINISHED)]
    if "ended_at" in done:
        done = done.sort_values("ended_at").drop_duplicates("label", keep="last")
    return done


def missing(study: Study, rows: pd.DataFrame) -> list[str]:
    have = set(finished(rows)["label"]) if not rows.empty else set()
    return [label for label, _ in study.configs if label not in have]


def mark_interrupted(results_dir: str | Path, name: str, labels: set[str]) -> int:
    """Rows of ``labels`` still 'running' were left by a driver that stopped (this piece is the
    only one that runs them): mark them failed, so the tables never show a run that isn't."""
    from search.results import part_path, read_part, trial_columns, write_part

    rows = read_rows(results_dir, name)
    if rows.empty:
        return 0
    stale = rows[(rows["status"] == "running") & rows["label"].isin(labels)]
    for tid in stale["trial_id"]:
        path = part_path(results_dir, TABLE, name, tid)
        part = read_part(path)
        if part:
            part[0].update(status="failed", ended_at=time.time(),
                           error="interrupted: its driver stopped; a later piece reruns it")
            write_part(part, trial_columns(), path)
    return len(stale)


def mean_spectrum_baseline(cfg: Config) -> dict[str, float]:
    """Test-split error of predicting the mean training spectrum (x1e-3, baseline weights)."""
    from xane3.baseline import baseline_scores
    from xane3.data.dataset import load_dataset
    from xane3.data.splits import splits_of

    ds = load_dataset(cfg.data)
    s, t = splits_of(ds, cfg.data), cfg.train
    terms = baseline_scores(ds, s["train"], s["test"], t.lambda_grad, t.lambda_curv)
    return {"spectrum": terms["spectrum"] * 1e3, "gradient": t.lambda_grad * terms["gradient"] * 1e3,
            "curvature": t.lambda_curv * terms["curvature"] * 1e3, "total": terms["total"] * 1e3}


def provenance(done: pd.DataFrame) -> str:
    """Where the rows came from: commits, machines, CPU-hours (a trial's wall time x its threads)."""
    if done.empty:
        return ""
    parts = []
    if "git_commit" in done:
        parts.append("commits " + ", ".join(sorted({str(c)[:10] for c in done["git_commit"].dropna()})))
    if "cpu_model" in done:
        machines = done.groupby(done["cpu_model"].fillna("unrecorded")).size()
        parts.append("machines " + "; ".join(f"{m} ({n} runs)" for m, n in machines.items()))
    if "wall_time_s" in done:
        threads = done["torch_threads"].fillna(1) if "torch_threads" in done else 1
        parts.append(f"{(done['wall_time_s'] * threads).sum() / 3600:.2f} CPU-hours of training "
                     f"({done['wall_time_s'].sum() / 3600:.2f} trial-hours)")
    if "data_hash" in done:
        hashes = sorted(set(done["data_hash"].dropna()))
        parts.append(f"data hash {', '.join(hashes) or 'unrecorded'}")
    return "; ".join(parts)


def write_table(rows: pd.DataFrame, study: Study, out_dir: Path, wall_s: float | None = None) -> str:
    """Score the finished rows and write Markdown, CSV and the forest plot; returns the Markdown."""
    done = finished(rows).copy()
    done["spec"] = done["label"].str.split("__seed").str[0]
    done["seed"] = done["label"].str.split("__seed").str[1].astype(int)
    specs = load_specs()
    done["parameters"] = done["n_parameters"]  # the trainable counted them when it built the model
    base_cfg = with_overrides(Config(), study.base)  # the baseline's final weights score every row
    t = base_cfg.train
    scores = table.score_rows(done, t.lambda_grad, t.lambda_curv)
    summary = table.summarise(scores, [s for s in specs if s in set(done.spec)])
    mean = mean_spectrum_baseline(base_cfg)
    md = table.markdown(summary, mean)
    todo = missing(study, rows)
    from ablations.specs import presets

    about = presets()[study.preset].description if study.preset in presets() else ""
    header = (f"# Table 1 — preset `{study.preset}`, experiment `{study.name}`\n\n"
              + (f"{' '.join(about.split())}\n\n" if about else "")
              + f"Baseline: {base_cfg.model.tensor_product} tensor product, m0/m1/m2 = "
              f"{base_cfg.model.m0}/{base_cfg.model.m1}/{base_cfg.model.m2}, {base_cfg.model.num_layers} "
              f"layers, {base_cfg.train.epochs} epochs. Totals (every row, the mean spectrum too) use the "
              f"baseline's derivative weights λ∇ = {t.lambda_grad:g}, λ∇² = {t.lambda_curv:g} on this "
              f"data's grid and axis ({base_cfg.data.energy_axis}, normalization "
              f"{base_cfg.data.normalization}).\n\n"
              f"Command: `{study.command}`\n\n"
              + (f"This piece's wall time: {wall_s / 60:.1f} min on this machine.\n\n" if wall_s else "")
              + f"Rows: {len(done)} of {len(study.configs)} (spec, seed) runs finished; "
              + (f"missing: {', '.join(todo)}.\n\n" if todo else "none missing.\n\n")
              + f"Provenance: {provenance(done)}.\n\n"
              + f"Preset overrides: `{json.dumps(study.base)}`\n\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / f"table1_{study.name}.md", header + md)
    write_csv_atomic(summary, out_dir / f"table1_{study.name}.csv")
    base = summary[summary.spec == "baseline"]
    learned = base.empty or base["total"].iloc[0] < mean["total"]
    table.forest_plot(summary, out_dir / f"table1_{study.name}.png",
                      f"XANE(3) ablations, {study.name}: paired change vs baseline", learned)
    return header + md
