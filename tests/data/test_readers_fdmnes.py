"""FDMNES reader on the real outputs in ../shared/data/fdmnes-outputs (all three styles)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import FDMNES_OUTPUTS, TIO2, fdmnes_spectrum_files, require

from xane3.data.readers.fdmnes import FdmnesError, read_fdmnes_input, read_fdmnes_output
from xane3.data.readers.fdmnes_run import find_runs, read_fdmnes_run, site_outputs, site_shifts
from xane3.data.readers.structures import read_structure

FILES = fdmnes_spectrum_files()
RUNS = find_runs(TIO2) if TIO2.is_dir() else []


def test_reference_data_present() -> None:
    require(FDMNES_OUTPUTS)
    assert len(FILES) >= 60 and len(RUNS) == 21


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FDMNES_OUTPUTS)))
def test_every_output_parses(path: Path) -> None:
    out = read_fdmnes_output(path)
    assert len(out.energy) > 100
    assert np.all(np.diff(out.energy) > 0)
    assert np.all(np.isfinite(out.mu)) and out.mu.max() > 0
    assert list(out.columns)[:2] == ["Energy", "<xanes>"]
    if "conv" not in path.name:  # per-site outputs carry the full header
        assert out.e_edge is not None and out.e_cut is not None and out.epsii is not None
        assert out.header["Z"] in (22.0, 30.0, 42.0)


def test_header_styles() -> None:
    zno = read_fdmnes_output(FDMNES_OUTPUTS / "zno-classic" / "ZnO_FDMNES.txt")
    assert (zno.e_edge, zno.header["Z"]) == (9659.0, 30.0)
    assert zno.e_cut == pytest.approx(-1.4639996) and zno.epsii == pytest.approx(9496.2698)
    assert zno.energy[0] == -30.0 and zno.energy[-1] == 70.0
    mo = read_fdmnes_output(FDMNES_OUTPUTS / "mo2c-2022" / "FDMNES_2022_Mo2C_out.dat")
    assert (mo.e_edge, mo.header["Z"]) == (20000.0, 42.0)
    assert mo.e_cut == pytest.approx(-5.01332)  # labelled E_Fermi in 2022
    assert any("Revision 20th of January 2022" in c for c in mo.comments)
    conv = read_fdmnes_output(FDMNES_OUTPUTS / "mo2c-2022" / "FDMNES_2022_Mo2C_out_conv.dat")
    assert conv.header["Shift"] == pytest.approx(0.6943) and conv.header["Gamma_hole"] == 1.25
    assert conv.e_edge == 20000.0 and conv.e_cut == 0.0
    ti = read_fdmnes_output(TIO2 / "run_1" / "run_1_2.txt")
    assert ti.epsii == pytest.approx(4854.166) and ti.multiplicity == 4.0


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_site_shifts_match_fdmnes_log(run: Path) -> None:
    """Our Epsii_i - min Epsii is the Shift FDMNES printed for each site."""
    inp = read_fdmnes_input(run / "fdmnes_in.txt")
    sites = [read_fdmnes_output(p) for p in site_outputs(run, inp.filout)]
    logged = [float(x) for x in re.findall(r"Shift =\s*([-0-9.]+) eV", (run / "fdmnes_stdout.txt").read_text())]
    assert len(logged) == len(sites)
    np.testing.assert_allclose(site_shifts(sites), logged, atol=1.5e-3)


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_run_record(run: Path) -> None:
    (rec,) = read_fdmnes_run(run)
    inp = read_fdmnes_input(run / "fdmnes_in.txt")
    sites = [read_fdmnes_output(p) for p in site_outputs(run, inp.filout)]
    assert rec.absorber_z == 22 and rec.meta["code"] == "fdmnes" and rec.meta["convolved"] is True
    assert rec.meta["edge"] == "K"  # "Edge" then "K" on the next line: a name, not a keyword
    assert rec.absorbers == [i for i, z in enumerate(rec.atoms.numbers) if z == 22]  # every Ti
    assert rec.atoms.pbc.all()
    assert rec.atoms.get_volume() == pytest.approx(sites[0].header["UnitCell_Volume"], rel=1e-5)
    ref = sites[int(np.argmin(site_shifts(sites)))]
    assert rec.e0 == pytest.approx(4966.0 + ref.e_cut) and rec.e0_kind == "fermi"
    assert rec.energy[0] == pytest.approx(4966.0 - 20.0)
    assert rec.meta["n_sites"] == len(sites) and rec.source.endswith("_conv.txt")


@pytest.mark.parametrize("run", RUNS[:4], ids=lambda p: p.name)
def test_structure_matches_source_cif(run: Path) -> None:
    name = json.loads((run / "run_metadata.json").read_text())["structure"]
    cif = read_structure(TIO2 / "structures" / f"{name}.cif")
    (rec,) = read_fdmnes_run(run)
    assert rec.atoms.get_chemical_formula() == cif.get_chemical_formula()
    assert rec.atoms.get_volume() == pytest.approx(cif.get_volume(), rel=1e-4)


@pytest.mark.parametrize("folder", ["zno-classic", "mo2c-2022"])
def test_no_input_means_no_ingest(folder: str) -> None:
    with pytest.raises(FdmnesError, match=f"{folder}.*without a structure"):
        read_fdmnes_run(FDMNES_OUTPUTS / folder)


def test_truncated_output_names_file(tmp_path: Path) -> None:
    lines = (TIO2 / "run_0" / "run_0.txt").read_text().splitlines()
    bad = tmp_path / "run_0.txt"
    bad.write_text("\n".join(lines[:300] + [lines[300][:12]]))  # cut mid-row: energy, no mu
    with pytest.raises(FdmnesError, match="run_0.txt.*truncated"):
        read_fdmnes_output(bad)
    cut = tmp_path / "cut.txt"  # cut mid-number: '4.6629969E-01' -> '4.' still parses as a float
    text = (TIO2 / "run_0" / "run_0.txt").read_text()
    cut.write_text(text.rstrip("\n")[:-11])
    with pytest.raises(FdmnesError, match="cut.txt: the last line .* without a newline"):
        read_fdmnes_output(cut)
    cut.write_text(text.rstrip("\n"))  # whole, only the final newline missing: read
    rows = text.rstrip("\n").splitlines()  # ... also where the exponent's sign turns at the end
    rows[-2:] = ["   49.9000  9.9000000E-01", "   50.0000  1.0100000E+00"]
    turned = tmp_path / "turned.txt"
    turned.write_text("\n".join(rows))
    assert read_fdmnes_output(turned).mu[-1] == pytest.approx(1.01)
    assert len(read_fdmnes_output(cut).energy) == len(read_fdmnes_output(TIO2 / "run_0" / "run_0.txt").energy)
    empty = tmp_path / "empty_conv.txt"
    empty.write_text("    Energy    <xanes>\n")
    with pytest.raises(FdmnesError, match="empty_conv.txt"):
        read_fdmnes_output(empty)


def test_molecule_input_and_default_absorber(tmp_path: Path) -> None:
    inp = tmp_path / "mol_in.txt"
    inp.write_text("Filout\n out/mol\n\nRange\n -10 0.5 40\n\n"
                   "Molecule   ! FDMNES frame: coordinates times a, b, c\n 1.9 1.9 1.9 90 90 90\n"
                   " 29 0 0 0\n 8 1 0 0\n 8 -1 0 0\n 8 0 1 0\n\nEnd\n")
    m = read_fdmnes_input(inp)
    assert m.filout == "out/mol" and m.z_absorber == 29  # first atom, as FDMNES does; no Fe assumed
    assert not m.atoms.pbc.any() and m.atoms.get_distance(0, 1) == pytest.approx(1.9)
    assert m.absorbers is None
    inp.write_text(inp.read_text().replace("Molecule", "Absorber\n 2\n\nMolecule"))
    m = read_fdmnes_input(inp)
    assert m.absorbers == [1] and m.z_absorber == 8


def test_input_errors(tmp_path: Path) -> None:
    nostruct = tmp_path / "a_in.txt"
    nostruct.write_text("Filout\n a\nZ_absorber\n 26\nEnd\n")
    with pytest.raises(FdmnesError, match="a_in.txt.*no Crystal"):
        read_fdmnes_input(nostruct)
    short = tmp_path / "b_in.txt"
    short.write_text("Crystal\n 3 3 3 90 90 90\n 26 0 0\nEnd\n")
    with pytest.raises(FdmnesError, match="b_in.txt"):
        read_fdmnes_input(short)


@pytest.mark.parametrize(("z_abs", "atoms", "error"), [
    (22, " 8 0 0 0\n 8 0.5 0.5 0.5", "in.txt: no absorber atom .no atom with Z=22"),
    (26, " 22 0 0 0\n 8 0.5 0.5 0.5", "run_0.txt: Z=22 but the input says Z_absorber=26"),
])
def test_run_without_absorber(tmp_path: Path, z_abs: int, atoms: str, error: str) -> None:
    run = tmp_path / "run_x"
    run.mkdir()
    for name in ("run_0.txt", "run_0_conv.txt"):
        (run / name).write_text((TIO2 / "run_0" / name).read_text())
    (run / "fdmfile.txt").write_text("1\nin.txt\n")
    (run / "in.txt").write_text(f"Filout\n run_0\nZ_absorber\n {z_abs}\nCrystal\n 4 4 4 90 90 90\n{atoms}\nEnd\n")
    with pytest.raises(FdmnesError, match=error):
        read_fdmnes_run(run)


def test_without_site_outputs_e0_is_the_inflection_not_a_guess(tmp_path: Path) -> None:
    """Only a site output states the Fermi level; the convolution header's E_cut is not it."""
    import shutil

    run = tmp_path / "run_0"
    shutil.copytree(TIO2 / "run_0", run)
    whole = read_fdmnes_run(run)[0]
    assert whole.e0_kind == "fermi" and whole.e0 is not None
    for p in site_outputs(run, "run_0"):
        p.unlink()
    conv = run / "run_0_conv.txt"  # as FDMNES 2022 writes it: E_edge and E_cut in its header
    conv.write_text("#  4966.0  1.25  15.0  0.0 = E_edge, Gamma_hole, Gamma_max, E_cut\n" + conv.read_text())
    conv_only = read_fdmnes_run(run)[0]
    assert conv_only.e0 is None and conv_only.e0_kind == "inflection"
    np.testing.assert_allclose(conv_only.energy, whole.energy)  # E_edge still places the axis


