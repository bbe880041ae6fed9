"""What ``python -m xane3.predict`` refuses before the model sees a structure
(``xane3.predict_inputs``): impossible geometries, with the check ingest shares."""

from __future__ import annotations

import pytest
from ase.build import bulk
from ase.io import write

from xane3.predict_cli import main


def _fe_o6(d: float = 2.0):
    from ase import Atoms

    return Atoms("FeO6", positions=[[0, 0, 0], [d, 0, 0], [-d, 0, 0], [0, d, 0], [0, -d, 0],
                                    [0, 0, d], [0, 0, -d]])


def test_impossible_structures_are_refused_with_a_reason(tmp_path, capsys) -> None:
    """Issue 17: an O 0.05 Å from Fe, a NaN coordinate, a zero-volume cell and a bare FeO6
    cluster each gave a normal-looking spectrum and exit 0 with the shipped model."""
    close = _fe_o6()
    close.positions[1] = [0.05, 0.0, 0.0]
    write(tmp_path / "close.xyz", close)
    (tmp_path / "nan.xyz").write_text("2\n\nFe 0 0 0\nO nan 0 0\n")
    flat = bulk("FeO", "rocksalt", a=4.33)
    flat.set_cell([[4.33, 0, 0], [0, 4.33, 0], [0, 0, 1e-4]], scale_atoms=False)
    write(tmp_path / "flat.extxyz", flat)
    write(tmp_path / "feo6.xyz", _fe_o6())
    expected = {"close": "at 0.050 Å < 1.19 Å", "nan": "non-finite atomic positions",
                "flat": "periodic cell of volume", "feo6": "has 6 neighbour(s) within 5 Å"}
    for stem, message in expected.items():
        path = next(tmp_path.glob(f"{stem}.*"))
        assert main([str(path), "--out", str(tmp_path / stem), "--no-plots"]) == 1, stem
        err = capsys.readouterr().err
        assert message in err and "--allow-unphysical" in err, (stem, err)
    assert main([str(tmp_path / "feo6.xyz"), "--out", str(tmp_path / "anyway"), "--no-plots",
                 "--allow-unphysical"]) == 0
    assert "predicting anyway" in capsys.readouterr().err
    assert (tmp_path / "anyway" / "feo6.csv").exists()


def test_ingest_and_prediction_share_the_geometry_check(tmp_path) -> None:
    from xane3.data.readers.structures import StructureError, geometry_problem, validate_structure

    close = _fe_o6()
    close.positions[1] = [0.9, 0.0, 0.0]  # above the 0.5 Å floor, below Fe-O's 1.19 Å
    assert "at 0.900 Å < 1.19 Å" in geometry_problem(close)
    with pytest.raises(StructureError, match="at 0.900 Å < 1.19 Å"):
        validate_structure(close, "close.xyz")
    assert geometry_problem(_fe_o6()) == ""


def _grid(n: int):
    """``n`` atoms 2.5 Å apart on a cubic grid (Fe at the origin, then O), and its cell edge."""
    import numpy as np
    from ase import Atoms

    g = int(round(n ** (1 / 3))) + 1
    k = np.arange(n)
    return Atoms(["Fe"] + ["O"] * (n - 1), positions=2.5 * np.stack([k % g, k // g % g, k // g // g], 1)), 2.5 * g


def _p1_cif(n: int) -> str:
    """A P1 CIF of ``n`` sites in ASE's layout (one multiplicity-1 row per atom)."""
    atoms, edge = _grid(n)
    rows = [f"  {a.symbol} X{a.index} 1.0 {x / edge:.5f} {y / edge:.5f} {z / edge:.5f} 1.0"
            for a, (x, y, z) in zip(atoms, atoms.positions)]
    return "\n".join(["data_big", *(f"_cell_length_{x} {edge}" for x in "abc"),
                      *(f"_cell_angle_{x} 90" for x in ("alpha", "beta", "gamma")),
                      '_space_group_name_H-M_alt "P 1"', "_space_group_IT_number 1",
                      "loop_", "  _space_group_symop_operation_xyz", "  'x, y, z'", "loop_",
                      *(f"  _atom_site_{c}" for c in ("type_symbol", "label", "symmetry_multiplicity",
                                                     "fract_x", "fract_y", "fract_z", "occupancy")),
                      *rows]) + "\n"


@pytest.mark.timeout(120)
def test_a_huge_structure_is_refused_on_its_atom_count_before_it_is_parsed(tmp_path, capsys) -> None:
    """Issue 31: a 10,000-atom CIF took 9 minutes to be refused (ASE's CIF parse is quadratic in
    the atoms), an extxyz 14 s (the geometry checks and the graph came first)."""
    import time

    n = 10_000
    (tmp_path / "big.cif").write_text(_p1_cif(n))
    atoms, _ = _grid(n)
    write(tmp_path / "big.extxyz", atoms)
    (tmp_path / "big.xyz").write_text(f"{n}\n\n" + "".join(f"{z} {x} {y} {w}\n" for z, (x, y, w)
                                                          in zip(atoms.numbers, atoms.positions)))
    t0 = time.perf_counter()
    paths = [str(tmp_path / f"big.{ext}") for ext in ("cif", "extxyz", "xyz")]
    assert main([*paths, "--out", str(tmp_path / "out"), "--no-plots"]) == 1
    assert time.perf_counter() - t0 < 30  # the model's loading, mostly
    err = capsys.readouterr().err
    for path in paths:
        assert f"{path}: 10,000 atoms, more than the 5,000 a structure may hold" in err and "--max-atoms" in err
    write(tmp_path / "feo6.xyz", _fe_o6())
    assert main([str(tmp_path / "feo6.xyz"), "--out", str(tmp_path / "small"), "--no-plots",
                 "--allow-unphysical", "--max-atoms", "6"]) == 1
    assert "7 atoms, more than the 6" in capsys.readouterr().err
