"""``python -m xane3.predict``: one spectrum per absorber site, clear errors, ensembles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ase.build import bulk
from ase.io import read, write
from conftest import REPO

from xane3.config import Config, with_overrides
from xane3.ensemble import ensemble_members, load_ensemble, top_k
from xane3.inference import predict
from xane3.model import XANE3
from xane3.overlays import preset
from xane3.predict_cli import main
from xane3.sites import site_average
from xane3.train.checkpoint import load_checkpoint, save_checkpoint


def make_checkpoint(path: Path, seed: int = 0, elements: tuple[int, ...] = (8, 26), best: float = 1.0,
                    **meta) -> Path:
    """A small untrained model with the meta a trained one carries (random but valid)."""
    cfg = with_overrides(Config(), preset("tiny"))
    torch.manual_seed(seed)
    model = XANE3(cfg.model)
    model.e0_mean.fill_(7120.0)
    model.e0_std.fill_(3.0)
    save_checkpoint(path, model, cfg, absorber_z=26, elements=list(elements), best=best,
                    energy=model.energy.tolist(), data_hash="test", splits={}, **meta)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="module")
def cifs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cifs")
    feo = bulk("FeO", "rocksalt", a=4.33, cubic=True)  # 4 Fe (even indices), 4 O
    feo.rattle(0.02, seed=1)
    paths = {"feo": d / "feo.cif", "mgo": d / "mgo.cif", "fes": d / "fes.cif", "broken": d / "broken.cif"}
    write(paths["feo"], feo)
    write(paths["mgo"], bulk("MgO", "rocksalt", a=4.21, cubic=True))
    write(paths["fes"], bulk("FeS", "rocksalt", a=5.2, cubic=True))
    paths["broken"].write_text("data_broken\n_cell_length_a oops\nthis is not a CIF loop\n")
    return paths


def run(argv: list, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_one_spectrum_per_absorber_site(ckpt, cifs, tmp_path, capsys) -> None:
    rc, text = run(["--checkpoint", ckpt, cifs["feo"], "--out", tmp_path], capsys)
    assert rc == 0, text
    df = pd.read_csv(tmp_path / "feo.csv")
    sites = [c for c in df.columns if c.startswith("Fe") and "_" not in c]
    assert sites == ["Fe0", "Fe2", "Fe4", "Fe6"]
    assert len(df) == 150 and df["energy_rel_eV"].iloc[0] == pytest.approx(-30.0)
    # the model predicts E0: one absolute axis per site, E0 + relative energy
    e0 = df["Fe0_energy_abs_eV"] - df["energy_rel_eV"]
    assert np.allclose(e0, e0.iloc[0]) and 7000 < e0.iloc[0] < 7300
    assert (tmp_path / "feo.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "predictions.json").read_text())
    assert summary["structures"][0]["sites"] == sites and not summary["errors"]
    # the CLI's numbers are the library's
    model = load_checkpoint(ckpt)
    ref = predict(model, read(cifs["feo"]), [[0], [2], [4], [6]])
    assert np.allclose(df[sites].to_numpy().T, ref, atol=1e-5)


def test_sites_and_site_group(ckpt, cifs, tmp_path, capsys) -> None:
    rc, text = run(["--checkpoint", ckpt, cifs["feo"], "--sites", "2,6", "--out", tmp_path / "a",
                    "--no-plots"], capsys)
    assert rc == 0, text
    df = pd.read_csv(tmp_path / "a" / "feo.csv")
    assert [c for c in df.columns if not c.endswith("eV")] == ["Fe2", "Fe6", "site_average"]
    rc, text = run(["--checkpoint", ckpt, cifs["feo"], "--site-group", "0,2", "--out", tmp_path / "b",
                    "--no-plots"], capsys)
    assert rc == 0, text
    df = pd.read_csv(tmp_path / "b" / "feo.csv")
    assert [c for c in df.columns if not c.endswith("eV")] == ["group_Fe0_Fe2"]
    with pytest.raises(SystemExit):  # mutually exclusive
        main(["--checkpoint", str(ckpt), str(cifs["feo"]), "--sites", "0", "--site-group", "0,2"])
    with pytest.raises(SystemExit):  # a site twice would weigh double in the group's average
        main(["--checkpoint", str(ckpt), str(cifs["feo"]), "--site-group", "0,0,2"])
    assert "given more than once" in capsys.readouterr().err
    rc, text = run(["--checkpoint", ckpt, cifs["feo"], "--sites", "1", "--out", tmp_path / "c"], capsys)
    assert rc != 0 and "1 (O)" in text and "not Fe" in text


def test_structure_without_fe_fails_clearly(ckpt, cifs, tmp_path, capsys) -> None:
    rc, text = run(["--checkpoint", ckpt, cifs["mgo"], "--out", tmp_path], capsys)
    assert rc != 0
    assert "mgo.cif" in text and "no Fe atom" in text
    assert not (tmp_path / "mgo.csv").exists()


def test_unreadable_file_and_unseen_element(ckpt, cifs, tmp_path, capsys) -> None:
    rc, text = run(["--checkpoint", ckpt, cifs["broken"], cifs["fes"], cifs["feo"], "--out", tmp_path,
                    "--no-plots"], capsys)
    assert rc == 1
    assert "broken.cif: cannot read structure" in text
    assert "fes.cif" in text and "S (Z=16)" in text and "never saw in training" in text
    assert (tmp_path / "feo.csv").exists()  # the good one is still predicted
    assert len(json.loads((tmp_path / "predictions.json").read_text())["errors"]) == 2
    rc, text = run(["--checkpoint", ckpt, cifs["feo"], tmp_path / "missing.cif", "--out", tmp_path / "m"], capsys)
    assert rc == 2 and "missing.cif: no such structure file" in text  # refused before any prediction
    rc, text = run(["--checkpoint", ckpt, cifs["fes"], "--out", tmp_path, "--no-plots",
                    "--allow-unseen-elements"], capsys)
    assert rc == 0, text


def test_missing_checkpoint_says_how_to_get_one(cifs, tmp_path, capsys) -> None:
    rc, text = run(["--checkpoint", tmp_path / "nope.pt", cifs["feo"], "--out", tmp_path], capsys)
    assert rc == 2 and "nope.pt: no such checkpoint" in text
    from xane3 import ensemble

    if not ensemble.PRETRAINED.exists():
        rc, text = run([cifs["feo"], "--out", tmp_path], capsys)
        assert rc == 2 and "python -m xane3.train" in text and "--checkpoint" in text


def test_ensemble_mean_and_spread(cifs, tmp_path, capsys) -> None:
    ens_dir = tmp_path / "ens"
    make_checkpoint(ens_dir / "a.pt", seed=1, best=0.3)
    make_checkpoint(ens_dir / "trial_2" / "best.pt", seed=2, best=0.1)
    make_checkpoint(ens_dir / "trial_2" / "last.pt", seed=9)  # resume file: not a member
    make_checkpoint(ens_dir / "trial_3" / "best.pt", seed=3, best=0.9)
    assert [p.relative_to(ens_dir).as_posix() for p in ensemble_members(ens_dir)] == [
        "a.pt", "trial_2/best.pt", "trial_3/best.pt"]
    assert [p.parent.name for p in top_k(ensemble_members(ens_dir), 2)] == ["trial_2", "ens"]
    ranked = tmp_path / "ranked"  # selected on the spectrum MSE (best), ranked on the total
    for name, best, total in (("spec", 0.001, 0.5), ("total", 0.2, 0.2)):
        make_checkpoint(ranked / f"{name}.pt", best=best, best_total=total)
    assert [p.stem for p in top_k(ensemble_members(ranked), 1)] == ["total"]
    rc, text = run(["--ensemble", ens_dir, cifs["feo"], "--out", tmp_path / "out"], capsys)
    assert rc == 0, text
    df = pd.read_csv(tmp_path / "out" / "feo.csv")
    assert (df["Fe0_std"] > 0).all()
    atoms = read(cifs["feo"])
    members = [predict(m, atoms, [[0]])[0] for m in load_ensemble(directory=ens_dir).models]
    assert np.allclose(df["Fe0"], np.mean(members, axis=0), atol=1e-5)
    assert np.allclose(df["Fe0_std"], np.std(members, axis=0), atol=1e-5)
    # several sites: their average gets its own spread, over each member's site average
    rc, text = run(["--ensemble", ens_dir, cifs["feo"], "--sites", "0,2", "--out", tmp_path / "two",
                    "--no-plots"], capsys)
    assert rc == 0, text
    df = pd.read_csv(tmp_path / "two" / "feo.csv")
    ens = load_ensemble(directory=ens_dir)
    pred = ens.predict(atoms, [[0], [2]])
    e0 = None if ens.energy_axis == "absolute" else pred["e0"]
    avgs = [site_average(ens.energy, m, e0)[1] for m in pred["members"]]
    assert np.allclose(df["site_average"], np.mean(avgs, axis=0), atol=1e-5)
    assert np.allclose(df["site_average_std"], np.std(avgs, axis=0), atol=1e-5)
    assert (df["site_average_std"] > 0).all()


def test_many_structures_and_python_dash_m(ckpt, cifs, tmp_path) -> None:
    """The real command line, with a progress bar over several structures."""
    other = tmp_path / "sub" / "feo.cif"  # same stem: must not overwrite the first
    other.parent.mkdir()
    other.write_bytes(cifs["feo"].read_bytes())
    proc = subprocess.run([sys.executable, "-m", "xane3.predict", "--checkpoint", str(ckpt), str(cifs["feo"]),
                           str(other), "--out", str(tmp_path / "out"), "--no-plots"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "structures" in proc.stderr  # tqdm bar
    assert (tmp_path / "out" / "feo.csv").exists() and (tmp_path / "out" / "feo_1.csv").exists()


def test_help() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


def test_many_sites_are_grouped_and_averaged(ckpt, tmp_path) -> None:
    """Issue 17: above 12 sites the legend vanished and no site average was drawn or written."""
    cell = bulk("FeO", "rocksalt", a=4.33, cubic=True).repeat((2, 2, 2))  # 32 equivalent Fe sites
    write(tmp_path / "feo.cif", cell)
    assert main([str(tmp_path / "feo.cif"), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]) == 0
    df = pd.read_csv(tmp_path / "o" / "feo.csv")
    sites = [c for c in df.columns if c.startswith("Fe") and not c.endswith("_eV")]
    assert len(sites) == 32 and "site_average" in df
    summary = json.loads((tmp_path / "o" / "predictions.json").read_text())["structures"][0]
    groups = summary["equivalent_sites"]
    assert [len(g) for g in groups] == [32]  # symmetry-equivalent: one spectrum, one legend entry
    assert np.allclose(df["site_average"], df[sites[0]], atol=1e-5)
    assert (tmp_path / "o" / "feo.png").stat().st_size > 10_000


def test_site_average_on_absolute_energies() -> None:
    from xane3.sites import equivalent_groups, site_average

    energy = np.linspace(-10, 10, 201)
    step = 1 / (1 + np.exp(-energy))
    spectra = np.stack([step, step, np.roll(step, 5)])
    assert equivalent_groups(spectra) == [[0, 1], [2]]
    grid, mean, absolute = site_average(energy, spectra[:2], [7112.0, 7114.0])
    assert absolute and grid[100] == pytest.approx(7113.0)
    # the sites' edges at 7112 and 7114 eV average to a curve through 0.5 at 7113 eV
    assert mean[100] == pytest.approx(0.5, abs=0.01)


def test_a_folder_holding_earlier_outputs_reads_only_structures(ckpt, cifs, tmp_path) -> None:
    """Issue 17: predict on a folder holding its own predictions.json tried to read it."""
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(cifs["feo"], folder / "feo.cif")
    assert main([str(folder), "--checkpoint", str(ckpt), "--out", str(folder)]) == 0
    assert (folder / "predictions.json").exists() and (folder / "feo.csv").exists()
    assert main([str(folder), "--checkpoint", str(ckpt), "--out", str(folder)]) == 0
    done = json.loads((folder / "predictions.json").read_text())
    assert [Path(s["structure"]).name for s in done["structures"]] == ["feo.cif"] and not done["errors"]


def test_unwritable_output_is_one_line(ckpt, cifs, tmp_path, capsys) -> None:
    """Issue 17: a read-only output folder gave tracebacks (as root a file stands in for one)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main([str(cifs["feo"]), "--checkpoint", str(ckpt), "--out", str(blocker / "out")]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def test_broaden_applies_the_given_widths_to_every_spectrum(ckpt, cifs, tmp_path, capsys) -> None:
    """Issue 16: ``--broaden GAMMA,SIGMA[,SHIFT]`` puts predictions on a measurement's terms."""
    from xane3.broadening import Broadening, broaden

    rc, text = run(["--checkpoint", ckpt, cifs["feo"], "--out", tmp_path / "sharp", "--no-plots"], capsys)
    assert rc == 0, text
    rc, text = run(["--checkpoint", ckpt, cifs["feo"], "--out", tmp_path / "broad", "--no-plots",
                    "--broaden", "2.0,1.5,1.0"], capsys)
    assert rc == 0, text
    sharp, broad = (pd.read_csv(tmp_path / d / "feo.csv") for d in ("sharp", "broad"))
    e = sharp["energy_rel_eV"].to_numpy()
    want = broaden(e, sharp["Fe0"].to_numpy(), Broadening(shift=1.0, gamma=2.0, sigma=1.5))
    np.testing.assert_allclose(broad["Fe0"], want, atol=1e-6)
    assert np.abs(np.diff(broad["Fe0"], 2)).sum() < np.abs(np.diff(sharp["Fe0"], 2)).sum()
    summary = json.loads((tmp_path / "broad" / "predictions.json").read_text())
    assert summary["broadening_eV"]["gamma"] == 2.0
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ckpt), str(cifs["feo"]), "--out", str(tmp_path), "--broaden", "wide"])


