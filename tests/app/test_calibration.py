"""Ensemble spread as an error bar: coverage on val/test and the val-fitted scale (issue 16)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ase.io import write

from xane3.calibration import GAUSS_2SIGMA, coverage, fit_scale, main
from xane3.config import Config, with_overrides
from xane3.overlays import preset
from xane3.train import fit


def test_coverage_and_scale_on_known_gaussians() -> None:
    rng = np.random.default_rng(0)
    mean = np.zeros((200, 50))
    ref = rng.normal(0.0, 2.0, mean.shape)  # errors twice the claimed spread
    std = np.ones_like(mean)
    mask = np.ones_like(mean, bool)
    assert coverage(ref, mean, std, mask, 2.0) == pytest.approx(0.683, abs=0.02)  # ±2 std = ±1 sigma
    s = fit_scale(ref, mean, std, mask)
    assert s == pytest.approx(2.0, rel=0.05)
    assert coverage(ref, mean, s * std, mask, 2.0) == pytest.approx(GAUSS_2SIGMA, abs=0.005)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Two seeds of one tiny recipe on one split of the embedded set: a (poor) deep ensemble."""
    root = tmp_path_factory.mktemp("ens")
    for seed in (0, 1):
        cfg = with_overrides(Config(), {**preset("tiny"), "data.subset": 120, "train.epochs": 1,
                                        "train.max_steps_per_epoch": 3, "train.seed": seed})
        fit(cfg, out_dir=root / f"seed{seed}", progress=False)
    return root


def test_calibrate_writes_coverages_and_predict_applies_the_scale(seeds, tmp_path, capsys) -> None:
    assert main(["--ensemble", str(seeds), "--out", str(tmp_path / "cal"), "--write-scale",
                 "--device", "cpu"]) == 0
    res = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert len(res["members"]) == 2 and res["scale_fitted_on"] == "val" and res["scale"] > 0
    for split in ("val", "test"):
        assert 0 <= res[split]["coverage_2std_raw"] <= 1 and res[split]["spectra"] > 0
    assert res["val"]["coverage_2std_scaled"] == pytest.approx(GAUSS_2SIGMA, abs=0.01)  # by construction
    assert (tmp_path / "cal" / "calibration.png").stat().st_size > 5_000
    assert "scaled (target 95.4 %)" in capsys.readouterr().out

    from ase.build import bulk

    from xane3.predict_cli import main as predict

    cif = tmp_path / "feo.cif"
    write(cif, bulk("FeO", "rocksalt", a=4.33, cubic=True))
    assert predict(["--ensemble", str(seeds), str(cif), "--out", str(tmp_path / "scaled"), "--no-plots"]) == 0
    from xane3.compare_experiment import main as compare

    def compared(out: str) -> pd.Series:  # the same band as predict's, against a measurement
        assert compare(["--ensemble", str(seeds), "--phases", "wustite", "--no-fit", "--out",
                        str(tmp_path / out)]) == 0
        return pd.read_csv(tmp_path / out / "compare_experiment.csv")["wustite_predicted_std"]

    cmp_scaled = compared("cmp_scaled")
    capsys.readouterr()
    assert predict(["--ensemble", str(seeds), "--top-k", "1", str(cif), "--out", str(tmp_path / "k1"),
                    "--no-plots"]) == 2  # a scale fitted on two members is no scale for one
    assert "fitted for members" in capsys.readouterr().err
    member = next(seeds.rglob("best.pt"))  # retrained in place: same name, other weights
    kept = member.read_bytes()
    member.write_bytes(kept + b"\0")
    assert predict(["--ensemble", str(seeds), str(cif), "--out", str(tmp_path / "stale"), "--no-plots"]) == 2
    assert "changed since the scale was fitted" in capsys.readouterr().err
    member.write_bytes(kept)
    (seeds / "calibration.json").rename(tmp_path / "moved.json")
    assert predict(["--ensemble", str(seeds), str(cif), "--out", str(tmp_path / "raw"), "--no-plots"]) == 0
    scaled, raw = (pd.read_csv(tmp_path / d / "feo.csv") for d in ("scaled", "raw"))
    np.testing.assert_allclose(scaled["Fe0_std"], res["scale"] * raw["Fe0_std"], rtol=1e-6)
    np.testing.assert_allclose(cmp_scaled, res["scale"] * compared("cmp_raw"), rtol=1e-6)
    assert json.loads((tmp_path / "scaled" / "predictions.json").read_text())["std_scale"] == res["scale"]


def test_members_of_different_runs_are_refused(seeds, tmp_path) -> None:
    import shutil

    other = tmp_path / "mixed"
    shutil.copytree(seeds / "seed0", other / "a")
    cfg = with_overrides(Config(), {**preset("tiny"), "data.subset": 100, "train.epochs": 1,
                                    "train.max_steps_per_epoch": 2})
    fit(cfg, out_dir=other / "b", progress=False)
    assert main(["--ensemble", str(other), "--out", str(tmp_path / "x")]) == 2
    if not __import__("torch").cuda.is_available():  # CUDA asked for where there is none
        assert main(["--ensemble", str(seeds), "--out", str(tmp_path / "y"), "--device", "cuda"]) == 2
