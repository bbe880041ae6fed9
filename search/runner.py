"""Run trials on Ray Tune: the engine under the search CLI and the ablation runner.

Both go through :func:`execute`: the same trainable, the same tables and the same
resume logic. A search passes an Optuna searcher and ASHA; :func:`run_trials`
passes a fixed list of override dicts (a grid over them, FIFO scheduling).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search import claim
from search.cluster import concurrency, gpu_warning, init_ray  # noqa: F401 - the runner's API
from search.results import read_table
from search.table_writer import CostEstimate, SignContents, TableWriter
from search.trainable import StopHook, TrialSetup, train_trial
from xane3.atomic import write_text_atomic
from xane3.config import Config, with_overrides
from xane3.overlays import preset

REPO = Path(__file__).resolve().parents[1]
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


@dataclass
class Experiment:
    """What defines an experiment; saved as ``<experiment dir>/experiment.json`` for --resume."""

    name: str
    kind: str  # search | trials
    base: dict[str, Any]
    max_epochs: int
    trials: int = 0
    space: str | None = None
    scheduler: str = "asha"
    seed: int = 0
    storage: str | None = None
    wandb: str = "offline"
    results_dir: str = "results"
    tables: tuple[str, str] = ("trials", "epochs")
    preset: str | None = None  # the preset's name, for the tables' headers
    configs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    warm_start: str | None = None  # the experiment whose trials seeded this study

    def save(self, exp_dir: Path) -> None:
        exp_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(self), indent=2, default=str)
        write_text_atomic(exp_dir / "experiment.json", text)
        claim.sign(exp_dir)  # what --resume checks before Tune unpickles the folder
        # and beside its rows (pyarrow skips "_" files): the study continues from the tables alone
        write_text_atomic(self.beside_rows(), text)

    def beside_rows(self) -> Path:
        return Path(self.results_dir) / f"{self.tables[0]}.parquet" / f"experiment={self.name}" / "_experiment.json"

    @classmethod
    def load(cls, exp_dir: Path) -> Experiment:
        return cls.load_file(exp_dir / "experiment.json")

    @classmethod
    def load_file(cls, path: Path) -> Experiment:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no experiment to resume")
        try:
            d = json.loads(path.read_text())
            d["tables"] = tuple(d["tables"])
            d["configs"] = [(str(a), dict(b)) for a, b in d.get("configs", [])]
            return cls(**d)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not an experiment file ({exc})") from exc


def check_name(name: str) -> str:
    """Names become partition folders: start with a letter so pyarrow keeps them strings."""
    if not NAME_RE.match(name):
        raise ValueError(f"experiment name {name!r}: use letters, digits, '_', '-', '.', "
                         "starting with a letter")
    return name


PATH_KEYS = ("data.db", "train.init_from")  # config values that name a file


def base_overrides(preset_name: str | None, data: str | None, max_epochs: int | None,
                   seed: int | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The overrides every trial starts from; validated here, before Ray starts."""
    base = preset(preset_name) if preset_name else {}
    base.update(extra or {})
    if data:
        base["data.db"] = data
    for key in PATH_KEYS:  # trials run in their own working directories: absolute, and there
        if base.get(key):
            path = Path(str(base[key])).expanduser().resolve()
            if not path.exists():
                what = f"--data {data}" if key == "data.db" and data else f"{key}={base[key]}"
                raise FileNotFoundError(f"{what}: no such {'database' if key == 'data.db' else 'file'}")
            base[key] = str(path)
    if not base.get("data.db"):
        try:
            import xane3.data.embedded  # noqa: F401
        except ImportError as exc:
            raise FileNotFoundError("the embedded data set is not available in this checkout; "
                                    "pass --data DB (from `python -m xane3.data ingest`)") from exc
    if max_epochs is not None:
        base["train.epochs"] = int(max_epochs)
    if seed is not None:
        base["train.seed"] = int(seed)
    with_overrides(Config(), base)  # unknown keys fail now, not in every trial
    return base


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}+dirty" if sha and dirty else sha


def execute(exp: Experiment, exp_dir: Path, *, resume: bool, gpus_per_trial: float,
            cpus_per_trial: float, max_concurrent: int, search_alg: Any = None,
            scheduler: Any = None, param_space: dict[str, Any] | None = None,
            num_samples: int = 1, verbose: int = 1, tune_name: str = "tune",
            n_trials: int | None = None) -> Any:
    """Run (or resume) the Tune experiment in ``exp_dir/<tune_name>``; returns Tune's ResultGrid."""
    from ray import tune

    setup = TrialSetup(base=exp.base, experiment=exp.name, experiment_dir=str(exp_dir),
                       wandb_mode=exp.wandb)
    resources = {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(train_trial, setup=setup), resources)
    trainable.__mixins__ = (StopHook,)  # Tune's hook for extending a function trainable
    path = str(exp_dir / tune_name)
    if resume:
        if not tune.Tuner.can_restore(path):
            raise FileNotFoundError(f"{path}: no Tune experiment state to resume")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
    else:
        writer = TableWriter(exp.results_dir, exp.name, exp.base, exp.tables, git_commit())
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                        num_samples=num_samples,
                                        max_concurrent_trials=max_concurrent),
            param_space=param_space or {},
            run_config=tune.RunConfig(
                name=tune_name, storage_path=str(exp_dir), verbose=verbose,
                callbacks=[writer, CostEstimate(n_trials or num_samples, exp.max_epochs, max_concurrent),
                           SignContents(exp_dir, path)],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=0)))
    # the Parquet tables replace Tune's result.json files: do not warn that they are missing
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    return tuner.fit()


