"""What ``python -m xane3.predict`` reads: its structure files and folders, absorber sites and the
checks a structure must pass before the model sees it (kept apart from the command, which
predicts and writes)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from xane3.prediction_files import PredictError


def parse_indices(text: str) -> list[int]:
    """``"3,7"`` -> [3, 7]; ranges ``"0-3"`` allowed."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep and lo else [int(part)])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: expected atom indices like 3,7 or 0-5") from exc
    if not out:
        raise argparse.ArgumentTypeError(f"{text!r}: no atom indices")
    twice = sorted({i for i in out if out.count(i) > 1})
    if twice:  # a site given twice would weigh double in a group and merge two CSV columns
        raise argparse.ArgumentTypeError(f"{text!r}: atom(s) {twice} given more than once")
    return out


def parse_element(text: str) -> int:
    """``Fe`` or ``26`` -> 26."""
    if text.isdigit() and 0 < int(text) < len(chemical_symbols):
        return int(text)
    sym = text.strip().capitalize()
    if sym not in atomic_numbers:
        raise argparse.ArgumentTypeError(f"{text!r} is not an element symbol or atomic number")
    return atomic_numbers[sym]


def check_elements(atoms: Atoms, seen: set[int] | None, source: str, allow: bool = False) -> str | None:
    """Elements the checkpoint never saw in training make its prediction meaningless: refused, or
    with ``allow`` the reason the prediction is out of domain (None when it is not)."""
    if seen is None:
        return None
    unseen = sorted(set(int(z) for z in atoms.numbers) - seen)
    if not unseen:
        return None
    names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in unseen)
    if allow:
        return f"elements never seen in training: {names}"
    known = ", ".join(chemical_symbols[z] for z in sorted(seen))
    raise PredictError(f"{source}: contains {names}, which the checkpoint never saw in training "
                       f"(trained on {known}); use --allow-unseen-elements to predict anyway")


def check_physical(atoms: Atoms, groups: list[list[int]], ens, source: str, allow: bool) -> str | None:
    """The checks ingest runs (one function, ``geometry_problem``), plus the absorbers' surroundings
    against what the model saw in training; refused unless ``--allow-unphysical``, which makes the
    problem the reason the prediction is out of domain (returned; None when there is none)."""
    from xane3.data.readers.structures import absorber_problem, geometry_problem

    problem = geometry_problem(atoms) or absorber_problem(
        atoms, groups, float(ens.models[0].config.r_max), ens.min_neighbours)
    if problem and not allow:
        raise PredictError(f"{source}: {problem}; --allow-unphysical predicts anyway")
    return problem or None


def site_groups(atoms: Atoms, source: str, z_abs: int, sites: list[int] | None,
                group: list[int] | None) -> tuple[list[str], list[list[int]]]:
    """(column labels, absorber groups) for one structure."""
    from xane3.data.readers.structures import StructureError, absorber_sites

    sym = chemical_symbols[z_abs]
    try:
        idx = absorber_sites(atoms, source, z_abs, group if group is not None else sites)
    except StructureError as exc:
        raise PredictError(f"{exc} (the checkpoint predicts the {sym} K-edge)") from exc
    if group is not None:
        return ["group_" + "_".join(f"{sym}{i}" for i in idx)], [idx]
    return [f"{sym}{i}" for i in idx], [[i] for i in idx]


OUTPUT_SUFFIXES = (".csv", ".png")  # what predict writes: never read back as structures


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given; a folder stands for every (non-hidden) file directly in it, sorted; a path
    that is neither is a PredictError."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                           and f.name != "predictions.json" and f.suffix not in OUTPUT_SUFFIXES)
            if not files:
                raise PredictError(f"{p}: folder holds no structure files")
            out.extend(files)
        elif p.exists():
            out.append(p)
        else:  # all inputs are checked before the first prediction: a typo is refused, not "failed"
            raise PredictError(f"{p}: no such structure file or folder")
    return out


def read_input(path: Path, read_format: str | None, max_atoms: int | None = None) -> Atoms:
    """XANESNET xyz (Z in the first column) or anything ASE reads; errors name the file. More
    than ``max_atoms`` (default: the readers' MAX_ATOMS) are refused, before parsing where the
    format says how many."""
    from xane3.data.readers.structures import MAX_ATOMS, StructureError, read_structure
    from xane3.data.readers.xanesnet import XanesnetError, is_xanesnet_xyz, read_xanesnet_xyz

    limit = MAX_ATOMS if max_atoms is None else max_atoms
    try:
        if read_format == "xanesnet" or (read_format is None and path.suffix.lower() == ".xyz"
                                         and is_xanesnet_xyz(path)):
            if not path.is_file():
                raise PredictError(f"{path}: no such structure file")
            return read_xanesnet_xyz(path, limit)
        return read_structure(path, format=read_format, max_atoms=limit)
    except (XanesnetError, StructureError) as exc:
        hint = "; --max-atoms N reads it anyway" if "a structure may hold" in str(exc) else ""
        raise PredictError(f"{exc}{hint}") from exc


def origin_site(atoms: Atoms, z_abs: int) -> int | None:
    """The absorbing-element atom at the origin (XANESNET's absorber), if exactly one."""
    from xane3.data.readers.xanesnet import ORIGIN_TOL

    near = np.flatnonzero((np.linalg.norm(atoms.positions, axis=1) < ORIGIN_TOL) & (atoms.numbers == z_abs))
    return int(near[0]) if len(near) == 1 else None


def unique_stems(paths: list[Path]) -> list[str]:
    """One output name per input: ``a.cif``, ``b/a.xyz`` and ``a_1.cif`` give a, a_1, a_1_1."""
    stems: list[str] = []
    taken: set[str] = set()
    for p in paths:
        stem, n = p.stem or p.name, 0
        name = stem
        while name in taken:
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        stems.append(name)
    return stems
