"""The GPU path's switches, kept out of the training loop: AMP, torch.compile, pinned copies.

Every switch is correctness-neutral by construction and can be tested on CPU:
bf16 autocast runs on CPU as on CUDA (loss and metrics stay float32), a model
that fails to compile falls back to eager with a warning instead of ending the
run, and batches are pinned only where a CUDA copy can use it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when present; a device this machine lacks is a ValueError (bad
    input, said in one line), so commands need not treat every RuntimeError as one."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(f"device {spec!r}: not a device name (cpu, cuda, cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but CUDA is not available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {spec!r} asked for, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return dev


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``amp``; otherwise nothing."""
    if amp and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pin_memory_for(device: torch.device) -> bool:
    """Page-locked host batches pay off only for copies to a CUDA device."""
    return device.type == "cuda"


def to_device(batch, targets: dict[str, torch.Tensor], device: torch.device):
    """Move a (GraphBatch, targets) pair; copies from pinned memory overlap with compute."""
    return batch.to(device), {k: v.to(device, non_blocking=True) for k, v in targets.items()}


class CompiledForward:
    """Calls ``torch.compile(model)``; on any compile failure warns once and runs eager.

    Checkpoints keep using ``model`` itself (the compiled wrapper shares its
    parameters but prefixes its state-dict keys). ``compile_s`` adds up the wall
    time of calls that (re)compiled, so a benchmark can report it apart.
    """

    def __init__(self, model: torch.nn.Module, **compile_kwargs: Any) -> None:
        self.model = model
        self.failed: str | None = None
        self.compile_s = 0.0
        self._seen: set[tuple] = set()
        try:
            self.compiled: Callable = torch.compile(model, **compile_kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure means: run eager
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        self.failed = f"{type(exc).__name__}: {' '.join(lines[:2])}"[:300]
        warnings.warn(f"torch.compile failed, training continues eager: {self.failed}",
                      RuntimeWarning, stacklevel=3)

    def __call__(self, batch) -> dict[str, torch.Tensor]:
        if self.failed:
            return self.model(batch)
        key = (self.model.training, torch.is_grad_enabled())
        t0 = time.perf_counter()
        try:
            out = self.compiled(batch)
        except Exception as exc:  # noqa: BLE001 - dynamo/inductor errors have many types
            self._fail(exc)
            return self.model(batch)
        if key not in self._seen:  # first call in this mode: tracing + codegen
            self._seen.add(key)
            self.compile_s += time.perf_counter() - t0
        return out


def forward_fn(model: torch.nn.Module, compile_model: bool) -> Callable:
    """What the loop calls for a forward pass: the model, or its compiled form."""
    return CompiledForward(model, dynamic=True) if compile_model else model
