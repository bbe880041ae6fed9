"""Checkpoints to predict with: the packaged model, one file, or an ensemble.

An ensemble of k independently trained models (k seeds, or the top-k trials of a
search) gives a mean spectrum and a spread; the spread is large where the members
disagree, i.e. where the training data say little. A single checkpoint is an
ensemble of one (spread zero), so callers handle both the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from xane3.inference import predict
from xane3.train.checkpoint import load_checkpoint, read_checkpoint
from xane3.train.metadata import ModelMetadata, metadata_of

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "xane3-feff-fe.pt"
PRETRAINED_ENSEMBLE = PRETRAINED.parent / "ensemble"
ENSEMBLE_ALIAS = "pretrained"  # --ensemble pretrained; ./pretrained names a folder of that name


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``path``, or the packaged pretrained model when none is given."""
    if path:
        return Path(path)
    if PRETRAINED.exists():
        return PRETRAINED
    raise FileNotFoundError(
        f"no --checkpoint given and no packaged pretrained model at {PRETRAINED}. Train one with "
        "`python -m xane3.train --out runs/mine` (optionally --db DB from `python -m xane3.data ingest`) "
        "and pass --checkpoint runs/mine/best.pt, or --ensemble DIR for several."
    )


def ensemble_dir(directory: str | Path) -> Path:
    """``directory``, or the packaged ensemble (the shipped model and its fine-tuned siblings,
    with their val-fitted calibration) for the bare name ``pretrained``."""
    if str(directory) != ENSEMBLE_ALIAS:
        return Path(directory)
    if not PRETRAINED_ENSEMBLE.is_dir():
        raise FileNotFoundError(f"--ensemble {ENSEMBLE_ALIAS}: this install has no packaged ensemble "
                                f"at {PRETRAINED_ENSEMBLE}; pass ./{ENSEMBLE_ALIAS} for a folder of that name")
    return PRETRAINED_ENSEMBLE


def ensemble_members(directory: str | Path) -> list[Path]:
    """Every ``*.pt`` directly in ``directory`` except resume files (``last.pt``), plus
    ``best.pt`` in any subfolder (run or search-trial directories)."""
    root = ensemble_dir(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such ensemble directory")
    top = [p for p in sorted(root.glob("*.pt")) if p.name != "last.pt"]
    nested = sorted(p for p in root.rglob("best.pt") if p.parent != root)
    members = top + nested
    if not members:
        raise FileNotFoundError(f"{root}: no checkpoints (*.pt, or best.pt in subfolders)")
    return members


def top_k(paths: Sequence[Path], k: int) -> list[Path]:
    """The ``k`` checkpoints with the lowest validation total recorded in their meta: a run's
    ``best`` is its ``train.select_on`` metric (the spectrum MSE alone, say), so ``best_total``
    where recorded, one scale for runs and soups alike."""
    def score(p: Path) -> float:
        meta = read_checkpoint(p)["meta"]
        best = meta.get("best_total", meta.get("best"))
        return float(best) if best is not None else float("inf")
    return sorted(paths, key=score)[:k]


class Ensemble:
    """k models sharing an energy grid and absorbing element."""

    def __init__(self, models: Sequence[torch.nn.Module], paths: Sequence[Path] = ()) -> None:
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.models = list(models)
        self.paths = list(paths)
        grids = [m.energy.cpu().numpy() for m in self.models]
        if any(g.shape != grids[0].shape or not np.allclose(g, grids[0]) for g in grids):
            raise ValueError("ensemble members predict on different energy grids")
        zs = {self.meta(i).absorber_z for i in range(len(self.models))}
        if len(zs) > 1:
            raise ValueError(f"ensemble members were trained for different absorbers {sorted(zs)}")
        self.energy = grids[0].astype(float)
        self.absorber_z = int(zs.pop())

    def meta(self, i: int = 0) -> ModelMetadata:
        return metadata_of(self.models[i])

    @property
    def elements(self) -> set[int] | None:
        """Elements every member saw in training (None when not recorded)."""
        sets = [set(m.elements) for m in map(self.meta, range(len(self.models))) if m.elements]
        return set.intersection(*sets) if sets else None

    @property
    def min_neighbours(self) -> int:
        """Fewest atoms within r_max an absorber may have: half the fewest any member saw in
        training (1, an isolated absorber refused, where a checkpoint does not record it)."""
        lows = [m.absorber_neighbours[0] for m in map(self.meta, range(len(self.models)))
                if m.absorber_neighbours]
        return max(1, max(lows) // 2) if lows else 1

    @property
    def energy_axis(self) -> str:
        """``relative`` (to E0) or ``absolute``: the axis the members were trained on."""
        names = {self.meta(i).energy_axis for i in range(len(self.models))}
        return "absolute" if names == {"absolute"} else "relative"

    @property
    def has_e0(self) -> bool:
        """An E0 head trained on known E0s (untrained statistics stay at mean 0, std 1)."""
        return all(self.meta(i).e0_trained for i in range(len(self.models)))

    def predict(self, atoms: Atoms, groups: list[list[int]]) -> dict[str, np.ndarray]:
        """mean/std spectra [n_groups, n_E], mean/std E0 (eV; NaN without an E0 head) and
        each member's own (``members`` [k, n_groups, n_E], ``members_e0``)."""
        spectra, e0s = [], []
        for m in self.models:
            s, e0 = predict(m, atoms, groups, absorber_z=self.absorber_z, return_e0=True)
            spectra.append(s)
            e0s.append(e0 if e0 is not None and self.has_e0 else np.full(len(groups), np.nan))
        s, e = np.stack(spectra), np.stack(e0s)
        return {"mean": s.mean(0), "std": s.std(0), "e0": e.mean(0), "e0_std": e.std(0),
                "members": s, "members_e0": e}


def load_ensemble(checkpoint: str | Path | None = None, directory: str | Path | None = None,
                  k: int | None = None, device: str | torch.device = "cpu") -> Ensemble:
    """One checkpoint (default: the packaged one) or every member of ``directory``
    (the ``k`` best by validation total when ``k`` is given)."""
    if directory is not None:
        paths = ensemble_members(directory)
        if k is not None:
            paths = top_k(paths, k)
    else:
        paths = [resolve_checkpoint(checkpoint)]
    return Ensemble([load_checkpoint(p, device) for p in paths], paths)
