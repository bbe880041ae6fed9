"""XANESNET reader on a sample of the real Fe training set (read from ../shared, never copied)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import XANESNET, require

from xane3.data.readers.xanesnet import (
    XanesnetError,
    read_xanesnet_dir,
    read_xanesnet_pair,
    read_xanesnet_xyz,
    xanesnet_pairs,
)

PAIRS = xanesnet_pairs(XANESNET) if XANESNET.is_dir() else []
SAMPLE = PAIRS[:: max(1, len(PAIRS) // 20)][:20]


def test_layout() -> None:
    require(XANESNET)
    assert len(PAIRS) == 4079 and len(SAMPLE) == 20
    assert all(x.stem == s.stem for x, s in PAIRS[:50])


@pytest.mark.parametrize("pair", SAMPLE, ids=lambda p: p[0].stem[:24])
def test_sample_parses(pair: tuple[Path, Path]) -> None:
    rec = read_xanesnet_pair(*pair)
    n_atoms = int(pair[0].read_text().split()[0])
    assert len(rec.atoms) == n_atoms and not rec.atoms.pbc.any()
    assert rec.absorbers == [0] or np.linalg.norm(rec.atoms.positions[rec.absorbers[0]]) < 1e-3
    assert rec.absorber_z == 26  # read from the file (the atom at the origin), not assumed
    assert rec.e0 is None and rec.e0_kind == "inflection"
    assert len(rec.energy) == 226 and rec.energy[0] == pytest.approx(7097.0)
    assert rec.energy[-1] == pytest.approx(7172.0) and np.all(np.diff(rec.energy) > 0)
    assert rec.meta == {"code": "fdmnes", "convolved": False, "name": pair[0].stem,
                        "structure_file": str(pair[0])}


def test_dir_limit() -> None:
    recs = read_xanesnet_dir(XANESNET, limit=3)
    assert [Path(r.source).stem for r in recs] == [x.stem for x, _ in PAIRS[:3]]


def test_absorber_z_check() -> None:
    with pytest.raises(XanesnetError, match="has Z=26, expected 29"):
        read_xanesnet_pair(*PAIRS[0], absorber_z=29)


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "mol.xyz"
    p.write_text(text)
    return p


def test_bad_xyz(tmp_path: Path) -> None:
    with pytest.raises(XanesnetError, match="mol.xyz: the first line says 3 atoms, the file holds 2"):
        read_xanesnet_xyz(_write(tmp_path, "3\nc\n26 0 0 0\n8 1.9 0 0\n"))
    # an empty comment line is still the comment: the absorber (first atom) is kept
    assert list(read_xanesnet_xyz(_write(tmp_path, "2\n\n26 0 0 0\n8 1.9 0 0\n")).numbers) == [26, 8]
    with pytest.raises(XanesnetError, match="says 2 atoms, the file holds 3"):
        read_xanesnet_xyz(_write(tmp_path, "2\n\n26 0 0 0\n8 1.9 0 0\n8 0 1.9 0\n"))
    with pytest.raises(XanesnetError, match="mol.xyz: atom rows"):
        read_xanesnet_xyz(_write(tmp_path, "2\nc\n26 0 0 0\nO 1.9 0 0\n"))


def test_no_absorber_at_origin(tmp_path: Path) -> None:
    (tmp_path / "xyz").mkdir()
    (tmp_path / "xanes").mkdir()
    (tmp_path / "xyz" / "m.xyz").write_text("2\nc\n26 0.5 0 0\n8 2.4 0 0\n")
    (tmp_path / "xanes" / "m.txt").write_text(PAIRS[0][1].read_text())
    with pytest.raises(XanesnetError, match="m.xyz: expected one absorber atom at the origin, found 0"):
        read_xanesnet_dir(tmp_path)


def test_unpaired_files(tmp_path: Path) -> None:
    (tmp_path / "xyz").mkdir()
    (tmp_path / "xanes").mkdir()
    (tmp_path / "xyz" / "lonely.xyz").write_text("1\nc\n26 0 0 0\n")
    with pytest.raises(XanesnetError, match="unpaired files, e.g. 'lonely'"):
        xanesnet_pairs(tmp_path)


def test_a_bad_structure_is_skipped_naming_its_xyz(tmp_path: Path, capsys) -> None:
    """Issue 31: NaN coordinates and overlapping atoms were reported under the .txt spectrum."""
    from xane3.data.cli import main

    (tmp_path / "xyz").mkdir()
    (tmp_path / "xanes").mkdir()
    for stem, row in (("nan", "8 nan 0 0"), ("overlap", "8 0.2 0 0")):
        (tmp_path / "xyz" / f"{stem}.xyz").write_text(f"2\nc\n26 0 0 0\n{row}\n")
        (tmp_path / "xanes" / f"{stem}.txt").write_text(PAIRS[0][1].read_text())
    assert main(["ingest", "--xanesnet", str(tmp_path), "--db", str(tmp_path / "x.db"), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'xyz' / 'nan.xyz'}: non-finite atomic positions" in out
    assert f"{tmp_path / 'xyz' / 'overlap.xyz'}: overlapping atoms 0 (Fe) and 1 (O)" in out
