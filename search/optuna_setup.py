"""The Optuna side of a search: the space as a define-by-run function, the sampler (one
objective or several), the storage, the scheduler, and orphaned study trials."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from ray.tune.search.optuna import OptunaSearch

from search import runner
from search.spaces import get_space, search_space
from search.trainable import OBJECTIVE


class SpaceFn:
    """The define-by-run function OptunaSearch calls; picklable for Tune's searcher state.

    It holds the space read when the search started, so a space file edited later (or
    before ``--resume``, which unpickles this) cannot change what the remaining trials draw.
    """

    def __init__(self, name: str, base: dict[str, Any] | None = None) -> None:
        self.name, self.space = name, search_space(name, base or {})

    def __call__(self, trial: Any) -> dict[str, Any]:
        space = getattr(self, "space", None) or get_space(self.name)  # pickled before it was held
        return {"overrides": space(trial), "optuna_trial": trial.number}


class ResumableOptunaSearch(OptunaSearch):
    """OptunaSearch that tolerates results of a trial the study already finished.

    Tune snapshots its state every few seconds; a trial that ended (and was told to
    Optuna) after the last snapshot runs again from its last checkpoint on --resume.
    The study keeps its first value (the same: resumed training is deterministic)
    instead of the driver crashing on ``UpdateFinishedTrialError``.
    """

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        try:
            super().on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:
            pass


def make_storage(spec: str | None, exp_dir: Path, parallel: int) -> Any:
    """Journal file in the experiment folder by default; RDB URL for many drivers; no SQLite."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if not spec:
        exp_dir.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(exp_dir / "optuna.journal")))
    if spec.startswith("sqlite"):
        if parallel > 1:
            raise ValueError(f"--storage {spec}: SQLite cannot take {parallel} parallel trials' "
                             "writes; use the default journal file or a PostgreSQL/MySQL URL")
        return RDBStorage(spec)
    if "://" in spec:
        return RDBStorage(spec)
    return JournalStorage(JournalFileBackend(str(Path(spec).resolve())))


def make_searcher(exp: runner.Experiment, storage: Any, enqueue: list[dict[str, Any]] | None) -> Any:
    """TPE over the space; with several objectives the same sampler runs multi-objective
    (Optuna's TPE ranks by non-domination), and the study gets one direction per objective."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    objectives = list(get_space(exp.space or "").objectives) if exp.space else [OBJECTIVE]
    sampler = optuna.samplers.TPESampler(seed=exp.seed, constant_liar=True, multivariate=True,
                                         group=True)
    metric: Any = objectives if len(objectives) > 1 else OBJECTIVE
    mode: Any = ["min"] * len(objectives) if len(objectives) > 1 else "min"
    return ResumableOptunaSearch(space=SpaceFn(exp.space or "", exp.base), metric=metric, mode=mode,
                                 sampler=sampler, study_name=exp.name, storage=storage,
                                 points_to_evaluate=enqueue or None)


def make_scheduler(exp: runner.Experiment) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if exp.scheduler == "none":
        return FIFOScheduler()
    # max_t one past the last epoch: the trial's final summary report is never cut off
    return ASHAScheduler(time_attr="training_iteration", metric=OBJECTIVE, mode="min",
                         max_t=exp.max_epochs + 1, grace_period=max(1, exp.max_epochs // 10),
                         reduction_factor=3)


def close_orphans(storage: Any, study_name: str, known: set[int]) -> int:
    """Mark study trials that no Tune trial holds (asked just before a driver died) as FAIL.

    Trials Tune knows stay untouched, even RUNNING ones: after Ctrl-C they resume.
    """
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.number in known:
            continue
        storage.set_trial_user_attr(t._trial_id, "orphaned", "driver died before Tune recorded it")
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        n += 1
    return n


