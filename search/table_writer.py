"""The Tune callbacks that write the result tables as trials run (``search.results`` holds
their schema and readers): the driver sees every result, every stop and every error,
even when a trial's process is killed, so it writes the rows, not the trials.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from search.results import (
    COST_METRICS,
    METRICS,
    PLACEMENT,
    TEST_METRICS,
    epoch_columns,
    part_path,
    read_part,
    trial_columns,
    write_part,
)
from xane3.config import Config, with_overrides

log = logging.getLogger(__name__)


class CostEstimate(Callback):
    """What the experiment will cost: from the first epoch once, then re-projected from the
    trials that finished whenever the projection moves by more than a quarter (trials of a
    space differ in size, so the first epoch alone can be far off)."""

    def __init__(self, trials: int, epochs: int, parallel: int) -> None:
        self.trials, self.epochs, self.parallel = trials, epochs, max(parallel, 1)
        self.done = False
        self.started = time.time()
        self.finished: list[float] = []  # wall seconds of each finished trial
        self.said: float | None = None

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        t = result.get("epoch_time_s")
        if self.done or not t:
            return
        self.done = True
        hours = self.trials * self.epochs * float(t) / self.parallel / 3600
        self.said = hours
        print(f"cost estimate: the first epoch took {t:.0f} s, so {self.trials} trial(s) x {self.epochs} "
              f"epoch(s), {self.parallel} at a time, take ~{hours:.2f} h (a first guess: trials of "
              "other sizes change it; re-estimated as trials finish)", flush=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        start = (trial.last_result or {}).get("started_at")
        self.finished.append(time.time() - start if start else 0.0)
        left = self.trials - len(self.finished)
        if left <= 0 or not self.said:
            return
        per = sum(self.finished) / len(self.finished)
        total = (time.time() - self.started + left * per / self.parallel) / 3600
        if abs(total - self.said) > 0.25 * self.said:
            self.said = total
            print(f"cost estimate: {len(self.finished)} trial(s) took {per / 60:.1f} min on average; "
                  f"the experiment now projects to ~{total:.2f} h in all ({left} to go)", flush=True)


class SignContents(Callback):
    """Re-sign the Tune state files (``search.claim``) whenever the driver's loop rewrote them,
    so ``--resume`` can tell them from a replacement."""

    def __init__(self, exp_dir: str | Path, tune_dir: str | Path) -> None:
        self.exp_dir, self.tune_dir = Path(exp_dir), Path(tune_dir)
        self.seen: tuple = ()

    def _sign(self) -> None:
        from search.claim import _state_files, sign_contents

        now = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in _state_files(self.tune_dir))
        if now != self.seen:
            sign_contents(self.exp_dir, self.tune_dir)
            self.seen = now

    def get_state(self) -> None:
        """Tune asks right after writing its experiment and searcher state: sign them now, not
        a step later (a driver killed in between would resume from older state)."""
        self.on_step_end(0, [])
        return None

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        try:
            self._sign()
        except OSError:  # a file replaced between listing and reading: the next step signs it
            log.debug("state files changed while signing", exc_info=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._sign()


class TableWriter(Callback):
    """Tune callback writing each trial's row and epoch rows as results arrive.

    A row is loaded back from its part file the first time a trial is seen, so a
    resumed experiment keeps each trial's first start and its epochs.
    """

    def __init__(self, results_dir: str | Path, experiment: str, base: dict[str, Any],
                 tables: tuple[str, str] = ("trials", "epochs"), git_commit: str = "") -> None:
        self.results_dir = str(Path(results_dir).resolve())
        self.experiment = experiment
        self.base = dict(base)
        self.tables = tables
        self.git_commit = git_commit
        self._rows: dict[str, dict[str, Any]] = {}
        self._epochs: dict[str, dict[int, dict[str, Any]]] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks: keep no row cache
        return {**self.__dict__, "_rows": {}, "_epochs": {}}

    # --- rows -------------------------------------------------------------------------
    def _path(self, which: int, trial_id: str) -> Path:
        return part_path(self.results_dir, self.tables[which], self.experiment, trial_id)

    def _row(self, trial: Any) -> dict[str, Any]:
        tid = trial.trial_id
        if tid not in self._rows:
            old = read_part(self._path(0, tid))
            self._rows[tid] = old[0] if old else self._new_row(trial)
            self._epochs[tid] = {int(r["epoch"]): r for r in read_part(self._path(1, tid))}
        return self._rows[tid]

    def _new_row(self, trial: Any) -> dict[str, Any]:
        from search.trainable import trial_spec

        overrides, label, number = trial_spec(trial.config or {})
        row: dict[str, Any] = {
            "trial_id": trial.trial_id, "label": label, "optuna_trial": number,
            "status": "running", "starts": 0, "git_commit": self.git_commit,
            "params_json": json.dumps(overrides, sort_keys=True), "scheduled_at": time.time()}
        try:
            resolved = with_overrides(Config(), {**self.base, **overrides})
            row.update(resolved.flat())
            row["config_json"] = json.dumps(resolved.to_dict())
            row["config_hash"] = config_hash(resolved)
        except (KeyError, ValueError, TypeError) as exc:
            row["error"] = f"invalid overrides: {exc}"
        return row

    def _write(self, trial_id: str, epochs: bool = False) -> None:
        write_part([self._rows[trial_id]], trial_columns(), self._path(0, trial_id))
        if epochs:
            rows = [self._epochs[trial_id][e] for e in sorted(self._epochs[trial_id])]
            write_part(rows, epoch_columns(), self._path(1, trial_id))

    def _finish(self, trial: Any, status: str, stopped_by: str | None = None,
                error: str | None = None) -> None:
        row = self._row(trial)
        now = time.time()
        row.update(status=status, stopped_by=stopped_by, ended_at=now)
        if error is not None:
            row["error"] = error
        start = row.get("started_at") or row.get("scheduled_at")
        row["wall_time_s"] = now - start if start else None
        self._write(trial.trial_id)

    # --- Tune hooks (errors are logged, never allowed to end the search) ----------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:
            row = self._row(trial)
            row.update(status="running", starts=int(row.get("starts") or 0) + 1, ended_at=None)
            self._write(trial.trial_id)
        except Exception:  # noqa: BLE001
            log.exception("results: could not write the start of trial %s", trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        try:
            self._on_result(trial, result)
        except Exception:  # noqa: BLE001
            log.exception("results: could not write a result of trial %s", trial.trial_id)

    def _on_result(self, trial: Any, result: dict[str, Any]) -> None:
        tid = trial.trial_id
        row = self._row(trial)
        for key in PLACEMENT:
            if result.get(key) is not None:
                row[key] = result[key]
        if result.get("started_at"):
            row["started_at"] = min(result["started_at"], row.get("started_at") or math.inf)
        row["last_report_at"] = result.get("reported_at")
        metrics = {k: v for k, v in result.items() if k in METRICS or k in TEST_METRICS}
        row.update(metrics)
        for key in ("epochs_run", "best_epoch", "n_parameters", *COST_METRICS):
            if result.get(key) is not None:
                row[key] = result[key]
        if result.get("final") and (result.get("epoch") is None or int(result["epoch"]) in self._epochs[tid]):
            self._write(tid)
            return
        epoch = int(result["epoch"])  # a summary also carries the budget's last epoch
        self._epochs[tid] = {e: r for e, r in self._epochs[tid].items() if e < epoch}
        self._epochs[tid][epoch] = {"trial_id": tid, "epoch": epoch,
                                    "reported_at": result.get("reported_at"), **metrics}
        self._write(tid, epochs=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:
            last = trial.last_result or {}
            if not last.get("final"):
                self._finish(trial, "stopped_early", "scheduler")
            elif last.get("trainer_stopped_early"):
                self._finish(trial, "stopped_early", "patience")
            else:
                self._finish(trial, "completed")
        except Exception:  # noqa: BLE001
            log.exception("results: could not write the end of trial %s", trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:
            message, placement = trial_error(trial)
            row = self._row(trial)
            for key in (*PLACEMENT, "started_at"):
                if placement.get(key) is not None and row.get(key) is None:
                    row[key] = placement[key]
            self._finish(trial, "failed", error=message)
        except Exception:  # noqa: BLE001
            log.exception("results: could not write the failure of trial %s", trial.trial_id)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Give every row a final status: trials Tune ended silently, and orphans."""
        try:
            known = {t.trial_id: t for t in trials}
            # Tune's trial ids are <run prefix>_<index>: another piece's or shard's rows in this
            # folder (a study run in pieces) are theirs to finish, not orphans of this run
            prefixes = {tid.rsplit("_", 1)[0] for tid in known}
            for t in trials:
                if self._row(t).get("status") == "running" and t.status in ("TERMINATED", "ERROR"):
                    (self.on_trial_error if t.status == "ERROR" else self.on_trial_complete)(0, trials, t)
            folder = self._path(0, "x").parent
            for path in sorted(folder.glob("*.parquet")) if folder.exists() else []:
                rows = read_part(path)
                if rows and path.stem not in known and rows[0].get("status") == "running" \
                        and path.stem.rsplit("_", 1)[0] in prefixes:
                    rows[0].update(status="failed", ended_at=time.time(), error=(
                        "orphaned: the driver died before Tune recorded this trial, "
                        "so it could not be resumed"))
                    write_part(rows, trial_columns(), path)
        except Exception:  # noqa: BLE001
            log.exception("results: could not reconcile the tables at the end")


