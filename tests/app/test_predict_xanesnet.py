"""``python -m xane3.predict --format xanesnet``: our predictions in XANESNET's own files.

The files written for real XANESNET xyz inputs must parse back with the very
reader the training data go through, on the absolute grid, with the data set's
layout (two header lines, the same column widths).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ase.build import bulk
from ase.io import write

from xane3.config import Config, with_overrides
from xane3.data.dataset import XASDataset
from xane3.data.readers.xanesnet import HEADER, read_xanesnet_pair, read_xanesnet_xyz, xanesnet_pairs
from xane3.model import XANE3
from xane3.overlays import experiment, preset
from xane3.predict_cli import main
from xane3.train.checkpoint import save_checkpoint

XANESNET_TARGET = experiment("xanesnet")  # its axis, split and selection


def make_ckpt(path: Path, overrides: dict, e0_stats: tuple[float, float] | None = (7120.0, 3.0)) -> Path:
    """A tiny untrained model with a trained model's metadata; every element allowed."""
    cfg = with_overrides(Config(), {**preset("tiny"), **overrides})
    torch.manual_seed(0)
    model = XANE3(cfg.model)
    with torch.no_grad():  # an untrained spectrum need not rise; a strong edge step makes it parse
        model.coefficients.net[-1].bias[-1] += 5.0
        if cfg.data.energy_axis == "absolute":  # where the trainer puts it (mean training E0)
            model.background.center.fill_(e0_stats[0] if e0_stats else 7120.0)
    if e0_stats:
        model.e0_mean.fill_(e0_stats[0])
        model.e0_std.fill_(e0_stats[1])
    save_checkpoint(path, model, cfg, absorber_z=26, elements=list(range(1, 119)), best=1.0,
                    energy=model.energy.tolist(), data_hash="test", splits={})
    return path