def test_xane3_predict_is_the_function_even_after_the_command_module_is_imported(ckpt, cifs) -> None:
    """Issue 15: once ``xane3.predict`` (the command) was imported, ``from xane3 import predict``
    returned the module and calling it raised TypeError."""
    import importlib

    importlib.import_module("xane3.predict")
    from xane3 import predict as from_package

    model = load_checkpoint(ckpt)
    atoms = read(cifs["feo"])
    np.testing.assert_allclose(from_package(model, atoms, [[0]]), predict(model, atoms, [[0]]))


def test_out_of_domain_predictions_are_marked_everywhere(ckpt, cifs, tmp_path, capsys) -> None:
    """Issue 31: --allow-unseen-elements gave a confident spectrum with no mark in the terminal,
    the CSV or the plot; the mark is in each, and in predictions.json (FeS: S never seen)."""
    from PIL import Image

    rc, text = run(["--checkpoint", ckpt, cifs["fes"], cifs["feo"], "--out", tmp_path,
                    "--allow-unseen-elements"], capsys)
    why = "elements never seen in training: S (Z=16)"
    assert rc == 0 and f"fes.cif: OUT OF DOMAIN ({why})" in text and "; 1 OUT OF DOMAIN" in text
    assert (pd.read_csv(tmp_path / "fes.csv")["out_of_domain"] == why).all()
    assert "out_of_domain" not in pd.read_csv(tmp_path / "feo.csv")
    marks = {Path(s["structure"]).name: s["out_of_domain"]
             for s in json.loads((tmp_path / "predictions.json").read_text())["structures"]}
    assert marks == {"fes.cif": [why], "feo.cif": []}
    assert Image.open(tmp_path / "fes.png").text["Title"] == f"OUT OF DOMAIN: fes.cif: Fe4S4 ({why})"
    assert not Image.open(tmp_path / "feo.png").text["Title"].startswith("OUT OF DOMAIN")