def prepare(name: str, experiments_dir: str | Path, resume: bool, results_dir: str | Path = "results",
            tables: tuple[str, ...] = Experiment.tables, piece: bool = False,
            folder: str | None = None) -> Path:
    """The experiment folder (``folder``, default the name), claimed for this driver. A new
    experiment refuses a name whose run folder or result rows exist: new rows beside an earlier
    run's would be read (Table 1, best_config.json) as one experiment. A ``piece`` of a study
    run in pieces (its caller checked the rows against the study) adds to them."""
    exp_dir = (Path(experiments_dir) / check_name(folder or name)).resolve()
    if piece:
        if exp_dir.exists():
            claim.verify(exp_dir)
        claim.claim(exp_dir)
        return exp_dir
    if not resume and (exp_dir / "tune").exists():
        raise FileExistsError(f"{exp_dir} exists: pass --resume to continue it, or another --name")
    if not resume:
        for table in tables:
            rows = Path(results_dir) / f"{table}.parquet" / f"experiment={name}"
            if any(rows.glob("*.parquet")):
                raise FileExistsError(
                    f"{rows.resolve()} holds an earlier experiment {name!r}'s rows (its run folder "
                    f"{exp_dir} is gone): new rows would be averaged with them; pass another "
                    "--name, or move those rows away")
    if resume and exp_dir.exists():
        claim.verify(exp_dir)  # before Tune (or anything) unpickles the folder's state
    claim.claim(exp_dir)  # one driver per folder, held until this process exits
    if not resume and (exp_dir / "tune").exists():  # another driver made it while we looked
        raise FileExistsError(f"{exp_dir} exists: pass --resume to continue it, or another --name")
    return exp_dir


def run_trials(configs: list[tuple[str, dict[str, Any]]], name: str, *, gpus: float = 0,
               gpus_per_trial: float | None = None, cpus_per_trial: float = 1.0,
               address: str | None = None, resume: bool = False, wandb: str = "offline",
               results_table: str = "ablations", preset_name: str | None = "paper",
               data: str | None = None, max_epochs: int | None = None, seed: int | None = None,
               extra: dict[str, Any] | None = None, results_dir: str | Path = "results",
               experiments_dir: str | Path = "runs/search", num_cpus: int | None = None,
               verbose: int = 1, preset_label: str | None = None, piece: str | None = None,
               folder: str | None = None) -> Any:
    """Train each ``(label, overrides)`` once through the search trainable and tables.

    Rows go to ``<results_dir>/<results_table>.parquet`` (epochs to
    ``<results_table>_epochs.parquet``), with ``label`` naming the config. Returns
    this experiment's rows as a DataFrame. ``piece`` names a fresh Tune run inside the
    experiment folder (``folder``, default the name) that adds its rows to the experiment's:
    a study continued from its tables runs what they lack as a new piece.
    """
    labels = [label for label, _ in configs]
    if len(set(labels)) != len(labels):
        raise ValueError("run_trials: labels must be unique")
    if piece and resume:
        raise ValueError("run_trials: a piece is a new Tune run; it is never resumed")
    if not resume:  # a bad --data or spec fails before the experiment folder is made
        base = base_overrides(preset_name, data, max_epochs, seed, extra)
        for _label, overrides in configs:
            with_overrides(Config(), {**base, **overrides})
    exp_dir = prepare(name, experiments_dir, resume, results_dir, (results_table, f"{results_table}_epochs"),
                      piece=bool(piece), folder=folder)
    if resume:
        exp = Experiment.load(exp_dir)
    else:
        exp = Experiment(name=name, kind="trials", base=base,
                         max_epochs=int(base.get("train.epochs", Config().train.epochs)),
                         trials=len(configs), scheduler="none", wandb=wandb,
                         results_dir=str(Path(results_dir).resolve()),
                         tables=(results_table, f"{results_table}_epochs"),
                         configs=[(label, dict(o)) for label, o in configs],
                         preset=preset_label or preset_name)
        exp.save(exp_dir)
    from ray import tune

    gpt = (1.0 if gpus else 0.0) if gpus_per_trial is None else gpus_per_trial
    started = init_ray(address, gpus, num_cpus, exp_dir)
    try:
        warning = gpu_warning(gpus, address) if gpus else None
        if warning:
            print(warning, file=sys.stderr)
        specs = [{"label": label, "overrides": o} for label, o in exp.configs]
        execute(exp, exp_dir, resume=resume, gpus_per_trial=gpt, cpus_per_trial=cpus_per_trial,
                max_concurrent=concurrency(len(specs), gpt, cpus_per_trial),
                param_space={"spec": tune.grid_search(specs)}, verbose=verbose,
                tune_name=piece or "tune", n_trials=len(specs))
    finally:
        if started:
            import ray

            ray.shutdown()
    return read_table(exp.results_dir, exp.tables[0], exp.name)
