"""The spectra database: an ASE SQLite file with one row per spectrum.

Schema (also in the README):
- ``row.toatoms()``: the structure (cell and pbc kept; periodic when known).
- ``row.data``: ``energy`` (grid, eV relative to E0), ``spectrum`` (normalised,
  NaN where not covered), ``mask`` (covered grid points), ``absorbers`` (atom
  indices this spectrum averages over), ``meta`` (non-scalar reader metadata),
  ``raw_energy`` / ``raw_mu`` (the reader's spectrum as read: absolute eV and
  un-normalised mu), so every target option (``data.normalization``,
  ``data.energy_axis``) can be built from the DB, not only the stored one.
- key-value pairs: ``e0`` (absolute eV), ``e0_kind`` (fermi | inflection),
  ``edge_step``, ``absorber_z``, ``n_absorbers``, ``source`` (the file; the
  re-ingest key), ``structure_id`` (hash of numbers, positions, cell, pbc),
  ``spectrum_id`` (hash of structure_id, absorbers and raw spectrum: a spectrum already
  stored from another file is skipped as a duplicate; computed on read for older rows) and,
  when the reader knows them, ``parent``, ``phase``, ``facet``, ``site_kind``,
  ``code``, ``convolved`` and other scalar metadata. ASE forbids None values,
  reserved names and strings that read as numbers: None is dropped, keys are
  sanitised, and a numeric-looking string such as facet ``001`` becomes ``(001)``.
- ``db.metadata["grid"] = [e_min, e_max, n]``: every row shares this grid.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.db import connect
from ase.db.core import reserved_keys
from tqdm.auto import tqdm

from xane3 import lock
from xane3.data.dbfile import SCHEMA, WRITER, check_db, lock_path
from xane3.data.identity import spectrum_id, structure_id
from xane3.data.normalize import default_grid, normalize_record
from xane3.data.readers.structures import validate_structure
from xane3.data.record import SpectrumRecord

_KEY_RE = re.compile(r"[^A-Za-z0-9_]")


def _is_numeric_string(value: str) -> bool:
    if value.strip().lower() in {"true", "false"}:
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def clean_key_value_pairs(pairs: dict[str, Any]) -> dict[str, Any]:
    """Make pairs acceptable to ase.db: drop None/NaN, plain Python scalars,
    lower-case identifier keys (never read as formulas) that are not ASE-reserved
    (``energy`` -> ``x_energy``), numeric-looking strings wrapped in parentheses."""
    out: dict[str, Any] = {}
    for key, value in pairs.items():
        if value is None:
            continue
        k = _KEY_RE.sub("_", str(key)).lower()
        if not k or k[0].isdigit():
            k = "k_" + k
        if k in reserved_keys:
            k = "x_" + k
        if isinstance(value, (bool, np.bool_)):
            out[k] = bool(value)
        elif isinstance(value, (int, np.integer)):
            out[k] = int(value)
        elif isinstance(value, (float, np.floating)):
            if math.isfinite(float(value)):
                out[k] = float(value)
        elif isinstance(value, str):
            out[k] = f"({value})" if _is_numeric_string(value) else value
    return out


@dataclass
class Source:
    """A lazily read input: ``read()`` returns its records or raises; ``name`` is reported."""

    name: str
    read: Callable[[], list[SpectrumRecord]]


@dataclass
class IngestReport:
    db_path: str
    added: int = 0
    replaced: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (source, stored source)

    @property
    def written(self) -> int:
        return self.added + self.replaced

    def summary(self) -> str:
        dups = f", {len(self.duplicates)} duplicates skipped" if self.duplicates else ""
        lines = [f"{self.db_path}: {self.added} added, {self.replaced} replaced, {len(self.skipped)} skipped{dups}"]
        lines += [f"  skipped {src}: {reason}" for src, reason in self.skipped]
        if self.duplicates:
            lines.append("  duplicates (the same structure and spectrum as a stored row, from another file), e.g.:")
            lines += [f"    {src} = {first}" for src, first in self.duplicates[:3]]
        return "\n".join(lines)


def _grid_spec(grid: np.ndarray) -> list[float]:
    return [float(grid[0]), float(grid[-1]), int(len(grid))]


def source_key(source: str | Path) -> str:
    """The re-ingest key: the resolved path when ``source`` is a file, else as given."""
    p = Path(source)
    return str(p.resolve()) if p.exists() else str(source)


def row_payload(record: SpectrumRecord, grid: np.ndarray) -> tuple[Atoms, dict[str, Any], dict[str, Any]]:
    """(atoms, key_value_pairs, data) for one record; raises ValueError naming the file."""
    if record.atoms is None:
        raise ValueError(f"{record.source}: no structure: a spectrum without one cannot be ingested")
    # a fault of the structure is named by its own file (XANESNET's .xyz), not the spectrum's
    validate_structure(record.atoms, record.meta.get("structure_file") or record.source,
                       record.absorbers, record.absorber_z)
    norm = normalize_record(record, grid)
    atoms = record.atoms.copy()
    atoms.calc = None
    scalars = {k: v for k, v in record.meta.items() if not isinstance(v, (list, tuple, dict, np.ndarray))}
    extra = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in record.meta.items()
             if k not in scalars}
    kvp = clean_key_value_pairs({
        **scalars, "e0": norm.e0, "e0_kind": norm.e0_kind, "edge_step": norm.edge_step,
        "absorber_z": int(record.absorber_z), "n_absorbers": len(record.absorbers),
        "source": source_key(record.source), "structure_id": structure_id(atoms)})
    kvp["spectrum_id"] = spectrum_id(kvp["structure_id"], record.absorbers, record.energy, record.mu)
    data = {"energy": norm.energy, "spectrum": norm.spectrum, "mask": norm.mask,
            "absorbers": np.asarray(record.absorbers, dtype=np.int64), "meta": extra,
            "raw_energy": np.asarray(record.energy, dtype=np.float64),
            "raw_mu": np.asarray(record.mu, dtype=np.float64)}
    return atoms, kvp, data


def ingest(items: Iterable[SpectrumRecord | Source], db_path: str | Path, grid: np.ndarray | None = None,
           progress: bool = True, total: int | None = None) -> IngestReport:
    """Normalise and store records (or lazily read Sources) in ``db_path``.

    A row is keyed on its ``source``: re-ingesting replaces it, never duplicates; a spectrum
    already stored from another file (a copied or moved folder) is skipped and counted.
    A source or record that fails (unreadable, no structure, overlapping atoms, no
    absorber, cannot be normalised) is skipped and listed with its reason.
    A DB written on another grid is refused (its rows could not be mixed). One ingest at a
    time writes a DB (``DB.lock``); a killed one's lock is taken over and its journal rolled back.
    """
    grid = default_grid() if grid is None else np.asarray(grid, dtype=float)
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    report = IngestReport(str(db_path))
    with lock.held(lock_path(db_path), WRITER, db_path):  # one writer; a killed one's is taken over
        check_db(db_path, writing=True)  # never append into another tool's (or a corrupt) file
        _write_rows(connect(str(db_path), type="db", use_lock_file=False), items, grid, report,
                    progress, total)
    return report


def _write_rows(db, items, grid: np.ndarray, report: IngestReport, progress: bool, total: int | None) -> None:
    meta = dict(db.metadata)
    if "grid" in meta and not np.allclose(meta["grid"], _grid_spec(grid)):
        raise ValueError(f"{report.db_path}: written on grid {meta['grid']}, not {_grid_spec(grid)}")
    if "grid" not in meta:
        db.metadata = {**meta, "grid": _grid_spec(grid), "schema": SCHEMA}
    rows = [row for row in db.select(include_data=False) if "source" in row]
    existing = {row.source: (row.id, set(row.key_value_pairs)) for row in rows}
    sid = {row.source: stored_spectrum_id(row.key_value_pairs, None if "spectrum_id" in row
                                          else db.get(id=row.id).data) for row in rows}  # older rows: from data
    stored = {s: src for src, s in sid.items()}  # spectrum_id -> the source holding it
    with db:  # one transaction: fast for thousands of rows
        for item in tqdm(items, total=total, disable=not progress, desc="ingest", unit="file"):
            if isinstance(item, Source):
                try:
                    records = item.read()
                except Exception as exc:  # report any unreadable file and go on
                    report.skipped.append((item.name, f"{type(exc).__name__}: {exc}"))
                    continue
            else:
                records = [item]
            for rec in records:
                try:
                    atoms, kvp, data = row_payload(rec, grid)
                except Exception as exc:
                    report.skipped.append((str(rec.source), f"{type(exc).__name__}: {exc}"))
                    continue
                src, new = kvp["source"], kvp["spectrum_id"]
                first = stored.setdefault(new, src)
                if first != src:
                    report.duplicates.append((str(rec.source), first))
                    continue
                if sid.get(src) not in (None, new) and stored.get(sid[src]) == src:
                    del stored[sid[src]]  # a changed file no longer holds its old spectrum
                sid[src] = new
                old = existing.get(src)
                if old is None:
                    existing[src] = (db.write(atoms, key_value_pairs=kvp, data=data), set(kvp))
                    report.added += 1
                else:  # in place: ase's delete() vacuums the whole file on every call
                    db.update(old[0], atoms=atoms, delete_keys=sorted(old[1] - set(kvp)), data=data, **kvp)
                    existing[src] = (old[0], set(kvp))
                    report.replaced += 1


def stored_spectrum_id(kvp: dict[str, Any], data: dict[str, Any] | None) -> str:
    """A row's ``spectrum_id``, computed from its data for rows written before it was stored."""
    if "spectrum_id" in kvp:
        return str(kvp["spectrum_id"])
    data = data or {}
    raw = "raw_energy" in data  # older still: only the normalised spectrum
    return spectrum_id(kvp["structure_id"], data["absorbers"], data["raw_energy" if raw else "energy"],
                       data["raw_mu" if raw else "spectrum"])


