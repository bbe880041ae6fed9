"""Inference for any structure: ``predict(model, atoms, absorbers=None)``.

The structure's graph is built once; every requested absorber site (or group of
sites, pooled as in a multi-absorber FDMNES run) is read out from the same
backbone pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from xane3.config import DEFAULT_ABSORBER_Z
from xane3.data.graphs import StructureGraph, collate
from xane3.data.readers.structures import absorber_sites
from xane3.train.metadata import metadata_of

AbsorberSpec = Sequence[int] | Sequence[Sequence[int]] | None


def default_absorber_z(model: torch.nn.Module) -> int:
    return metadata_of(model).absorber_z


def absorber_groups(atoms: Atoms, absorbers: AbsorberSpec, absorber_z: int = DEFAULT_ABSORBER_Z,
                    source: str = "structure") -> list[list[int]]:
    """Normalise ``absorbers`` to a list of index groups (default: every ``absorber_z`` atom),
    each checked by :func:`~xane3.data.readers.structures.absorber_sites`."""
    if absorbers is None:
        return [[i] for i in absorber_sites(atoms, source, absorber_z)]
    groups = [[int(a)] if np.ndim(a) == 0 else [int(x) for x in a] for a in absorbers]
    return [absorber_sites(atoms, source, absorber_z, g) for g in groups]


def backbone_bytes(model: torch.nn.Module, n_edges: int) -> int:
    """Peak bytes of a no-grad backbone pass: the widest layer's per-edge weights and messages
    (float32), twice over for the temporaries beside them."""
    per_edge = max(int(b.tp.weight_numel) + b.tp_out.dim + b.irreps_in.dim for b in model.blocks)
    per_edge += model.config.radial_hidden + 16
    return 2 * 4 * n_edges * per_edge


def available_bytes() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(model: torch.nn.Module, n_edges: int, n_atoms: int) -> None:
    """Refuse, with the estimate, a structure whose pass would not fit in memory.

    The absorber's attention pools over every atom of the structure, so the structure is
    not cut to the absorbers' receptive field (that would change the prediction)."""
    need, avail = backbone_bytes(model, n_edges), available_bytes()
    if avail is not None and need > 0.8 * avail:
        raise ValueError(f"{n_atoms:,} atoms with {n_edges:,} edges within {model.config.r_max:g} Å need "
                         f"~{need / 2**30:.1f} GB for one backbone pass; {avail / 2**30:.1f} GB are "
                         "available: predict a smaller cell or cluster around the sites")


@torch.no_grad()
def predict(model: torch.nn.Module, atoms: Atoms, absorbers: AbsorberSpec = None,
            absorber_z: int | None = None, return_e0: bool = False):
    """Spectra [n_groups, n_energy] on ``model.energy`` (numpy); E0 in eV too if asked."""
    model.eval()
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    z_abs = absorber_z if absorber_z is not None else default_absorber_z(model)
    groups = absorber_groups(atoms, absorbers, z_abs)
    unseen = sorted(set(int(z) for z in atoms.numbers) - set(range(model.config.num_species)))
    if unseen:
        raise ValueError(f"atomic numbers {unseen} are outside the model's embedding")
    graph = StructureGraph.from_atoms(atoms, model.config.r_max)
    check_fits(model, graph.edge_index.shape[1], len(atoms))
    batch = collate([graph], [(0, g) for g in groups]).to(device, dtype)
    out = model(batch)
    spectra = out["spectrum"].float().cpu().numpy()
    if not return_e0:
        return spectra
    e0 = model.e0_to_ev(out["e0"]).float().cpu().numpy() if "e0" in out else None
    return spectra, e0
