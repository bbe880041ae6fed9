"""Batches of spectra, grouped by structure so the backbone runs once per structure.

The sampler shuffles structures, then each structure's spectra, and cuts the
concatenated order into batches of ``batch_size`` spectra: an epoch still covers
every training spectrum exactly once, but a batch touches few structures.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from xane3.data.dataset import XASDataset
from xane3.data.graphs import GraphBatch, collate


class SpectrumLoader:
    def __init__(
        self, dataset: XASDataset, indices: Sequence[int], batch_size: int,
        shuffle: bool = False, mode: str = "structure", geometry: torch.nn.Module | None = None,
        seed: int = 0, max_batches: int | None = None, pin_memory: bool = False,
    ) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.mode = mode
        self.geometry = geometry
        self.seed = seed
        self.epoch = 0
        self.max_batches = max_batches
        self.pin_memory = pin_memory

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """Sample order of this epoch (structure-grouped unless mode is 'absorber')."""
        idx = self.indices
        rng = np.random.default_rng((self.seed, self.epoch))
        graph_of = np.array([self.dataset.samples[i].graph for i in idx], dtype=np.int64)
        if self.mode == "absorber":
            return rng.permutation(idx) if self.shuffle else idx[np.argsort(graph_of, kind="stable")]
        graphs = np.unique(graph_of)
        if self.shuffle:
            graphs = rng.permutation(graphs)
        out = []
        for g in graphs:
            members = idx[graph_of == g]
            out.append(rng.permutation(members) if self.shuffle else members)
        return np.concatenate(out) if out else idx

    def __len__(self) -> int:
        n = -(-len(self.indices) // self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    def __iter__(self) -> Iterator[tuple[GraphBatch, dict[str, torch.Tensor], np.ndarray]]:
        order = self.order()
        for b in range(len(self)):
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.make_batch(chunk)

    def make_batch(self, chunk: np.ndarray) -> tuple[GraphBatch, dict[str, torch.Tensor], np.ndarray]:
        ds = self.dataset
        samples = [ds.samples[i] for i in chunk]
        batch = collate(ds.graphs, [(s.graph, s.absorbers) for s in samples], self.mode, self.geometry)
        spec = np.stack([s.spectrum for s in samples])
        mask = np.stack([s.mask for s in samples])
        targets = {
            "spectrum": torch.as_tensor(np.nan_to_num(spec), dtype=torch.float32),
            "mask": torch.as_tensor(mask, dtype=torch.bool),
            "e0": torch.as_tensor([s.e0 for s in samples], dtype=torch.float32),
        }
        if self.pin_memory:
            batch = batch.pin_memory()
            targets = {k: v.pin_memory() for k, v in targets.items()}
        return batch, targets, chunk
