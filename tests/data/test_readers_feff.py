"""FEFF reader on real FEFF10 output: the committed FeO run and a fresh run of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import feff_run, feff_small  # noqa: F401  (fixtures)

from xane3.data.readers.feff import FeffError, find_feff_runs, read_feff_dir, read_feff_inp, read_xmu


def test_xmu_columns_and_fermi_level(feff_small: Path) -> None:  # noqa: F811
    x = read_xmu(feff_small / "xmu.dat")
    assert len(x.omega) == 140 and x.fermi == pytest.approx(-1.710)
    np.testing.assert_allclose(x.omega - x.e + x.fermi, x.e0, atol=1e-6)  # the same at every row
    assert abs(np.interp(x.e0, x.omega, x.k)) < 0.05  # k = 0 at E0: E0 is the Fermi level
    assert np.all(np.diff(x.omega) > 0) and x.mu.max() > 1.0


def test_feff_record(feff_small: Path) -> None:  # noqa: F811
    (rec,) = read_feff_dir(feff_small)
    assert rec.absorber_z == 26 and rec.absorbers == [0] and rec.e0_kind == "fermi"
    assert rec.e0 == pytest.approx(7117.083, abs=1e-3)
    assert len(rec.atoms) == 19 and not rec.atoms.pbc.any()
    assert rec.atoms.get_chemical_formula() == "Fe13O6"
    d = rec.atoms.get_distances(0, range(1, 19))
    assert np.isclose(d, 2.165).sum() == 6 and np.isclose(d, 3.06177, atol=1e-4).sum() == 12
    assert rec.meta["code"] == "feff" and rec.meta["edge"] == "K"
    assert find_feff_runs(feff_small.parent) == [feff_small]


def test_real_feff_run_matches_committed(feff_run: tuple[Path, float], feff_small: Path) -> None:  # noqa: F811
    """A fresh FEFF10 run of the committed input reads the same (the file is real output)."""
    work, seconds = feff_run
    (new,) = read_feff_dir(work)
    (old,) = read_feff_dir(feff_small)
    assert seconds < 60
    assert new.e0 == pytest.approx(old.e0, abs=1e-3)
    np.testing.assert_allclose(new.energy, old.energy, atol=1e-3)
    np.testing.assert_allclose(new.mu, old.mu, rtol=1e-4, atol=1e-6)


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("feff.inp", "xmu.dat"):
        shutil.copy(src / name, dst / name)
    return dst


def test_truncated_xmu_names_file(feff_small: Path, tmp_path: Path) -> None:  # noqa: F811
    run = _copy(feff_small, tmp_path / "run")
    text = (run / "xmu.dat").read_text()
    (run / "xmu.dat").write_text(text[: len(text) - 40])  # cut the last row mid-line
    with pytest.raises(FeffError, match=r"run/xmu.dat.*truncated"):
        read_feff_dir(run)


def test_missing_fermi_level(feff_small: Path, tmp_path: Path) -> None:  # noqa: F811
    run = _copy(feff_small, tmp_path / "run")
    text = (run / "xmu.dat").read_text().replace("Mu=", "Xx=")
    (run / "xmu.dat").write_text(text)
    with pytest.raises(FeffError, match="xmu.dat: no 'Mu='"):
        read_xmu(run / "xmu.dat")


def test_missing_structure(feff_small: Path, tmp_path: Path) -> None:  # noqa: F811
    run = _copy(feff_small, tmp_path / "run")
    (run / "feff.inp").unlink()
    with pytest.raises(FeffError, match="xmu.dat: no feff.inp.*without a structure"):
        read_feff_dir(run)


def test_no_absorber_in_atoms(feff_small: Path, tmp_path: Path) -> None:  # noqa: F811
    run = _copy(feff_small, tmp_path / "run")
    lines = (run / "feff.inp").read_text().splitlines()
    lines = [ln.replace(" 0  Fe ", " 2  Fe ") if ln.strip().startswith("0.00000    0.00000    0.00000")
             else ln for ln in lines]
    (run / "feff.inp").write_text("\n".join(lines) + "\n")
    with pytest.raises(FeffError, match=r"feff.inp: expected one absorber \(potential 0\).*found 0"):
        read_feff_inp(run / "feff.inp")
