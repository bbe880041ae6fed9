"""Broadening, its fit, and linear-combination fitting (issue 16: spectra on a measurement's terms)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from xane3.broadening import Broadening, broaden, fit_broadening, lorentz_fwhm
from xane3.lcf import lcf

E = np.linspace(-30.0, 100.0, 261)


def _fwhm(e: np.ndarray, y: np.ndarray) -> float:
    above = e[y >= y.max() / 2]
    return float(above[-1] - above[0])


def _edge(e0: float = 0.0, peak: float = 8.0, dip: float = 25.0) -> np.ndarray:
    return (0.5 + np.arctan((E - e0) / 1.0) / np.pi + 0.6 * np.exp(-0.5 * ((E - e0 - peak) / 1.5) ** 2)
            - 0.2 * np.exp(-0.5 * ((E - e0 - dip) / 4.0) ** 2))


def test_widths_are_fwhm_and_a_flat_spectrum_stays_flat() -> None:
    fine = np.linspace(-30.0, 100.0, 2601)
    delta = np.exp(-0.5 * (fine / 0.02) ** 2)
    assert _fwhm(fine, broaden(fine, delta, Broadening(gamma=2.0))) == pytest.approx(2.0, abs=0.06)
    assert _fwhm(fine, broaden(fine, delta, Broadening(sigma=2.0))) == pytest.approx(2.0, abs=0.06)
    # Voigt FWHM (Olivero & Longbothum): 0.5346 fL + sqrt(0.2166 fL^2 + fG^2) = 3.27 for 2, 2
    assert _fwhm(fine, broaden(fine, delta, Broadening(gamma=2.0, sigma=2.0))) == pytest.approx(3.27, abs=0.08)
    for b in (Broadening(gamma=3, sigma=1), Broadening(gamma=1, sigma=1, gamma_max=8)):
        assert np.ptp(broaden(E, np.ones_like(E), b)) < 1e-9
    shifted = broaden(E, _edge(), Broadening(shift=4.0))
    np.testing.assert_allclose(shifted[100:200], _edge(4.0)[100:200], atol=1e-6)


def test_the_lorentzian_grows_above_the_edge_as_in_fdmnes() -> None:
    b = Broadening(gamma=1.0, gamma_max=10.0, e_cent=30.0, e_larg=30.0)
    g = lorentz_fwhm(E, b, e_edge=0.0)
    assert np.all(g[E <= 0] == 1.0) and np.all(np.diff(g[E > 1]) >= 0) and 5.0 < g[-1] < 11.0
    fine = np.linspace(-30.0, 100.0, 2601)
    peaks = sum(np.exp(-0.5 * ((fine - c) / 0.05) ** 2) for c in (0.0, 80.0))
    y = broaden(fine, peaks, b)
    near, far = fine < 40, fine >= 40
    assert _fwhm(fine[far], y[far]) > 4 * _fwhm(fine[near], y[near])


def test_fit_recovers_a_known_broadening_and_shift() -> None:
    true = Broadening(shift=1.5, gamma=2.0, sigma=1.2)
    rng = np.random.default_rng(0)
    meas = broaden(E, _edge(), true) + rng.normal(0, 0.003, E.size)
    f = fit_broadening(E, _edge(), E, meas)
    b = f.broadening
    assert b.shift == pytest.approx(1.5, abs=0.05) and b.gamma == pytest.approx(2.0, abs=0.2)
    assert b.sigma == pytest.approx(1.2, abs=0.4)  # gamma and sigma trade off; their sum does not
    assert all(np.isfinite(v) and v > 0 for v in f.stderr.values())
    assert f.after["mse"] < 0.05 * f.before["mse"] and f.after["pearson"] > 0.999
    with pytest.raises(ValueError, match="cannot fit"):
        fit_broadening(E, _edge(), E, meas, fit=("shift", "width"))
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_broadening(E, _edge(), E + 500, meas)
    with pytest.raises(ValueError, match="GAMMA,SIGMA"):
        Broadening.parse("1.5")
    assert Broadening.parse("1.5,1,-2") == Broadening(shift=-2.0, gamma=1.5, sigma=1.0)
    for bad in ("1,nan", "1,inf", "1,1,500", "1500,1000", "-1,1"):  # NaN, flat or endless output
        with pytest.raises(ValueError, match="widths in"):
            Broadening.parse(bad)


def test_lcf_recovers_known_fractions_shift_and_width() -> None:
    refs = {"a": (E, _edge(0.0, 6.0)), "b": (E, _edge(4.0, 12.0, 35.0)), "c": (E, _edge(-2.0, 3.0, 18.0))}
    rng = np.random.default_rng(1)
    known = np.array([0.5, 0.3, 0.2])
    mix = sum(f * m for f, (_, m) in zip(known, refs.values()))
    meas = broaden(E, mix, Broadening(shift=2.0, gamma=1.0, sigma=0.8)) + rng.normal(0, 0.005, E.size)
    win = (E > -20) & (E < 60)
    res = lcf(E[win], meas[win], refs, broadening=Broadening(), fit_widths=True)
    np.testing.assert_allclose(res.fractions, known, atol=0.05)
    assert res.shift == pytest.approx(2.0, abs=0.2) and res.r_factor < 1e-3
    assert np.all(res.stderr > 0) and np.all(res.fractions >= 0)
    assert np.allclose(res.components.sum(0), res.fit)
    one = lcf(E[win], 1.15 * meas[win], refs, broadening=Broadening(), fit_widths=True, sum_to_one=True)
    assert one.fractions.sum() == pytest.approx(1.0, abs=1e-3)
    assert lcf(E[win], 1.15 * meas[win], refs, broadening=Broadening(), fit_widths=True).fractions.sum() \
        == pytest.approx(1.15, abs=0.05)
    with pytest.raises(ValueError, match="inside every reference's range"):
        lcf(E + 500, meas, refs)


def test_a_fraction_without_an_error_says_why_never_nan() -> None:
    """Issue 31: a reference fitted to 0 (its bound) printed "± nan"; it now has no error, said so."""
    refs = {"a": (E, _edge(0.0, 6.0)), "b": (E, _edge(4.0, 12.0, 35.0))}
    res = lcf(E, _edge(0.0, 6.0) - 0.3 * _edge(4.0, 12.0, 35.0) + 0.3, refs)  # "b" pushed below 0
    assert res.fractions[1] == pytest.approx(0.0, abs=1e-6) and not np.isfinite(res.stderr[1])
    assert res.fraction_texts()[1] == "0.00 (no error: at bound)" and "±" in res.fraction_texts()[0]
    assert res.as_dict()["errors_note"] == "b: no standard error, at its bound 0, where a least-squares " \
                                           "error is undefined"


def test_lcf_command_on_predicted_references(tmp_path, capsys) -> None:
    """The demonstration: predicted references recover synthetic mixtures of themselves within
    ±5 %; what they make of measured spectra is reported, not asserted (a model property)."""
    from xane3.lcf_cli import main

    ckpt = REPO / "xane3" / "pretrained" / "xane3-feff-fe.pt"
    assert main(["--checkpoint", str(ckpt), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "predicted mix" in out and "0.78 ± 0.25" in out and "nan" not in out.lower()  # errors, none NaN
    assert "small R does not mean right fractions" in out  # the limit on measured spectra
    df = pd.read_csv(tmp_path / "lcf.csv")
    assert list(df["kind"].value_counts().sort_index()) == [3, 3, 3]
    synth = df[df["kind"] == "synthetic (predicted)"]
    for n in ("hematite", "magnetite", "wustite"):
        assert (synth[f"{n}_fraction"] - synth[f"{n}_known"]).abs().max() < 0.05
    assert np.all(df.filter(like="_fraction") >= 0)
    assert json.loads((tmp_path / "lcf.json").read_text())["references"] == ["hematite", "magnetite", "wustite"]
    assert (tmp_path / "lcf.png").stat().st_size > 10_000
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--references", "pyrite"])


def test_bad_measured_files_and_windows_are_one_line(tmp_path, capsys) -> None:
    """A one-row file was a traceback; a window past the spectra's -30..100 eV was cut silently
    while lcf.json recorded the one asked for."""
    from xane3.lcf_cli import main

    one = tmp_path / "oneline.dat"
    one.write_text("7112 0.5\n")
    assert main(["--measured", str(one), "--out", str(tmp_path / "o")]) == 2
    assert "oneline.dat: 1 data row" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--measured", str(one), "--window=-200,400", "--out", str(tmp_path / "o")])
    assert "-30 <= LO < HI <= 100" in capsys.readouterr().err
