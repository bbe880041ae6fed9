"""Spectral metrics on hand-made spectra whose edge, white line and pre-edge are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xane3.metrics import compare, metrics_table, spectral_features, summarize
from xane3.train.loss import loss_terms

E = np.linspace(-30.0, 100.0, 150)  # the paper's grid: 0.87 eV steps
TOL = 0.15  # eV: sub-grid accuracy of the interpolated features


def spectrum(shift: float = 0.0, wl: float = 0.6, pre: float = 0.12) -> np.ndarray:
    """Arctan edge at ``shift`` (half crossing there), white line 8 eV above,
    pre-edge peak 12 eV below, and some post-edge wiggles."""
    x = E - shift
    return (0.5 + np.arctan(x / 1.5) / np.pi + wl * np.exp(-0.5 * ((x - 8) / 3) ** 2)
            + pre * np.exp(-0.5 * ((x + 12) / 1.2) ** 2) + 0.05 * np.sin(x / 9) * (x > 15))


FULL = np.ones_like(E, dtype=bool)


def test_features_of_a_known_spectrum() -> None:
    f = spectral_features(E, spectrum(), FULL)
    assert abs(f.edge_ev) < TOL  # the 0.5 crossing (the arctan centre; the peaks add a little)
    assert abs(f.edge_deriv_ev) < 0.5
    assert f.wl_ev == pytest.approx(8.1, abs=0.3)
    assert f.pre_ev == pytest.approx(-12.0, abs=TOL)


@pytest.mark.parametrize("shift", [0.4, 1.7, -2.3, 5.0])
def test_shifts_are_recovered(shift: float) -> None:
    r = compare(E, spectrum(shift), spectrum(), FULL)
    for key in ("err_edge_ev", "err_edge_deriv_ev", "err_wl_ev", "err_pre_ev"):
        assert r[key] == pytest.approx(shift, abs=TOL), key
    assert abs(r["err_wl_height"]) < 0.01
    assert r["pearson"] < 1.0 and r["mse_spectrum"] > 0


def test_white_line_height_and_missing_pre_edge() -> None:
    r = compare(E, spectrum(wl=0.8), spectrum(), FULL)
    assert r["err_wl_height"] == pytest.approx(0.2, abs=0.01)
    assert abs(r["err_edge_ev"]) < TOL and abs(r["err_wl_ev"]) < 0.3
    r = compare(E, spectrum(pre=0.0), spectrum(), FULL)
    assert r["pre_edge_ref"] == 1.0 and r["pre_edge_missed"] == 1.0 and np.isnan(r["err_pre_ev"])
    r = compare(E, spectrum(pre=0.0), spectrum(pre=0.0), FULL)
    assert r["pre_edge_ref"] == 0.0 and np.isnan(r["err_pre_ev"])


def test_identical_spectra_score_perfectly() -> None:
    r = compare(E, spectrum(), spectrum(), FULL, pred_e0=7112.0, ref_e0=7112.0)
    assert r["mse_spectrum"] == 0 and r["mse_gradient"] == 0 and r["mse_curvature"] == 0
    assert r["pearson"] == pytest.approx(1.0) and r["spearman"] == pytest.approx(1.0)
    assert r["err_edge_ev"] == 0 and r["err_e0"] == 0


def test_e0_error_and_absolute_edge() -> None:
    r = compare(E, spectrum(1.0), spectrum(), FULL, pred_e0=7114.0, ref_e0=7112.5)
    assert r["err_e0"] == pytest.approx(1.5)
    assert r["err_edge_abs_ev"] == pytest.approx(2.5, abs=TOL)


def test_masked_points_are_ignored() -> None:
    """A reference covering only -30..+45 eV (like the XANESNET set): garbage beyond
    its range must change nothing."""
    mask = E <= 45.0
    ref = np.where(mask, spectrum(), np.nan)
    pred = spectrum(1.0)
    junk = pred.copy()
    junk[~mask] = 50.0
    a, b = compare(E, pred, ref, mask), compare(E, junk, ref, mask)
    for key in ("mse_spectrum", "mse_gradient", "mse_curvature", "pearson", "err_edge_ev", "err_wl_ev"):
        assert a[key] == pytest.approx(b[key]), key
    assert a["err_edge_ev"] == pytest.approx(1.0, abs=TOL)


def test_mse_matches_the_training_loss() -> None:
    """Per-spectrum MSEs pooled by summarize() equal the loss terms' data-set MSE."""
    rng = np.random.default_rng(0)
    ref = np.stack([spectrum(s) for s in (0.0, 1.0, -1.0)])
    pred = ref + 0.02 * rng.standard_normal(ref.shape)
    mask = np.ones_like(ref, dtype=bool)
    mask[1, 120:] = False
    mask[2, :10] = False
    df = metrics_table(E, pred, ref, mask)
    s = summarize(df, lambda_grad=150.0, lambda_curv=200.0)
    terms = loss_terms(torch.tensor(pred), torch.tensor(np.where(mask, ref, 0.0)), torch.tensor(mask))
    for name, (sse, n) in terms.items():
        assert s[f"mse_{name}"] == pytest.approx(float(sse / n), rel=1e-9), name
    assert s["total"] == pytest.approx(s["mse_spectrum"] + 150 * s["mse_gradient"] + 200 * s["mse_curvature"])
    assert s["mae_edge_ev"] < TOL and s["n_spectra"] == 3


def test_flat_or_empty_spectrum_gives_nan_not_an_error() -> None:
    flat = np.ones_like(E)
    f = spectral_features(E, flat, FULL)
    assert np.isnan(f.edge_ev) and np.isnan(f.wl_ev)
    r = compare(E, flat, spectrum(), FULL)
    assert np.isnan(r["err_edge_ev"]) and np.isnan(r["pearson"])
    f = spectral_features(E, spectrum(), np.zeros_like(FULL))
    assert np.isnan(f.edge_ev)
