"""The dataset every trainer reads: structures (graphs built once) and spectra.

A spectrum ("sample") points at a structure and an absorber group within it, so a
slab holding 27 absorbers is one graph and 27 targets, not 27 graphs.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from xane3.config import DEFAULT_ABSORBER_Z, DataConfig
from xane3.data.graphs import StructureGraph
from xane3.data.identity import structure_id


@dataclass
class Sample:
    graph: int
    absorbers: list[int]
    spectrum: np.ndarray  # on the dataset grid, NaN where not covered
    mask: np.ndarray
    e0: float
    meta: dict[str, Any] = field(default_factory=dict)


def regrid(src: np.ndarray, y: np.ndarray, mask: np.ndarray,
           dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear re-interpolation that never extrapolates past covered points.

    A destination point is covered only if it lies between two covered source
    points (interpolating the mask as 0/1 gives exactly 1 there).
    """
    if src.shape == dst.shape and np.allclose(src, dst):
        return np.where(mask, y, np.nan), mask.copy()
    inside = (dst >= src[0] - 1e-9) & (dst <= src[-1] + 1e-9)
    covered = inside & (np.interp(dst, src, mask.astype(float)) > 1.0 - 1e-9)
    out = np.interp(dst, src, np.where(mask, y, 0.0))
    return np.where(covered, out, np.nan), covered


class XASDataset:
    """Structures + spectra on one energy grid, with a hash to pin checkpoints to data."""

    def __init__(self, atoms: list[Atoms], samples: list[Sample], energy: np.ndarray,
                 r_max: float, name: str = "") -> None:
        self.atoms = atoms
        self.samples = samples
        self.energy = np.asarray(energy, dtype=np.float64)
        self.r_max = r_max
        self.name = name
        self.graphs = [StructureGraph.from_atoms(a, r_max) for a in
                       tqdm(atoms, desc="graphs", leave=False, disable=len(atoms) < 50 or None)]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def n_structures(self) -> int:
        return len(self.atoms)

    def group_labels(self, kind: str) -> list[str]:
        if kind in ("facet", "phase"):
            labels = [s.meta.get(kind) for s in self.samples]
            missing = sum(v in (None, "") for v in labels)
            if missing:
                raise ValueError(f"data.split={kind}: {missing} of {len(labels)} spectra in {self.name or 'the data'} "
                                 f"carry no {kind} label (the embedded slabs do; molecules do not)")
            return [str(v) for v in labels]
        if kind == "parent":
            if not any(s.meta.get("parent") for s in self.samples):  # else it is 'structure'
                raise ValueError(f"data.split=parent: no spectrum in {self.name or 'the data'} carries a "
                                 "parent label (the embedded slabs' rattled copies do; ingested runs "
                                 "do with `ingest --parent-folder`); use data.split=structure")
            return [str(s.meta.get("parent") or s.meta.get("structure_id")) for s in self.samples]
        labels = [str(s.meta.get("structure_id")) for s in self.samples]
        self._warn_if_cut_clusters(labels)
        return labels

    def _warn_if_cut_clusters(self, labels: list[str]) -> None:
        """FEFF's feff.inp holds a cluster cut around the absorber, so each inequivalent site
        of one crystal is a structure of its own: a structure split would then put sites of
        one crystal on both sides, silently no better than random."""
        cut = [lab for s, lab in zip(self.samples, labels)
               if s.meta.get("code") == "feff" and not self.atoms[s.graph].pbc.any()]
        if len(set(cut)) > 1:
            warnings.warn(f"data.split=structure: {len(cut)} FEFF spectra in {self.name or 'the data'} are "
                          "each their own structure (feff.inp holds a cluster cut around each absorber), "
                          "so sites of one crystal can land in train and test; ingest runs laid out "
                          "ROOT/STRUCTURE/SITE/ with --parent-folder and use data.split=parent",
                          UserWarning, stacklevel=3)

    def absorber_z(self) -> int:
        """The absorbing element (most common over samples; Fe when unlabelled)."""
        zs = [int(s.meta["absorber_z"]) for s in self.samples if "absorber_z" in s.meta]
        return max(set(zs), key=zs.count) if zs else DEFAULT_ABSORBER_Z

    def data_hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.energy.tobytes())
        for s in self.samples:
            h.update(str(s.meta.get("source", "")).encode())
            h.update(str(s.absorbers).encode())
            h.update(np.nan_to_num(s.spectrum).astype(np.float32).tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Atoms, dict, dict]], cfg: DataConfig,
                  name: str = "") -> XASDataset:
        """Rows are (atoms, data, key_value_pairs) in the database schema.

        The default target (edge-step normalised, relative axis) on the row's own grid is
        its stored spectrum; any other target or grid is rebuilt from the row's raw spectrum
        by the same :func:`~xane3.data.targets.make_target` that records go through (a
        coarse stored spectrum interpolated onto a finer grid would smear its peaks). Rows
        of older DBs, without a raw spectrum, are interpolated.
        """
        grid = np.linspace(cfg.e_min, cfg.e_max, cfg.n_points)
        default = cfg.normalization == "edge_step" and cfg.energy_axis == "relative"

        def targets() -> Iterable[tuple]:
            for atoms, data, kvp in rows:
                absorbers = [int(a) for a in np.atleast_1d(data["absorbers"])]
                own = np.asarray(data["energy"], float)
                same_grid = own.shape == grid.shape and np.allclose(own, grid)
                if default and (same_grid or "raw_mu" not in data):
                    spec, mask = regrid(own, np.asarray(data["spectrum"], float),
                                        np.asarray(data["mask"], bool), grid)
                    e0 = float(kvp.get("e0", np.nan))
                else:
                    spec, mask, e0 = _raw_target(atoms, data, kvp, absorbers, cfg, name)
                yield atoms, absorbers, spec, mask, e0, kvp

        return cls._assemble(targets(), cfg, grid, name)

    @classmethod
    def _assemble(cls, items: Iterable[tuple], cfg: DataConfig, grid: np.ndarray,
                  name: str) -> XASDataset:
        """(atoms, absorbers, spectrum, mask, e0, kvp) on ``grid`` -> the dataset."""
        atoms_list: list[Atoms] = []
        index: dict[str, int] = {}
        samples: list[Sample] = []
        for atoms, absorbers, spec, mask, e0, kvp in items:
            sid = str(kvp.get("structure_id") or structure_id(atoms))
            if sid not in index:
                index[sid] = len(atoms_list)
                atoms_list.append(atoms)
            meta = {k: v for k, v in kvp.items()}
            meta["structure_id"] = sid
            samples.append(Sample(index[sid], absorbers, spec, mask, e0, meta))
            if cfg.subset is not None and len(samples) >= cfg.subset:
                break
        if not samples:
            raise ValueError(f"{name or 'dataset'}: no spectra")
        kinds = Counter(str(s.meta["e0_kind"]) for s in samples if "e0_kind" in s.meta)
        if len(kinds) > 1 and cfg.energy_axis == "relative":  # several eV apart: the axes disagree
            warnings.warn(f"{name or 'dataset'}: spectra mix E0 references ("
                          + ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
                          + "); on the relative axis a code's Fermi level and an inflection point "
                          "differ by several eV, so their edges do not line up", UserWarning, stacklevel=3)
        return cls(atoms_list, samples, grid, cfg.r_max, name=name)

    @classmethod
    def from_records(cls, records: Iterable, cfg: DataConfig, name: str = "",
                     skip_bad: bool = False) -> XASDataset:
        """Raw reader records -> targets (``cfg.normalization``, ``cfg.energy_axis``)."""
        from xane3.data.normalize import SpectrumError
        from xane3.data.targets import make_target

        grid = np.linspace(cfg.e_min, cfg.e_max, cfg.n_points)

        def targets() -> Iterable[tuple]:
            for rec in records:
                if rec.atoms is None:
                    raise ValueError(f"{rec.source}: spectrum has no structure; cannot train on it")
                try:
                    norm = make_target(rec, cfg)
                except SpectrumError:
                    if skip_bad:
                        continue
                    raise
                kvp = {k: v for k, v in rec.meta.items() if isinstance(v, (str, int, float, bool))}
                kvp.update(e0=norm.e0, e0_kind=norm.e0_kind, absorber_z=rec.absorber_z,
                           source=rec.source)
                yield (rec.atoms, [int(a) for a in rec.absorbers],
                       np.where(norm.mask, norm.spectrum, np.nan), norm.mask.copy(), float(norm.e0), kvp)

        return cls._assemble(targets(), cfg, grid, name)

    @classmethod
    def from_db(cls, path: str | Path, cfg: DataConfig) -> XASDataset:
        from ase.db import connect

        from xane3.data.database import check_db

        path = check_db(path)  # read-only look first: a foreign file is refused, untouched
        db = connect(str(path), type="db")  # as ingest wrote it, whatever the name
        rows = ((r.toatoms(), r.data, r.key_value_pairs) for r in db.select())
        return cls.from_rows(rows, cfg, name=str(path))


