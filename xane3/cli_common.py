"""Options every command spells the same way, so a user learns them once.

``--quiet`` (no progress bars or tables; ``--no-progress`` still accepted), ``--no-plots``
(tables and CSV only; ``--no-figures`` still accepted) and ``--device`` (``auto``: CUDA when
present, as training does). Compute is counted three ways, each with one name: ``--cpus``
(CPUs Ray may use in all), ``--cpus-per-trial`` / ``--gpus-per-trial`` (one trial's
share) and ``--threads`` (torch threads of one process, ``train.num_threads``).
Exit codes: 0 when the job did what was asked, 1 when it ran
and failed (every trial failed, nothing ingested, some structures failed, a result could not be
written: ``xane3.atomic.WriteError``), 2 for a bad command line or input refused before any work
(argparse's own convention: a missing or foreign file, an output folder that cannot be made).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DONE, FAILED, REFUSED = 0, 1, 2  # the exit codes above


def error_text(exc: BaseException | str) -> str:
    """An error as one line: a KeyError's str() is its repr (quotes and all), a library's
    message may run over several lines."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split())


def fail(exc: BaseException | str, code: int = REFUSED) -> int:
    """Print ``error: ...`` (one line, to stderr) and return ``code``: 2 refused before any
    work (the default), 1 ran and failed."""
    print(f"error: {error_text(exc)}", file=sys.stderr)
    return code


def add_quiet(p: argparse.ArgumentParser, what: str = "progress bars") -> None:
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help=f"no {what}")


def add_db(p: argparse.ArgumentParser, dest: str = "db", **kw) -> None:
    """``--db DB``: the data source of every command (``--data`` still accepted)."""
    kw.setdefault("help", "ASE DB from `python -m xane3.data ingest` (default: the embedded FEFF10 set)")
    kw.setdefault("metavar", "DB")
    p.add_argument("--db", "--data", dest=dest, **kw)


def add_set(p: argparse.ArgumentParser, what: str = "config override") -> None:
    """``--set KEY=VALUE`` (repeatable), parsed by :func:`parse_set`, applied last."""
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help=f"{what}, e.g. train.lr=5e-4 or model.layer_norm=false (repeatable; applied "
                        "after --preset and --experiment)")


def add_no_plots(p: argparse.ArgumentParser, what: str = "tables only") -> None:
    p.add_argument("--no-plots", "--no-figures", dest="no_plots", action="store_true", help=what)


def add_model_source(p: argparse.ArgumentParser, spread: str = "") -> None:
    """``--checkpoint CKPT`` or ``--ensemble DIR``: what every predicting command reads."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a .pt from `python -m xane3.train` (default: the packaged "
                                          "pretrained model, when installed)")
    src.add_argument("--ensemble", metavar="DIR",
                     help="every *.pt in DIR (and best.pt in subfolders)" + (f": {spread}" if spread else "")
                          + "; `pretrained`: the packaged ensemble (./pretrained for a folder so named)")


def add_ray(p: argparse.ArgumentParser, per_trial: bool = True, cpus: int | None = None,
            gpus: bool = True) -> None:
    """``--address``, ``--cpus`` and ``--gpus`` of the Ray instance and, with ``per_trial``,
    each trial's ``--cpus-per-trial`` / ``--gpus-per-trial``."""
    p.add_argument("--address", help="existing Ray cluster (default: a private local instance)")
    p.add_argument("--cpus", type=positive_int, default=cpus,
                   help=f"CPUs Ray may use in all (default: {cpus if cpus else 'all'})")
    if gpus:
        p.add_argument("--gpus", type=float, default=0, help="GPUs Ray may use (default 0: CPU only)")
    if per_trial:
        p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
        if gpus:
            p.add_argument("--gpus-per-trial", type=float,
                           help="GPUs per trial; fractions pack trials on a GPU (default 1)")


def add_threads(p: argparse.ArgumentParser, default: int | None = 0) -> None:
    """``--threads N`` (0: torch's default); ``default=None`` leaves the config's train.num_threads."""
    p.add_argument("--threads", type=count_int, default=default,
                   help="torch threads of the process (train.num_threads; 0: torch's default)")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """argparse type for counts: ``--limit -5`` would quietly mean 'all but the last five'."""
    n = _whole(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: expected >= 1")
    return n


def count_int(text: str) -> int:
    """argparse type for counts where 0 means something (plan only, none, all): still never < 0."""
    n = _whole(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text}: expected 0 or more")
    return n


def add_device(p: argparse.ArgumentParser, default: str | None = "auto") -> None:
    """``--device``; ``default=None`` leaves the config's ``train.device`` (also ``auto``)."""
    said = "auto" if default else "the config's train.device, auto"
    p.add_argument("--device", default=default,
                   help=f"auto (CUDA when present) | cpu | cuda | cuda:N (default: {said})")


def shortcut_overrides(given: dict[str, tuple[str, Any]], sets: dict[str, Any]) -> dict[str, Any]:
    """``{key: (flag, value)}`` of the shortcut options a command line gave (``--epochs`` for
    train.epochs) as overrides; a key that ``--set`` also names is refused, since which of the
    two spellings wins would be a guess (one of them was silently dropped)."""
    for key, (flag, value) in given.items():
        if key in sets:
            raise ValueError(f"{flag} {value} and --set {key}={sets[key]} set the same thing; give one")
    return {key: value for key, (_, value) in given.items()}


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """Parse ``--set key=value`` pairs; values stay strings and are coerced later."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out
