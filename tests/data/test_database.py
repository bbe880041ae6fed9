"""ASE database round trip, re-ingest, bad records, structure checks and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.db import connect
from ase.io import write
from data_fixtures import FDMNES_OUTPUTS, TIO2, XANESNET, feff_small  # noqa: F401  (fixture)

from xane3.data.cli import main
from xane3.data.database import Source, clean_key_value_pairs, ingest, iter_rows, structure_id, summarize
from xane3.data.normalize import default_grid
from xane3.data.readers.fdmnes_run import read_fdmnes_run
from xane3.data.readers.feff import read_feff_dir
from xane3.data.readers.structures import StructureError, read_structure, validate_structure
from xane3.data.record import SpectrumRecord

RUNS = ["run_0", "run_1", "run_13"]  # 1, 2 and 3 inequivalent Ti sites


@pytest.fixture(scope="module")
def records(feff_small: Path) -> list[SpectrumRecord]:  # noqa: F811
    recs = [read_fdmnes_run(TIO2 / r)[0] for r in RUNS]
    return recs + read_feff_dir(feff_small)


def _good_edge(source: str, atoms: Atoms | None, absorbers: list[int], mu_nan: bool = False) -> SpectrumRecord:
    e = np.linspace(7080.0, 7250.0, 400)
    mu = 0.5 + np.arctan((e - 7120.0) / 2.0) / np.pi
    if mu_nan:
        mu[100] = np.nan
    return SpectrumRecord(e, mu, source, 26, e0=7118.0, e0_kind="fermi", atoms=atoms, absorbers=absorbers,
                          meta={"code": "synthetic", "facet": "001", "phase": "FeO", "parent": None})


def test_round_trip(records: list[SpectrumRecord], tmp_path: Path) -> None:
    db_path = tmp_path / "spectra.db"
    report = ingest(records, db_path, progress=False)
    assert (report.added, report.replaced, report.skipped) == (4, 0, [])
    rows = {Path(r["source"]).name: r for r in iter_rows(db_path)}
    assert set(rows) == {"run_0_conv.txt", "run_1_conv.txt", "run_13_conv.txt", "xmu.dat"}
    for rec in records:
        row = rows[Path(rec.source).name]
        np.testing.assert_allclose(row["atoms"].cell.array, rec.atoms.cell.array)
        np.testing.assert_array_equal(row["atoms"].pbc, rec.atoms.pbc)
        np.testing.assert_allclose(row["atoms"].positions, rec.atoms.positions)
        assert row["absorbers"] == rec.absorbers and row["absorber_z"] == rec.absorber_z
        assert row["structure_id"] == structure_id(rec.atoms) and row["e0"] == pytest.approx(rec.e0)
        np.testing.assert_array_equal(row["energy"], default_grid())
        assert row["mask"].dtype == bool and np.isnan(row["spectrum"][~row["mask"]]).all()
        assert row["e0_kind"] == "fermi" and row["convolved"] is True
    assert rows["run_13_conv.txt"]["meta"]["shift_sites"] == pytest.approx([0.2174, 0.0, 0.1562])
    db = connect(str(db_path))
    row = db.get(code="feff")  # plain ASE access works too
    assert row.toatoms().get_chemical_formula() == "Fe13O6" and row.data["absorbers"].tolist() == [0]
    assert db.metadata["grid"] == [-30.0, 100.0, 150]


def test_reingest_does_not_duplicate(records: list[SpectrumRecord], tmp_path: Path) -> None:
    db_path = tmp_path / "spectra.db"
    ingest(records[:2], db_path, progress=False)
    report = ingest(records, db_path, progress=False)
    assert (report.added, report.replaced) == (2, 2)
    assert len(list(iter_rows(db_path))) == 4
    with pytest.raises(ValueError, match="written on grid"):
        ingest(records, db_path, grid=default_grid(-20, 80, 101), progress=False)
    Path(f"{db_path}.lock").touch()  # what a writer killed inside ASE's write leaves: ASE waited forever
    assert ingest(records, db_path, progress=False).replaced == 4  # taken over
    assert not Path(f"{db_path}.lock").exists()


def test_bad_records_are_skipped_with_reasons(tmp_path: Path) -> None:
    fe = Atoms("FeO", positions=[[0, 0, 0], [2.0, 0, 0]])
    items = [
        _good_edge("good.txt", fe, [0]),
        _good_edge("nan.txt", fe, [0], mu_nan=True),
        _good_edge("overlap.txt", Atoms("FeO", positions=[[0, 0, 0], [0.3, 0, 0]]), [0]),
        _good_edge("noabs.txt", fe, []),
        _good_edge("nostructure.txt", None, []),
        Source("broken_run", lambda: read_fdmnes_run(FDMNES_OUTPUTS / "zno-classic")),
    ]
    report = ingest(items, tmp_path / "s.db", progress=False)
    reasons = dict(report.skipped)
    assert report.added == 1 and len(reasons) == 5
    assert "nan.txt: mu has 1 NaN" in reasons["nan.txt"]
    assert "overlap.txt: overlapping atoms 0 (Fe) and 1 (O)" in reasons["overlap.txt"]
    assert "noabs.txt: no absorber atom" in reasons["noabs.txt"]
    assert "no structure" in reasons["nostructure.txt"]
    assert "zno-classic" in reasons["broken_run"] and "without a structure" in reasons["broken_run"]
    (row,) = iter_rows(tmp_path / "s.db")
    assert row["facet"] == "(001)" and row["phase"] == "FeO" and "parent" not in row


def test_key_value_pairs_are_made_valid(tmp_path: Path) -> None:
    kvp = clean_key_value_pairs({"energy": 1.0, "bad key": "x", "none": None, "nan": float("nan"),
                                 "n": np.int64(3), "flag": np.bool_(True), "Fe": 2, "facet": "110"})
    assert kvp == {"x_energy": 1.0, "bad_key": "x", "n": 3, "flag": True, "fe": 2, "facet": "(110)"}
    connect(str(tmp_path / "k.db")).write(Atoms("H"), key_value_pairs=kvp)  # ASE accepts them


def test_structure_id_is_stable() -> None:
    a = bulk("Fe", "bcc", a=2.87, cubic=True)
    b = a.copy()
    b.positions += 1e-7
    assert structure_id(a) == structure_id(b)
    b.positions[0, 0] += 0.01
    assert structure_id(a) != structure_id(b)


def test_read_structures(tmp_path: Path) -> None:
    cif = read_structure(TIO2 / "structures" / "mp-390_O4Ti2.cif")
    assert cif.get_chemical_formula() == "O4Ti2" and cif.pbc.all()
    for name, fmt in (("POSCAR", "vasp"), ("s.extxyz", "extxyz")):
        write(tmp_path / name, cif, format=fmt)
        back = read_structure(tmp_path / name)
        np.testing.assert_allclose(back.cell.array, cif.cell.array, atol=1e-6)
    (tmp_path / "junk.cif").write_text("this is not a cif\n")
    with pytest.raises(StructureError, match="junk.cif: cannot read structure"):
        read_structure(tmp_path / "junk.cif")
    with pytest.raises(StructureError, match="missing.cif: no such"):
        read_structure(tmp_path / "missing.cif")


def test_validate_structure_is_periodic_aware() -> None:
    a = Atoms("FeO", scaled_positions=[[0.0, 0, 0], [0.98, 0, 0]], cell=[10, 10, 10], pbc=True)
    with pytest.raises(StructureError, match=r"s.cif: overlapping atoms .* 0.200 Å"):
        validate_structure(a, "s.cif")  # 0.2 Å across the boundary
    a.pbc = False
    validate_structure(a, "s.cif", absorbers=[0], absorber_z=26)  # 9.8 Å apart without images
    with pytest.raises(StructureError, match="s.cif: no absorber atom .no atom with Z=29"):
        validate_structure(a, "s.cif", absorber_z=29)
    with pytest.raises(StructureError, match=r"absorbers \[1 \(O\)\] are not Fe \(Z=26\)"):
        validate_structure(a, "s.cif", absorbers=[1], absorber_z=26)


def test_cli_ingest_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str], feff_small: Path) -> None:  # noqa: F811
    db = tmp_path / "cli.db"
    rc = main(["ingest", "--fdmnes", str(TIO2 / "run_0"), str(FDMNES_OUTPUTS / "zno-classic"),
               "--feff", str(feff_small), "--xanesnet", str(XANESNET), "--limit", "2",
               "--db", str(db), "--grid", "-30,100,150", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "4 added, 0 replaced, 1 skipped" in out and "zno-classic" in out
    assert main(["info", "--db", str(db), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 4 and info["structures"] == 4 and info["grid"] == [-30.0, 100.0, 150]
    assert info["absorbers"] == {"Ti": 1, "Fe": 3} and info["labels"]["code"] == {"fdmnes": 3, "feff": 1}
    assert set(info["e0"]) == {"Ti/fermi", "Fe/fermi", "Fe/inflection"}
    assert main(["info", "--db", str(db)]) == 0
    assert "structures 4" in capsys.readouterr().out
    assert summarize(db)["coverage"]["full_rows"] >= 1
    for argv in (["--help"], ["ingest", "--help"], ["info", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0


def test_foreign_and_corrupt_databases_are_refused_and_untouched(tmp_path, xanesnet_records) -> None:
    """Issue 17: `info` on a plain SQLite file wrote ASE tables into it (8,192 -> 73,728 bytes),
    ingest appended rows into another tool's ASE DB, a corrupt file gave a traceback."""
    import sqlite3

    from ase import Atoms
    from ase.db import connect

    from xane3.data.database import ingest, summarize

    plain = tmp_path / "plain.db"
    with sqlite3.connect(plain) as con:
        con.execute("CREATE TABLE t (x)")
    before = plain.read_bytes()
    with pytest.raises(ValueError, match="not an ASE database"):
        summarize(plain)
    with pytest.raises(ValueError, match="not an ASE database"):
        ingest(xanesnet_records[:2], plain, progress=False)
    assert plain.read_bytes() == before
    other = tmp_path / "other.db"
    connect(str(other)).write(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]))
    with pytest.raises(ValueError, match="not written by `python -m xane3.data ingest`"):
        ingest(xanesnet_records[:2], other, progress=False)
    assert connect(str(other)).count() == 1
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    with pytest.raises(ValueError, match="not a readable SQLite database"):
        summarize(junk)