def load_dataset(cfg: DataConfig) -> XASDataset:
    """The configured DB, or the embedded FEFF10 set when none is named."""
    if cfg.db:
        return XASDataset.from_db(cfg.db, cfg)
    from xane3.data.embedded import load_embedded

    return load_embedded(cfg)


def load_training_data(cfg: DataConfig, want: str | None, n: int = 0) -> XASDataset:
    """A checkpoint's own training data, found again by its hash.

    The embedded set is append-only (shards sorted by creation time), so a model
    trained when it was smaller trained on a prefix of it: when the whole set no
    longer matches the hash ``want``, the prefix of the checkpoint's size ``n`` is tried.
    """
    ds = load_dataset(cfg)
    if ds.data_hash() != want and cfg.db is None and 0 < n < len(ds):
        import dataclasses

        prefix = load_dataset(dataclasses.replace(cfg, subset=n))
        if prefix.data_hash() == want:
            return prefix
    return ds


def _raw_target(atoms: Atoms, data: dict, kvp: dict, absorbers: list[int], cfg: DataConfig,
                name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """A database row's raw spectrum as the configured target (spectrum, mask, e0)."""
    from xane3.data.record import SpectrumRecord
    from xane3.data.targets import make_target

    source = str(kvp.get("source", "?"))
    if "raw_energy" not in data or "raw_mu" not in data:
        raise ValueError(
            f"{name or 'database'}: row {source} holds no raw spectrum (raw_energy/raw_mu), only the "
            f"edge-step normalised one on the relative grid, so data.normalization="
            f"{cfg.normalization!r} with data.energy_axis={cfg.energy_axis!r} cannot be built from it. "
            "The DB was written by an older `python -m xane3.data ingest`: ingest the files again "
            "into a new DB.")
    e0 = kvp.get("e0")
    rec = SpectrumRecord(energy=np.asarray(data["raw_energy"], float),
                         mu=np.asarray(data["raw_mu"], float), source=source,
                         absorber_z=int(kvp.get("absorber_z", DEFAULT_ABSORBER_Z)),
                         e0=None if e0 is None else float(e0),
                         e0_kind=str(kvp.get("e0_kind", "inflection")), atoms=atoms,
                         absorbers=absorbers)
    norm = make_target(rec, cfg)
    return norm.spectrum, norm.mask, float(norm.e0)
