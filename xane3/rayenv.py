"""How this project starts a private local Ray instance (search, ablations, FEFF generation).

Ray 2.60's servers listen on every interface whatever node IP is given, so a private
instance runs in Ray's token mode with a fresh secret, unless the user exported
``RAY_AUTH_MODE`` themselves. Ray reads its auth mode when ``ray`` is imported, and this
project never sets the environment at import, so the driver's Ray config is re-read
here, for whichever mode applies (a process can start several instances, in tests, and
another library may have changed the mode in between). The token reaches Ray's processes
through the environment they inherit at start; ``os.environ`` is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator


@contextlib.contextmanager
def private_ray_auth() -> Iterator[None]:
    """Around ``ray.init(address="local", ...)``: token mode, and the driver's config re-read."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    if os.environ.get("RAY_AUTH_MODE", "token") == "token":
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = saved["RAY_AUTH_TOKEN"] or secrets.token_hex(32)
    from ray._raylet import AuthenticationTokenLoader
    from ray._raylet import Config as RayConfig

    try:
        RayConfig.initialize("")  # the mode just set, not the one seen at import
        AuthenticationTokenLoader.instance().reset_cache()
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def repo_pythonpath(repo: str) -> str:
    """``repo`` first, then the caller's PYTHONPATH: what Ray's workers need to import us."""
    paths = [repo] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(paths))


def start_ray(address: str | None = None, *, num_cpus: float | None = None,
              num_gpus: float | None = None, env_vars: dict[str, str] | None = None,
              py_modules: list[str] | None = None, log_to_driver: bool = True) -> bool:
    """Join ``address`` or start a private local instance (never a stray cluster someone else
    started); True when this call started Ray (so the caller shuts it down).

    ``env_vars`` reach every worker; ``py_modules`` are shipped to the nodes of an existing
    cluster, which may not hold this checkout. The local instance binds 127.0.0.1 and, since
    Ray 2.60 listens on every interface anyway, runs in token mode (:func:`private_ray_auth`).
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    runtime_env: dict = {"env_vars": env_vars} if env_vars else {}
    if address:
        if py_modules:
            runtime_env["py_modules"] = py_modules
        ray.init(address=address, runtime_env=runtime_env or None, log_to_driver=log_to_driver)
        return True
    with private_ray_auth():
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                 _node_ip_address="127.0.0.1", runtime_env=runtime_env or None,
                 log_to_driver=log_to_driver)
    return True


SESSION_FILE = ".ray-session.json"


def record_session(folder: str | os.PathLike) -> None:
    """Note this driver's private Ray session in ``folder``: a driver killed with -9 leaves
    Ray's agents running, and the next run of the same folder ends them (:func:`reap_session`)."""
    import json
    from pathlib import Path

    import ray

    from xane3.atomic import write_text_atomic

    node = ray._private.worker.global_worker.node
    write_text_atomic(Path(folder) / SESSION_FILE, json.dumps(
        {"driver_pid": os.getpid(), "session_dir": node.get_session_dir_path()}))


def reap_session(folder: str | os.PathLike, grace_s: float = 5.0) -> int:
    """End what a killed driver of ``folder`` left of its Ray session: only processes whose
    command line names that session's own folder, and only when that driver is gone.
    Returns how many were ended."""
    import json
    from pathlib import Path

    import psutil

    path = Path(folder) / SESSION_FILE
    try:
        rec = json.loads(path.read_text())
        session, driver = str(rec["session_dir"]), int(rec["driver_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if psutil.pid_exists(driver) and driver != os.getpid():
        return 0  # that driver still runs: its Ray is its own
    name = Path(session).name
    if not name.startswith("session_"):
        return 0  # never match on anything broader than one Ray session's folder
    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if proc.pid != os.getpid() and session in cmd:
            left.append(proc)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(left, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    path.unlink(missing_ok=True)
    if left:
        print(f"ended {len(left)} process(es) of the Ray session a killed driver left ({name})")
    return len(left)