def test_cli_errors_are_one_line_and_empty_ingests_fail(tmp_path, capsys) -> None:
    from xane3.data.cli import main

    plain = tmp_path / "plain.db"
    import sqlite3

    with sqlite3.connect(plain) as con:
        con.execute("CREATE TABLE t (x)")
    assert main(["info", "--db", str(plain)]) == 2 and "not an ASE database" in capsys.readouterr().err
    assert main(["ingest", "--fdmnes", str(tmp_path / "missing"), "--db", str(tmp_path / "x.db")]) == 2
    assert "no such folder" in capsys.readouterr().err
    bad = tmp_path / "bad" / "xyz"
    bad.mkdir(parents=True)
    (tmp_path / "bad" / "xanes").mkdir()
    (bad / "m1.xyz").write_text("garbage\n")
    (tmp_path / "bad" / "xanes" / "m1.txt").write_text("garbage\n")
    out = tmp_path / "empty.db"
    assert main(["ingest", "--xanesnet", str(tmp_path / "bad"), "--db", str(out), "--no-progress"]) == 1
    assert not out.exists() and "nothing ingested" in capsys.readouterr().err


def test_a_db_locked_by_another_writer_is_one_line_and_untouched(tmp_path, capsys) -> None:
    """Issue 17: concurrent ingests ended in ``sqlite3.OperationalError: database is locked``."""
    import sqlite3

    db = tmp_path / "x.db"
    assert main(["ingest", "--xanesnet", str(XANESNET), "--limit", "2", "--db", str(db), "--no-progress"]) == 0
    before = db.read_bytes()
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # what a second writer in the middle of its transaction holds
    try:
        assert main(["ingest", "--xanesnet", str(XANESNET), "--limit", "3", "--db", str(db),
                     "--no-progress"]) == 2  # refused before writing a row
        assert f"{db}: locked by another writer" in capsys.readouterr().err
    finally:
        holder.rollback()
        holder.close()
    assert db.read_bytes() == before


