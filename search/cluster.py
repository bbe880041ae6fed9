"""The Ray side of a study: start (or join) Ray with Tune's settings, end what a killed
driver of the same folder left, warn about logical GPUs, and size the concurrency."""

from __future__ import annotations

import math
import os
from pathlib import Path

from xane3.rayenv import repo_pythonpath, start_ray

REPO = Path(__file__).resolve().parents[1]
# set when a search starts (never at import); a value the user exported wins
TUNE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the Parquet tables are the log
    "TUNE_GLOBAL_CHECKPOINT_S": "2",  # experiment state: less to redo on resume
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}

def init_ray(address: str | None, gpus: float, num_cpus: int | None = None,
             exp_dir: Path | None = None) -> bool:
    """Ray for Tune (xane3.rayenv.start_ray) with Tune's settings; True if started here. With
    ``exp_dir``, what a killed driver of that folder left of its private Ray is ended first."""
    from xane3.rayenv import reap_session, record_session

    for key, value in TUNE_ENV.items():
        os.environ.setdefault(key, value)
    env = {"PYTHONPATH": repo_pythonpath(str(REPO)), "WANDB_SILENT": "true", "TQDM_DISABLE": "1"}
    if exp_dir is not None and not address:
        reap_session(exp_dir)
    started = start_ray(address, num_cpus=num_cpus, num_gpus=gpus, env_vars=env)
    if started and exp_dir is not None and not address:
        record_session(exp_dir)
    return started


def gpu_warning(gpus: float, address: str | None) -> str | None:
    """A loud message when Ray is told about more GPUs than CUDA really has."""
    import ray
    import torch

    present = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if address:
        cluster = ray.cluster_resources().get("GPU", 0)
        if gpus > cluster:
            return f"--gpus {gpus:g} but the cluster at {address} offers only {cluster:g} GPUs"
        return None
    if gpus > present:
        bar = "!" * 78
        return (f"\n{bar}\n!! WARNING: --gpus {gpus:g} but only {present} CUDA device(s) are present.\n"
                f"!! Ray schedules {gpus:g} *logical* GPUs; trials without a real GPU run on CPU\n"
                f"!! (each trial records the device it used in the trials table).\n{bar}\n")
    return None


def concurrency(trials: int, gpus_per_trial: float, cpus_per_trial: float) -> int:
    """How many trials fit at once on the Ray cluster's resources."""
    import ray

    res = ray.cluster_resources()
    fits = [trials, math.floor(res.get("CPU", 1) / cpus_per_trial + 1e-9) if cpus_per_trial else trials]
    if gpus_per_trial:
        fits.append(math.floor(res.get("GPU", 0) / gpus_per_trial + 1e-9))
    n = min(fits)
    if n < 1:
        raise ValueError(f"a trial needs {cpus_per_trial:g} CPU and {gpus_per_trial:g} GPU but the "
                         f"cluster has {res.get('CPU', 0):g} CPU and {res.get('GPU', 0):g} GPU")
    return int(n)


