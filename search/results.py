"""Parquet result tables: one part file per trial, partitioned by experiment.

``results/trials.parquet/experiment=<name>/<trial_id>.parquet`` holds one row per
trial (its status, placement, flat hyperparameters and metrics),
``results/epochs.parquet/experiment=<name>/<trial_id>.parquet`` one row per epoch,
so ``pandas.read_parquet("results/trials.parquet")`` reads every experiment and
no two trials ever write the same file.

Every part file is written with the same explicit schema (built from the
``Config`` type hints and the trainer's metric names): pyarrow takes a dataset's
schema from its first file, so a column that is all-null in one file (type
``null``) and a string in another would otherwise fail to read. Files are
written to a hidden temp name and renamed (dataset readers skip ``.``-files),
so a reader never sees half a file, during the search or after a crash.

The driver writes the tables (``search.table_writer.TableWriter``, a Tune callback): it sees every
result, every stop and every error, even when a trial's process is killed.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, get_type_hints

import pyarrow as pa
import pyarrow.parquet as pq

from xane3.atomic import atomic_path
from xane3.config import Config
from xane3.objective import EPOCH_METRICS, EVAL_TERMS

log = logging.getLogger(__name__)

STATUSES = ("running", "completed", "stopped_early", "failed")
TS = pa.timestamp("ms", tz="UTC")
METRICS = [*EPOCH_METRICS, "val_objective", "best_val_objective"]  # + the search's ranking
COST_METRICS = ["s_per_epoch", "infer_ms_per_structure"]  # search.objectives (n_parameters: below)
TEST_METRICS = [f"test_{k}" for k in EVAL_TERMS]
PLACEMENT = {"device": pa.string(), "gpu_ids": pa.string(), "cuda_visible_devices": pa.string(),
             "node_ip": pa.string(), "node_id": pa.string(), "hostname": pa.string(),
             "pid": pa.int64(), "cpu_model": pa.string(), "torch_threads": pa.int64(),
             "gpu_name": pa.string(), "data_hash": pa.string()}
_TIMES = ("scheduled_at", "started_at", "last_report_at", "ended_at")


def _hint_type(hint: Any) -> pa.DataType:
    t = str(hint)
    if "tuple" in t:
        return pa.list_(pa.float64())
    if "bool" in t:
        return pa.bool_()
    if "float" in t:
        return pa.float64()
    if "int" in t:
        return pa.int64()
    return pa.string()


def config_columns() -> dict[str, pa.DataType]:
    """``{"model.m0": int64, ...}``: one column per config field, typed from its hint."""
    cfg = Config()
    out: dict[str, pa.DataType] = {}
    for sec in ("data", "model", "train"):
        for name, hint in get_type_hints(type(getattr(cfg, sec))).items():
            out[f"{sec}.{name}"] = _hint_type(hint)
    return out


def trial_columns() -> dict[str, pa.DataType]:
    cols: dict[str, pa.DataType] = {
        "trial_id": pa.string(), "label": pa.string(), "optuna_trial": pa.int64(),
        "status": pa.string(), "stopped_by": pa.string(), "error": pa.string(),
        "epochs_run": pa.int64(), "best_epoch": pa.int64(), "n_parameters": pa.int64(),
        "wall_time_s": pa.float64(), **{k: TS for k in _TIMES}, "starts": pa.int64()}
    cols.update({k: pa.float64() for k in METRICS + TEST_METRICS + COST_METRICS})
    cols["pareto"] = pa.bool_()  # on the front of a multi-objective search (search.objectives)
    cols.update(PLACEMENT)
    cols.update({"git_commit": pa.string(), "config_hash": pa.string(), "params_json": pa.string(),
                 "config_json": pa.string()})
    cols.update(config_columns())
    return cols


def epoch_columns() -> dict[str, pa.DataType]:
    return {"trial_id": pa.string(), "epoch": pa.int64(), "reported_at": TS,
            **{k: pa.float64() for k in METRICS}}


def _cast(value: Any, typ: pa.DataType) -> Any:
    if value is None:
        return None
    if typ == TS:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if pa.types.is_list(typ):
        return [float(v) for v in value]
    if pa.types.is_boolean(typ):
        return bool(value)
    if pa.types.is_integer(typ):
        return int(value) if not (isinstance(value, float) and not math.isfinite(value)) else None
    if pa.types.is_floating(typ):
        return float(value)
    return str(value)


def part_path(results_dir: str | Path, table: str, experiment: str, trial_id: str) -> Path:
    return Path(results_dir) / f"{table}.parquet" / f"experiment={experiment}" / f"{trial_id}.parquet"


def write_part(rows: list[dict[str, Any]], columns: dict[str, pa.DataType], path: Path) -> None:
    """Write rows with the fixed schema to a temp file, fsync, then rename over ``path``."""
    schema = pa.schema(list(columns.items()))
    data = {name: [_cast(r.get(name), typ) for r in rows] for name, typ in columns.items()}
    table = pa.Table.from_pydict(data, schema=schema)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        pq.write_table(table, fh)
        fh.flush()
        os.fsync(fh.fileno())


def read_part(path: Path) -> list[dict[str, Any]]:
    """Rows of one part file, timestamps back as epoch seconds; [] when absent."""
    if not path.exists():
        return []
    rows = pq.read_table(path).to_pylist()
    for r in rows:
        for k, v in r.items():
            if isinstance(v, datetime):
                r[k] = v.timestamp()
    return rows


def read_table(results_dir: str | Path, table: str = "trials",
               experiment: str | None = None) -> Any:
    """A table as a DataFrame over every part file's schema (safe across code versions)."""
    import pyarrow.dataset as ds

    root = Path(results_dir) / f"{table}.parquet"
    part = ds.partitioning(pa.schema([("experiment", pa.string())]), flavor="hive")
    files = ds.dataset(root, format="parquet", partitioning=part)
    schemas = [f.physical_schema for f in files.get_fragments()]
    if not schemas:
        import pandas as pd

        return pd.DataFrame()
    schema = pa.unify_schemas(schemas + [pa.schema([("experiment", pa.string())])])
    data = ds.dataset(root, format="parquet", partitioning=part, schema=schema)
    flt = ds.field("experiment") == experiment if experiment else None
    return data.to_table(filter=flt).to_pandas()
