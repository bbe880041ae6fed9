"""The Ray Tune function trainable: one trial = one call of :func:`xane3.train.trainer.fit`.

There is no second training loop here. A callback reports every epoch to Tune
with the run directory (holding ``last.pt``) as the checkpoint, so ASHA can stop
a trial between epochs and a restored trial continues via ``fit(resume=True)``.
After ``fit`` returns, one summary report (``final=1``, test metrics) tells the
driver the trial finished on its own rather than being stopped.

The search objective is ``best_val_objective``: the lowest validation total
over the epochs so far, computed with the *reference* derivative weights (the
paper's defaults), because a trial that searches ``train.lambda_*`` would
otherwise win by shrinking its own weights. With default weights it equals
the trainer's ``best_val_total``. With ``train.select_on=spectrum`` it is the
lowest validation spectrum MSE, the metric the trainer selects on.

Tables are written by the driver (``search.table_writer.TableWriter``): a stopped
trial's actor is killed without notice, and on a cluster only the driver's
disk is where users query. Failures are raised as :class:`TrialFailed`, which
carries the placement so the driver's failed row still says where it ran.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xane3.config import Config, TrainConfig, with_overrides
from xane3.objective import combine
from xane3.train.callbacks import Callback

OBJECTIVE = "best_val_objective"
_REF = TrainConfig()


@dataclass
class TrialSetup:
    """What every trial of one experiment shares (sent once via ``tune.with_parameters``)."""

    base: dict[str, Any]  # preset + data + epochs overrides, applied before the trial's own
    experiment: str
    experiment_dir: str  # absolute; W&B runs go to <experiment_dir>/wandb/<trial_id>
    wandb_mode: str = "offline"  # online | offline | disabled
    wandb_project: str = "xane3"


class TrialFailed(RuntimeError):
    """A trial's error plus where it ran (device, GPU ids, node), for the failed row."""

    def __init__(self, message: str, info: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.info = info

    def __reduce__(self):  # picklable across Ray processes
        return (TrialFailed, (self.message, self.info))


def trial_spec(config: dict[str, Any]) -> tuple[dict[str, Any], str | None, int | None]:
    """(overrides, label, optuna trial number) of a Tune trial config (search or fixed list)."""
    spec = config.get("spec", config) if isinstance(config.get("spec"), dict) else config
    num = config.get("optuna_trial")
    return dict(spec.get("overrides") or {}), spec.get("label"), None if num is None else int(num)


def objective(metrics: dict[str, Any], select_on: str = "total") -> float:
    """The validation metric trials are ranked by: ``train.select_on`` of the experiment.

    ``total`` uses the reference derivative weights (comparable across trials);
    ``spectrum`` is the validation spectrum MSE alone.
    """
    if select_on == "spectrum":
        return float(metrics["val_spectrum"])
    terms = {k: metrics[f"val_{k}"] for k in ("spectrum", "gradient", "curvature")}
    return float(combine(terms, _REF.lambda_grad, _REF.lambda_curv, 0.0))


def placement() -> dict[str, Any]:
    """Where this trial runs: Ray's GPU ids, node, host, process."""
    import ray

    ctx = ray.get_runtime_context()
    return {"gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "node_ip": ray.util.get_node_ip_address(), "node_id": ctx.get_node_id(),
            "hostname": socket.gethostname(), "pid": os.getpid()}


def cpu_model() -> str:
    """The CPU's model name (``platform.processor()`` is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine(device: str, num_threads: int | None) -> dict[str, Any]:
    """What a row needs to be trusted on another machine: CPU, torch threads, GPU name."""
    import torch

    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else ""
    return {"cpu_model": cpu_model(), "torch_threads": int(num_threads or torch.get_num_threads()),
            "gpu_name": gpu}


def pick_device(gpu_ids: str) -> str:
    """CUDA only when Ray gave this trial a GPU *and* CUDA exists (logical GPUs run on CPU)."""
    import torch

    return "cuda:0" if gpu_ids and torch.cuda.is_available() else "cpu"  # 0: first of Ray's GPUs


_ACTIVE_WANDB: list[_WandbRun] = []  # the run of the trial in this process, for StopHook


class _WandbRun:
    """One W&B run per trial, in the trial's own directory; a no-op when disabled."""

    def __init__(self, setup: TrialSetup, trial_id: str, cfg: Config, extra: dict[str, Any]) -> None:
        self.run = None
        if setup.wandb_mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        wdir = Path(setup.experiment_dir) / "wandb" / trial_id
        wdir.mkdir(parents=True, exist_ok=True)
        try:
            self._init(wandb, setup, trial_id, cfg, extra, wdir)
        except Exception as exc:  # noqa: BLE001 - logging must not cost the trial
            print(f"W&B disabled for trial {trial_id}: {type(exc).__name__}: {exc}")

    def _init(self, wandb: Any, setup: TrialSetup, trial_id: str, cfg: Config,
              extra: dict[str, Any], wdir: Path) -> None:
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", setup.wandb_project), group=setup.experiment,
            name=trial_id, id=f"{setup.experiment}-{trial_id}", job_type="search", dir=str(wdir),
            mode=setup.wandb_mode, config={**cfg.flat(), **extra}, resume="allow",
            reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
        _ACTIVE_WANDB[:] = [self]

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def finish(self, exit_code: int = 0, teardown: bool = False) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
        if teardown:  # before Ray ends the process, or W&B's exit hook finds its service gone
            import wandb

            wandb.teardown()


class StopHook:
    """Trainable mixin: when Tune stops a trial (ASHA) it calls ``cleanup`` in the trial's
    process before killing it; finish the W&B run there so it is complete on disk."""

    def cleanup(self) -> None:
        for run in _ACTIVE_WANDB:
            try:
                run.finish(exit_code=0, teardown=True)
            except Exception as exc:  # noqa: BLE001 - never block Tune's own cleanup
                print(f"W&B: could not finish the run of a stopped trial: {exc}")
        _ACTIVE_WANDB.clear()
        super().cleanup()  # type: ignore[misc]


class TuneReport(Callback):
    """Per-epoch ``tune.report`` with the run directory as the checkpoint."""

    def __init__(self, run_dir: Path, info: dict[str, Any], wandb_run: _WandbRun,
                 select_on: str = "total", epochs: int | None = None) -> None:
        self.run_dir = run_dir
        self.info = info
        self.wandb = wandb_run
        self.select_on = select_on
        self.epochs = epochs
        self.best, self.best_epoch = _best_so_far(run_dir / "metrics.parquet", select_on)
        self.last: dict[str, Any] = {}
        self.epoch_s: list[float] = []  # this process's epochs: a cost objective, where it ran

    def on_epoch_end(self, epoch: int, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        from ray import tune

        obj = objective(metrics, self.select_on)
        if not math.isfinite(obj):
            raise FloatingPointError(f"validation objective became {obj} at epoch {epoch}")
        if obj < self.best:
            self.best, self.best_epoch = obj, epoch
        self.epoch_s.append(float(metrics.get("epoch_time_s") or 0.0))
        row = {**metrics, "val_objective": obj, OBJECTIVE: self.best, "epochs_run": epoch + 1,
               "best_epoch": self.best_epoch, "s_per_epoch": sum(self.epoch_s) / len(self.epoch_s)}
        self.wandb.log(row, step=epoch)
        self.last = {**row, **self.info, "reported_at": time.time()}
        if self.epochs is not None and epoch + 1 >= self.epochs:
            # the last epoch of the budget is reported once, with the test metrics, by the
            # summary: reported here, a rung at the final epoch (ASHA, max_epochs = 1 or 3)
            # could stop a trial that ran its whole budget and lose its test metrics
            return
        tune.report(self.last, checkpoint=tune.Checkpoint.from_directory(str(self.run_dir)))


def _best_so_far(metrics_path: Path, select_on: str) -> tuple[float, int | None]:
    """The objective's minimum over epochs already run and its epoch (a restored trial keeps
    its best); a trial a scheduler stops early still has a best epoch in its row."""
    if not metrics_path.exists():
        return math.inf, None
    import pandas as pd

    df = pd.read_parquet(metrics_path)
    vals = [(objective(r, select_on), int(r["epoch"])) for r in df.to_dict("records")]
    return min(((v, e) for v, e in vals if math.isfinite(v)), default=(math.inf, None))


def _prepare_run_dir(run_dir: Path, device: str) -> bool:
    """Fill the run directory from Tune's checkpoint; True when ``fit`` should resume."""
    from ray import tune

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return False
    with ckpt.as_directory() as src:
        shutil.copytree(src, run_dir, dirs_exist_ok=True)
    saved = run_dir / "config.json"
    if saved.exists() and Config.load(saved).train.device != device:
        # restored onto another kind of device: fit() refuses a config change, start over
        print(f"checkpoint was trained on {Config.load(saved).train.device}, now {device}: "
              "restarting this trial from scratch")
        shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        return False
    return (run_dir / "last.pt").exists()


def train_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """Tune entry point. ``config["overrides"]`` is the sample (or ablation spec)."""
    from ray import tune

    from search.objectives import inference_ms
    from xane3.model import XANE3
    from xane3.train.trainer import fit

    started = time.time()
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "checkpoint created" per epoch
    ctx = tune.get_context()
    trial_id = ctx.get_trial_id()
    info: dict[str, Any] = {"started_at": started, **placement()}
    wandb_run: _WandbRun | None = None
    try:
        info["device"] = pick_device(info["gpu_ids"])
        overrides, label, number = trial_spec(config)
        cfg = with_overrides(Config(), {**setup.base, **overrides, "train.device": info["device"]})
        info.update(machine(info["device"], cfg.train.num_threads))
        info["n_parameters"] = XANE3(cfg.model).num_parameters()  # in every row, stopped early or not
        run_dir = Path(os.getcwd()) / f"run-{trial_id}"  # cwd: Tune's per-trial working dir
        resume = _prepare_run_dir(run_dir, info["device"])
        wandb_run = _WandbRun(setup, trial_id, cfg, {
            "trial_id": trial_id, "experiment": setup.experiment, "label": label,
            "optuna_trial": number, "searched": sorted(overrides)})
        reporter = TuneReport(run_dir, info, wandb_run, cfg.train.select_on, cfg.train.epochs)
        result = fit(cfg, out_dir=run_dir, callbacks=[reporter], resume=resume, progress=False)
        summary = {**reporter.last, **info, **{f"test_{k}": v for k, v in result.test.items()},
                   OBJECTIVE: reporter.best, "final": 1, "best_epoch": result.best_epoch,
                   "trainer_stopped_early": int(result.stopped_early),
                   "n_parameters": int(result.model.num_parameters()), "data_hash": result.data_hash,
                   "infer_ms_per_structure": inference_ms(result.model, cfg),
                   "reported_at": time.time()}
        wandb_run.log({f"test_{k}": v for k, v in result.test.items()}, step=len(result.history))
        wandb_run.finish()
        # with the run directory: the budget's last epoch has no report of its own (TuneReport)
        tune.report(summary, checkpoint=tune.Checkpoint.from_directory(str(run_dir)))
    except Exception as exc:
        if wandb_run is not None:
            wandb_run.finish(exit_code=1)
        raise TrialFailed(f"{type(exc).__name__}: {exc}", info) from exc
