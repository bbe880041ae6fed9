"""Radius graphs with periodic image shifts, and batches of them.

A structure's graph depends on its geometry alone (never on which site absorbs),
so it is built once and its edge features (spherical harmonics, radial basis) are
cached on it. A batch then runs the backbone once per structure and pools each
spectrum's absorber group from it (``structure`` batching); the paper's form, one
graph copy per absorber (``absorber`` batching), gives the same predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list


def neighbours(quantities: str, atoms: Atoms, cutoff: float):
    """ASE's ``neighbor_list``, safe for cell-less structures: the one neighbour search of
    graphs, geometry checks and absorber checks.

    ASE bins atoms in the cell; without one it sized its bins for 3.4 GB at 4,000 atoms
    (10,000: MemoryError). A structure periodic along no axis therefore gets its bounding
    box as a cell (pbc stays off, so no images): the same pairs, distances and vectors.
    """
    if atoms.pbc.any() or len(atoms) == 0:
        return neighbor_list(quantities, atoms, cutoff)
    boxed = atoms.copy()
    pos = boxed.get_positions()
    boxed.cell = np.diag(np.maximum(np.ptp(pos, axis=0), 1e-3) + 2 * cutoff)
    boxed.positions = pos - pos.min(axis=0) + cutoff
    return neighbor_list(quantities, boxed, cutoff)


@dataclass
class StructureGraph:
    """Edges (receiver i, sender j) within r_max, x_ij = r_j - r_i + S_ij cell."""

    z: torch.Tensor  # [N] atomic numbers
    edge_index: torch.Tensor  # [2, E] (receiver, sender)
    edge_vec: torch.Tensor  # [E, 3] float64
    n_atoms: int
    cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_atoms(cls, atoms: Atoms, r_max: float) -> StructureGraph:
        """Library neighbour list (ASE): periodic along pbc axes, molecules too."""
        i, j, vec = neighbours("ijD", atoms, r_max)
        return cls(
            z=torch.as_tensor(atoms.numbers, dtype=torch.long),
            edge_index=torch.as_tensor(np.stack([i, j]), dtype=torch.long),
            edge_vec=torch.as_tensor(vec, dtype=torch.float64),
            n_atoms=len(atoms),
        )

    def features(self, geometry: torch.nn.Module | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Edge (sh, rad) computed once per geometry settings, then reused."""
        if geometry is None:
            return None
        key = geometry.cache_key()
        if key not in self.cache:
            with torch.no_grad():
                sh, rad = geometry(self.edge_vec.to(torch.float32))
            self.cache = {key: (sh, rad)}
        return self.cache[key]


@dataclass
class GraphBatch:
    """What the model reads: the one field contract of a batch (N atoms, E edges, S spectra).

    Samples (spectra) index atoms of the batched graph; an absorber group of several
    equivalent sites is one sample with several ``abs_atom`` rows. The loader's targets
    travel beside it as ``{"spectrum": [S, n_E], "mask": [S, n_E] bool, "e0": [S] (NaN
    unknown)}``; the model returns ``{"spectrum": [S, n_E], "e0": [S] (z-scored, when it has
    the head), "attention": [len(ctx_atom)] weight per context row (attention pooling)}``.
    """

    z: torch.Tensor  # [N] int64 atomic numbers
    edge_index: torch.Tensor  # [2, E] int64 (source, target) atom indices
    edge_vec: torch.Tensor  # [E, 3] float, target - source + periodic shift (Å)
    abs_atom: torch.Tensor  # atoms pooled as absorbers, one entry per (sample, atom)
    abs_sample: torch.Tensor  # [len(abs_atom)] the sample each absorber row belongs to
    ctx_atom: torch.Tensor  # non-absorber atoms the attention of each sample sees
    ctx_sample: torch.Tensor  # [len(ctx_atom)] the sample each context row belongs to
    n_samples: int  # S
    edge_sh: torch.Tensor | None = None  # [E, (l_max+1)^2] cached spherical harmonics
    edge_rad: torch.Tensor | None = None  # [E, num_radial] cached radial basis x cutoff
    node_graph: torch.Tensor | None = None  # [N] structure index (in batch) per node

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> GraphBatch:
        out = {}
        for name, val in self.__dict__.items():
            if isinstance(val, torch.Tensor):
                if dtype is not None and val.is_floating_point():
                    val = val.to(dtype)
                val = val.to(device, non_blocking=True)
            out[name] = val
        return GraphBatch(**out)

    def pin_memory(self) -> GraphBatch:
        return GraphBatch(**{
            k: v.pin_memory() if isinstance(v, torch.Tensor) else v
            for k, v in self.__dict__.items()
        })


def collate(
    graphs: Sequence[StructureGraph],
    samples: Sequence[tuple[int, Sequence[int]]],
    mode: str = "structure",
    geometry: torch.nn.Module | None = None,
) -> GraphBatch:
    """Batch samples ``(graph index, absorber atom indices)``.

    ``structure``: each distinct structure appears once; ``absorber``: one copy per
    sample (the paper's one-graph-per-absorber form, kept for parity and benchmarks).
    """
    if mode == "structure":
        order: list[int] = []
        slot: dict[int, int] = {}
        for g, _ in samples:
            if g not in slot:
                slot[g] = len(order)
                order.append(g)
        sample_slot = [slot[g] for g, _ in samples]
    elif mode == "absorber":
        order = [g for g, _ in samples]
        sample_slot = list(range(len(samples)))
    else:
        raise ValueError(f"unknown batching mode {mode!r}")

    offsets = np.cumsum([0] + [graphs[g].n_atoms for g in order])
    z, ei, ev, sh, rad, node_graph = [], [], [], [], [], []
    for k, g in enumerate(order):
        gr = graphs[g]
        z.append(gr.z)
        ei.append(gr.edge_index + int(offsets[k]))
        ev.append(gr.edge_vec)
        node_graph.append(torch.full((gr.n_atoms,), k, dtype=torch.long))
        feats = gr.features(geometry)
        if feats is not None:
            sh.append(feats[0])
            rad.append(feats[1])

    abs_atom, abs_sample, ctx_atom, ctx_sample = [], [], [], []
    for s, ((g, group), k) in enumerate(zip(samples, sample_slot)):
        n = graphs[g].n_atoms
        group_t = torch.as_tensor(sorted(set(int(a) for a in group)), dtype=torch.long)
        if group_t.numel() == 0:
            raise ValueError(f"sample {s} has no absorber atoms")
        if int(group_t.min()) < 0 or int(group_t.max()) >= n:
            raise ValueError(f"sample {s}: absorber index out of range for {n} atoms")
        keep = torch.ones(n, dtype=torch.bool)
        keep[group_t] = False
        ctx = torch.nonzero(keep).squeeze(-1)
        abs_atom.append(group_t + int(offsets[k]))
        abs_sample.append(torch.full((group_t.numel(),), s, dtype=torch.long))
        ctx_atom.append(ctx + int(offsets[k]))
        ctx_sample.append(torch.full((ctx.numel(),), s, dtype=torch.long))

    return GraphBatch(
        z=torch.cat(z),
        edge_index=torch.cat(ei, dim=1),
        edge_vec=torch.cat(ev),
        abs_atom=torch.cat(abs_atom),
        abs_sample=torch.cat(abs_sample),
        ctx_atom=torch.cat(ctx_atom),
        ctx_sample=torch.cat(ctx_sample),
        n_samples=len(samples),
        edge_sh=torch.cat(sh) if sh else None,
        edge_rad=torch.cat(rad) if rad else None,
        node_graph=torch.cat(node_graph),
    )