def iter_rows(db_path: str | Path, **selection: Any) -> Iterator[dict[str, Any]]:
    """Plain dicts per row: id, atoms, energy, spectrum, mask, absorbers, meta, and
    every key-value pair; ``selection`` is passed to ``db.select`` (e.g. code="feff")."""
    db_path = check_db(db_path)
    db = connect(str(db_path), type="db")
    for row in db.select(**selection):
        data = row.data
        yield {"id": row.id, "atoms": row.toatoms(), "spectrum_id": stored_spectrum_id(row.key_value_pairs, data),
               "energy": np.asarray(data["energy"], float), "spectrum": np.asarray(data["spectrum"], float),
               "mask": np.asarray(data["mask"], bool), "absorbers": [int(a) for a in data["absorbers"]],
               "meta": dict(data.get("meta", {})), **row.key_value_pairs}


LABELS = ("code", "convolved", "e0_kind", "phase", "facet", "site_kind")


def summarize(db_path: str | Path) -> dict[str, Any]:
    """Rows, structures, elements, absorbers, grid coverage, E0 range and label counts."""
    db_path = check_db(db_path)
    meta = dict(connect(str(db_path), type="db").metadata)
    structures: dict[str, set[str]] = {}
    absorber = Counter()
    labels: dict[str, Counter] = {k: Counter() for k in LABELS}
    e0: dict[str, list[float]] = {}
    covered, starts, ends, with_parent, n = [], [], [], 0, 0
    for r in iter_rows(db_path):
        n += 1
        structures.setdefault(r["structure_id"], set(r["atoms"].get_chemical_symbols()))
        absorber[chemical_symbols[r["absorber_z"]]] += 1
        for k in LABELS:
            if k in r:
                labels[k][str(r[k])] += 1
        with_parent += "parent" in r
        e0.setdefault(f"{chemical_symbols[r['absorber_z']]}/{r.get('e0_kind')}", []).append(float(r["e0"]))
        m, g = r["mask"], r["energy"]
        covered.append(m.mean())
        if m.any():
            starts.append(g[m][0])
            ends.append(g[m][-1])
    elements = Counter(sym for syms in structures.values() for sym in syms)
    return {
        "db": str(db_path), "rows": n, "structures": len(structures),
        "elements": dict(sorted(elements.items())), "absorbers": dict(absorber),
        "grid": meta.get("grid"),
        "coverage": {"mean_fraction": float(np.mean(covered)) if covered else 0.0,
                     "full_rows": int(sum(c == 1.0 for c in covered)),
                     "start_range": [float(min(starts)), float(max(starts))] if starts else None,
                     "end_range": [float(min(ends)), float(max(ends))] if ends else None},
        "e0": {k: {"min": min(v), "max": max(v), "mean": float(np.mean(v)), "n": len(v)}
               for k, v in e0.items()},
        "labels": {k: dict(c) for k, c in labels.items() if c},
        "with_parent": with_parent,
    }