def test_a_multi_job_folder_and_a_binary_file_are_named(tmp_path: Path) -> None:
    """fdmfile.txt listing two jobs was read as its first alone; a non-UTF-8 output gave a
    bare UnicodeDecodeError naming no file."""
    import shutil

    run = tmp_path / "run_0"
    shutil.copytree(TIO2 / "run_0", run)
    (run / "fdmfile.txt").write_text("2\nfdmnes_in.txt\nother_in.txt\n")
    with pytest.raises(FdmnesError, match="fdmfile.txt: lists 2 jobs"):
        read_fdmnes_run(run)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"  Energy  <xanes>\n\xd0\xff\x00\x81\n")
    with pytest.raises(FdmnesError, match="bin.txt: not a text file"):
        read_fdmnes_output(binary)


def test_a_convolution_cut_at_a_line_boundary_is_refused(tmp_path: Path) -> None:
    """700 of its rows end at 38.8 eV, the site output beside it at 50 eV: read whole, it
    was ingested short."""
    import shutil

    run = tmp_path / "run_0"
    shutil.copytree(TIO2 / "run_0", run)
    conv = next(run.glob("*_conv.txt"))
    conv.write_text("\n".join(conv.read_text().splitlines()[:700]) + "\n")
    with pytest.raises(FdmnesError, match=r"_conv.txt: spans -20.00\.\.3\d\.\d\d eV, its site outputs"):
        read_fdmnes_run(run)
