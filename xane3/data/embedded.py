"""The embedded FEFF10 data set shipped in ``xane3/data/embedded_shards`` (issue 3).

Shards are append-only Parquet files written by ``python -m xane3.datagen spectra``;
each row is one Fe K-edge spectrum of one absorber in a periodic slab. Ids are those of
the atoms as read back (``xane3.data.identity``): shards written before 2026-12 store
the generator's older SHA-1 names, which read back renamed, parents included.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

from xane3.data.identity import structure_id
from xane3.data.record import SpectrumRecord

SHARD_DIR = Path(__file__).resolve().parent / "embedded_shards"
_META = ("phase", "facet", "parent", "site_kind", "rattle", "feff_settings", "scf_converged",
         "structure_id", "rattle_sigma_pos", "rattle_sigma_cell", "feff_version")


def read_shards(shard_dir: str | Path | None = None) -> list[SpectrumRecord]:
    """Every spectrum of every shard (file-name order), raw: absolute energies, e0 = Fermi."""
    import pyarrow.parquet as pq

    shard_dir = Path(shard_dir) if shard_dir is not None else SHARD_DIR
    records: list[SpectrumRecord] = []
    renamed: dict[str, str] = {}  # stored structure_id -> structure_id(atoms read back)
    seen: dict[str, str] = {}  # key -> shard: a spectrum written twice (two generations at once)
    for path in sorted(shard_dir.glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            if row["key"] in seen:  # would sit on both sides of a random split
                warnings.warn(f"{path}: spectrum {row['key']} is also in {seen[row['key']]}; "
                              "read once", stacklevel=2)
                continue
            seen[row["key"]] = path.name
            atoms = Atoms(numbers=row["numbers"],
                          positions=np.asarray(row["positions"], np.float64).reshape(-1, 3),
                          cell=np.asarray(row["cell"], np.float64).reshape(3, 3),
                          pbc=row["pbc"])
            meta = {k: row[k] for k in _META}
            meta.update(code=row["code"], convolved=False, relaxed=False, key=row["key"],
                        rattle=int(row["rattle"]), scf_converged=bool(row["scf_converged"]))
            meta["structure_id"] = structure_id(atoms)  # the id of the atoms as read back
            records.append(SpectrumRecord(
                energy=np.asarray(row["energy"], np.float64),
                mu=np.asarray(row["mu"], np.float64), source=f"embedded:{path.name}#{row['key']}",
                absorber_z=26, e0=float(row["e0"]), e0_kind="fermi", atoms=atoms,
                absorbers=[int(row["absorber"])], meta=meta))
            renamed[row["structure_id"]] = meta["structure_id"]
    for r in records:  # a parent is named by its unrattled slab's row, as read back too
        r.meta["parent"] = renamed.get(r.meta["parent"], r.meta["parent"])
    return records


def load_embedded(cfg=None, shard_dir: str | Path | None = None):
    """The embedded set as the ``XASDataset`` that ``xane3.train`` uses.

    Raw FEFF spectra are normalised here by the same code as every other source.
    """
    from xane3.config import DataConfig
    from xane3.data.dataset import XASDataset

    cfg = cfg if cfg is not None else DataConfig()
    records = read_shards(shard_dir)
    if not records:
        where = shard_dir or SHARD_DIR
        raise FileNotFoundError(f"{where}: the embedded data set has no shards yet; "
                                "run `python -m xane3.datagen spectra` or pass --db")
    return XASDataset.from_records(records, cfg, name="embedded-feff10")
