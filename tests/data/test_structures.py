"""Structure files: one ordered structure per file, or an error naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

from xane3.data.readers.structures import StructureError, geometry_problem, read_structure

CIF_HEAD = """data_x
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
"""


def test_a_file_of_several_frames_is_refused_not_cut_to_the_last(tmp_path: Path) -> None:
    frames = [bulk("Fe", "bcc", a=a, cubic=True) for a in (2.80, 2.87, 2.95)]
    write(tmp_path / "traj.extxyz", frames)
    write(tmp_path / "multi.cif", frames)
    for name in ("traj.extxyz", "multi.cif"):
        with pytest.raises(StructureError, match=f"{name}: holds 3 structures"):
            read_structure(tmp_path / name)
    assert read_structure(tmp_path / "traj.extxyz", index=1).cell[0, 0] == pytest.approx(2.87)
    write(tmp_path / "one.cif", frames[0])
    assert len(read_structure(tmp_path / "one.cif")) == 2


def test_sites_ase_would_merge_are_refused(tmp_path: Path) -> None:
    """Two Fe 0.0004 Å apart: ASE keeps one (a warning, or silently with occupancies)."""
    plain = tmp_path / "dup.cif"
    plain.write_text(CIF_HEAD + "Fe1 Fe 0.25 0.25 0.25\nFe2 Fe 0.2501 0.25 0.25\nO1 O 0.75 0.75 0.75\n")
    with pytest.raises(StructureError, match="dup.cif: two sites coincide"):
        read_structure(plain)
    occ = tmp_path / "dup_occ.cif"
    occ.write_text(CIF_HEAD + "_atom_site_occupancy\nFe1 Fe 0.25 0.25 0.25 1.0\n"
                   "Fe2 Fe 0.2501 0.25 0.25 1.0\nO1 O 0.75 0.75 0.75 1.0\n")
    with pytest.raises(StructureError, match="dup_occ.cif: site.* 1 coincide"):
        read_structure(occ)


def test_partial_or_mixed_occupancy_is_refused(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.cif"
    mixed.write_text(CIF_HEAD + "_atom_site_occupancy\nFe1 Fe 0.25 0.25 0.25 0.5\n"
                     "O1 O 0.75 0.75 0.75 1.0\n")
    with pytest.raises(StructureError, match=r"mixed.cif: site 0 has partial or mixed occupancy \(Fe 0.5\)"):
        read_structure(mixed)
    ordered = tmp_path / "ordered.cif"
    ordered.write_text(CIF_HEAD + "_atom_site_occupancy\nFe1 Fe 0.25 0.25 0.25 1.0\n"
                       "O1 O 0.75 0.75 0.75 1.0\n")
    assert read_structure(ordered).get_chemical_formula() == "FeO"


def test_an_atomic_number_that_is_no_element_is_a_problem() -> None:
    for z in (0, 260):
        atoms = Atoms(numbers=[26, z], positions=[[0, 0, 0], [2, 0, 0]])
        assert f"atomic number {z}, not an element" in geometry_problem(atoms)
    assert geometry_problem(Atoms(numbers=[26, 8], positions=[[0, 0, 0], [2, 0, 0]])) == ""