def config_hash(cfg: Config) -> str:
    """A short hash of the resolved config, less where it ran (device, threads, the database's
    path; ``data_hash`` covers the data): rows of one (spec, seed) from two machines share it."""
    d = cfg.to_dict()
    d.get("data", {}).pop("db", None)
    d.get("train", {}).pop("device", None)
    d.get("train", {}).pop("num_threads", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trial_error(trial: Any) -> tuple[str, dict[str, Any]]:
    """The failure message (and placement, for :class:`TrialFailed`) of an errored trial."""
    import cloudpickle

    from search.trainable import TrialFailed

    exc = None
    try:  # the driver's local copy: written before this hook, synced to storage later
        with open(trial.pickled_error_file, "rb") as fh:
            exc = cloudpickle.load(fh)
    except Exception:  # noqa: BLE001 - fall back to the text error file
        pass
    for _ in range(6):  # RayTaskError(.cause) -> TrialFailed(.info)
        if exc is None:
            break
        if getattr(exc, "cause", None) is not None:
            exc = exc.cause
        elif isinstance(exc, TrialFailed) and hasattr(exc, "info"):
            return exc.message, dict(exc.info)
        else:
            exc = exc.__cause__
    text = ""
    try:
        text = Path(trial.error_file).read_text()
    except Exception:  # noqa: BLE001
        pass
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[-1] if lines else "unknown error"), {}
