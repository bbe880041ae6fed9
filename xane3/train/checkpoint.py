"""Checkpoints that carry their config, split and data hash.

Saved with plain tensors and JSON text only and loaded with
``torch.load(weights_only=True)``: loading never unpickles arbitrary objects.
Files are written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from xane3.atomic import WriteError, atomic_path
from xane3.config import Config
from xane3.model import XANE3
from xane3.model.backend import check_backend, cuequivariance_available
from xane3.train.metadata import ModelMetadata

FORMAT = "xane3-checkpoint-1"  # what every checkpoint is tagged with, and loading checks
# resume state stored as tensors beside the weights, not in the JSON meta
_STATE_KEYS = ("optimizer", "scheduler", "rng", "cuda_rng", "ema")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp name, then rename; a full disk says so in one line (WriteError)."""
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as exc:  # torch reports write failures as "[enforce fail at ...]"
        raise WriteError(f"{path}: could not write the checkpoint (disk full or not writable?): "
                      f"{str(exc).splitlines()[0][:200]}") from exc


def write_checkpoint(path: str | Path, config: Config, state: dict[str, torch.Tensor],
           extra: dict[str, Any]) -> None:
    """The one checkpoint layout: tag, config and meta as JSON text, weights, resume state."""
    payload = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "model": state,
        "meta": json.dumps({k: v for k, v in extra.items() if k not in _STATE_KEYS}),
    }
    payload.update({k: extra[k] for k in _STATE_KEYS if k in extra})
    atomic_torch_save(payload, path)


def save_checkpoint(path: str | Path, model: XANE3, config: Config, **extra: Any) -> None:
    """``extra`` holds tensors, numbers, strings and lists (split ids, epoch, optimiser)."""
    write_checkpoint(path, config, model.state_dict(), extra)


def _unreadable(path: Path, exc: Exception) -> str:
    """Why torch.load refused ``path``, in one line. Never torch's own text: it advises retrying
    with weights_only=False, which runs whatever code an untrusted file holds."""
    if not zipfile.is_zipfile(path):
        return "not a PyTorch zip archive: damaged, truncated or another format"
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
        return ("it holds Python objects beyond tensors and plain data, which xane3 never unpickles; "
                "not a file xane3 wrote")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'unreadable'}"


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"{path}: not a readable xane3 checkpoint ({_unreadable(path, exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a xane3 checkpoint (missing format tag)")
    try:
        payload["config"] = Config.from_dict(json.loads(payload["config"]))
        payload["meta"] = json.loads(payload["meta"])
    except (KeyError, ValueError, TypeError) as exc:  # a key since removed, a damaged payload
        what = f"no {exc}" if isinstance(exc, KeyError) and exc.args[0] in ("config", "meta") else exc
        raise ValueError(f"{path}: its config or metadata cannot be read ({what})") from exc
    return payload


def load_state(model: XANE3, state: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict with an error that says which config fields disagree."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise ValueError(
            f"{source}: weights do not fit this model config (was the checkpoint trained "
            f"with other irreps, layers or basis settings?): {' '.join(first)}"
        ) from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    config: Config | None = None, backend: str | None = None) -> XANE3:
    """The model (eval mode) with ``model.metadata`` (a ModelMetadata) set.

    Passing a ``config`` that differs from the checkpoint's fails with a clear message.
    ``backend`` ("e3nn" | "cuequivariance") overrides the kernels the model runs on:
    the weights are the same either way. Without it, a checkpoint trained with
    cuEquivariance loads on e3nn (with a warning) where cuEquivariance is not installed.
    """
    payload = read_checkpoint(path, map_location)
    if config is not None:  # same shapes can still mean another function (grid, basis widths)
        from xane3.train.warmstart import model_differences

        differ = model_differences(payload["config"].model, config.model)
        if differ:
            raise ValueError(f"{path}: weights do not fit this model config: trained with "
                             + ", ".join(f"model.{k}={a!r} (config: {b!r})" for k, a, b in differ))
    cfg = config or payload["config"]
    model_cfg = cfg.model
    if backend is not None:
        check_backend(backend)
        model_cfg = dataclasses.replace(model_cfg, backend=backend)
    elif model_cfg.backend == "cuequivariance" and not cuequivariance_available():
        warnings.warn(f"{path}: trained with model.backend='cuequivariance', which is not installed "
                      "here; running the same weights on e3nn", stacklevel=2)
        model_cfg = dataclasses.replace(model_cfg, backend="e3nn")
    model = XANE3(model_cfg)
    load_state(model, payload["model"], str(path))
    model.metadata = ModelMetadata.from_meta(payload["meta"], payload["config"], model)
    return model.to(map_location).eval()


def package_checkpoint(src: str | Path, dst: str | Path, note: str | None = None) -> None:
    """A run's ``best.pt`` as a file to ship: the weights, config and metadata without the
    resume state, and without the training machine's ``train.init_from`` path, which would
    dangle on every other machine; ``note`` says in words what the run started from."""
    payload = read_checkpoint(src)
    if "optimizer" in payload:  # last.pt: the last epoch's raw weights, not the best or averaged ones
        raise ValueError(f"{src}: a run's last.pt (resume state: the last epoch's raw weights under "
                         "the best epoch's metadata); package the run's best.pt")
    cfg, meta = payload["config"], payload["meta"]
    if cfg.train.init_from is not None or note:
        meta["init_from"] = note or f"warm start from {Path(cfg.train.init_from).name}"
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=None))
    write_checkpoint(dst, cfg, payload["model"], meta)  # meta only: no resume state
