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