def test_an_interrupted_first_ingest_leaves_nothing_behind(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C mid-ingest rolled the rows back but kept the new DB's grid, which then refused a
    retry on another --grid. The XANESNET reader is wrapped to raise Ctrl-C on its second file
    (a real SIGINT cannot be timed inside one process)."""
    import xane3.data.readers.xanesnet as xr
    from xane3.data.cli import main

    real, calls = xr.read_xanesnet_pair, []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(xr, "read_xanesnet_pair", interrupted)
    db = tmp_path / "first.db"
    args = ["ingest", "--xanesnet", str(XANESNET), "--limit", "3", "--db", str(db), "--no-progress"]
    with pytest.raises(KeyboardInterrupt):
        main(args + ["--grid", "-30,100,150"])
    assert not db.exists()
    monkeypatch.setattr(xr, "read_xanesnet_pair", real)
    assert main(args + ["--grid", "-20,80,100"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "--xanesnet", str(XANESNET), "--limit", "-5", "--db", str(db)])
    assert exc.value.code == 2 and "expected >= 1" in capsys.readouterr().err


def test_mixed_e0_references_warn(records, xanesnet_records) -> None:
    """FEFF's Fermi level and XANESNET's inflection point are eV apart on the relative axis."""
    from xane3.config import DataConfig
    from xane3.data.dataset import XASDataset

    feff = [r for r in records if r.meta.get("code") == "feff"]
    with pytest.warns(UserWarning, match=r"mix E0 references \(fermi: 1, inflection: 2\)"):
        XASDataset.from_records(feff + xanesnet_records[:2], DataConfig())