@pytest.fixture(scope="module")
def pairs(shared_data: Path) -> list[tuple[Path, Path]]:
    all_pairs = xanesnet_pairs(shared_data / "xanesnet-fe-train")
    return all_pairs[:: len(all_pairs) // 4][:4]


@pytest.fixture(scope="module")
def xyz_folder(tmp_path_factory, pairs) -> Path:
    d = tmp_path_factory.mktemp("xyz")
    for x, _ in pairs:
        shutil.copy(x, d / x.name)
    return d


def run(argv: list, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_absolute_model_writes_files_the_training_reader_parses(tmp_path, pairs, xyz_folder, capsys) -> None:
    ckpt = make_ckpt(tmp_path / "abs.pt", XANESNET_TARGET)
    out = tmp_path / "pred"
    rc, text = run(["--checkpoint", ckpt, "--format", "xanesnet", "--out", out, xyz_folder], capsys)
    assert rc == 0, text
    written = sorted(out.glob("*.txt"))
    assert [p.stem for p in written] == sorted(x.stem for x, _ in pairs)
    recs = [read_xanesnet_pair(xyz_folder / f"{p.stem}.xyz", p) for p in written]  # the training reader
    ds = XASDataset.from_records(recs, with_overrides(Config(), XANESNET_TARGET).data)
    for p, rec, sample in zip(written, recs, ds.samples):
        lines = p.read_text().splitlines()
        assert tuple(lines[:2]) == HEADER and len(lines) == 2 + 226
        assert all(len(ln) == 25 for ln in lines[2:])  # the data set's own column widths
        assert rec.energy.shape == (226,) and rec.energy[0] == 7097.0 and rec.energy[-1] == 7172.0
        assert np.max(np.abs(rec.energy - ds.energy)) < 0.006
        assert sample.mask.all() and sample.spectrum.shape == (226,)
    # the numbers are the model's prediction for the atom at the origin, to print precision
    from xane3.ensemble import load_ensemble

    ens = load_ensemble(ckpt)
    atoms = read_xanesnet_xyz(xyz_folder / f"{written[0].stem}.xyz")
    expect = ens.predict(atoms, [[0]])["mean"][0]
    np.testing.assert_allclose(recs[0].mu, expect, rtol=1e-6, atol=1e-9)
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["energy_axis"] == "absolute" and summary["format"] == "xanesnet"
    assert all(s["sites"] == ["Fe0"] and s["files"] == [f"{Path(s['structure']).stem}.txt"]
               for s in summary["structures"])


def test_relative_model_uses_its_e0_head(tmp_path, pairs, capsys) -> None:
    ckpt = make_ckpt(tmp_path / "rel.pt", {})
    x = pairs[0][0]
    rc, text = run(["--checkpoint", ckpt, "--format", "xanesnet", "--out", tmp_path / "p", x], capsys)
    assert rc == 0, text
    e0 = json.loads((tmp_path / "p" / "predictions.json").read_text())["structures"][0]["e0_eV"][0]
    energy = np.loadtxt(tmp_path / "p" / f"{x.stem}.txt", skiprows=2)[:, 0]
    np.testing.assert_allclose(energy, np.round(np.linspace(-30, 100, 150) + e0, 2), atol=1e-9)


def test_relative_model_without_e0_refuses_absolute_output(tmp_path, pairs, capsys) -> None:
    ckpt = make_ckpt(tmp_path / "noe0.pt", {"model.e0_head": False}, e0_stats=None)
    rc, text = run(["--checkpoint", ckpt, "--format", "xanesnet", "--out", tmp_path / "p", pairs[0][0]], capsys)
    assert rc == 1 and "no trained E0 head" in text and pairs[0][0].name in text


def test_csv_output_of_an_absolute_model_and_read_format(tmp_path, pairs, capsys) -> None:
    ckpt = make_ckpt(tmp_path / "abs.pt", XANESNET_TARGET)
    rc, text = run(["--checkpoint", ckpt, "--out", tmp_path / "c", "--no-plots", pairs[1][0]], capsys)
    assert rc == 0, text
    df = pd.read_csv(tmp_path / "c" / f"{pairs[1][0].stem}.csv")
    assert df.columns[0] == "energy_abs_eV" and df["energy_abs_eV"].iloc[-1] == pytest.approx(7172.0)
    assert len(df) == 226 and not any(c.endswith("_energy_abs_eV") for c in df.columns)
    # --read-format is the input reader: force ASE's on an extended-xyz file with an odd name
    feo = tmp_path / "feo.structure"
    write(feo, bulk("FeO", "rocksalt", a=4.33, cubic=True), format="extxyz")
    rc, text = run(["--checkpoint", ckpt, "--out", tmp_path / "c2", "--no-plots", "--read-format",
                    "extxyz", "--sites", "0", feo], capsys)
    assert rc == 0, text
    assert (tmp_path / "c2" / "feo.csv").exists()


def test_bad_inputs_name_the_file(tmp_path, capsys) -> None:
    ckpt = make_ckpt(tmp_path / "abs.pt", XANESNET_TARGET)
    bad = tmp_path / "in" / "bad.xyz"
    bad.parent.mkdir()
    bad.write_text("3\ncomment\n26 0 0 0\n8 1.9 0 0\n")  # truncated XANESNET xyz
    rc, text = run(["--checkpoint", ckpt, "--format", "xanesnet", "--out", tmp_path / "o", bad.parent], capsys)
    assert rc == 1 and "bad.xyz" in text and "truncated" in text
    (tmp_path / "empty").mkdir()
    rc, text = run(["--checkpoint", ckpt, "--out", tmp_path / "o", tmp_path / "empty"], capsys)
    assert rc == 2 and "no structure files" in text
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ckpt), "--format", "cif", str(bad)])  # --format is the output layout


def test_a_sites_file_never_replaces_another_inputs(tmp_path, capsys) -> None:
    """s.cif's two sites are s_Fe0.txt and s_Fe1.txt; s_Fe0.cif's one site was s_Fe0.txt too."""
    ckpt = make_ckpt(tmp_path / "rel.pt", {})
    fe = bulk("Fe", "bcc", a=2.87, cubic=True)
    shifted = fe.copy()
    shifted.translate([0.3, 0.2, 0.1])  # no Fe at the origin: every site is written
    write(tmp_path / "s.cif", shifted)
    write(tmp_path / "s_Fe0.cif", fe)
    rc, text = run(["--checkpoint", ckpt, "--format", "xanesnet", "--out", tmp_path / "p",
                    tmp_path / "s.cif", tmp_path / "s_Fe0.cif"], capsys)
    assert rc == 0, text
    listed = [f for s in json.loads((tmp_path / "p" / "predictions.json").read_text())["structures"]
              for f in s["files"]]
    assert len(listed) == len(set(listed)) == 3, listed
    assert sorted(p.name for p in (tmp_path / "p").glob("*.txt")) == sorted(listed)
