"""What every benchmark measures the same way: the machine line, the batches, the
device sync, peak memory, and a mode run in a child process (so its memory is its own)."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch


def machine_line(threads: int | str | None = None) -> str:
    """One line naming the machine, so printed figures say where they came from."""
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}, threads {threads or torch.get_num_threads()}, "
            f"cuda {torch.cuda.is_available()}")


def batches(ds, n_batches: int, batch_size: int, seed: int = 0) -> list[np.ndarray]:
    """The same spectra for every mode or variant: structure-grouped order, first n batches.

    More batches than one pass holds continue into the next epochs' orders (as training
    would), so a long timing on a small subset never yields an empty batch.
    """
    from xane3.data.loader import SpectrumLoader

    if len(ds) < batch_size:
        raise ValueError(f"benchmark needs at least {batch_size} spectra (one batch), got {len(ds)}")
    loader = SpectrumLoader(ds, range(len(ds)), batch_size, shuffle=True, seed=seed)
    out: list[np.ndarray] = []
    while len(out) < n_batches:
        order = loader.order()
        out += [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
        loader.set_epoch(loader.epoch + 1)
    return out[:n_batches]


def sync(device: torch.device) -> None:
    """CUDA runs asynchronously: wait before reading the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: torch.device) -> float:
    """Max allocated on CUDA, max RSS of this process on CPU.

    On Linux the address space's own VmHWM: ``ru_maxrss`` carries the parent's peak across exec.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024
    except (OSError, TypeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(cmd: list[str], label: str, env: Mapping[str, str] | None = None) -> dict:
    """Run a benchmark child process; its last stdout line is its JSON result."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env=dict(env) if env is not None else None)
    if out.returncode:
        raise RuntimeError(f"benchmark {label} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
