"""Edge-step normalisation: real spectra of every kind, the grid, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import FDMNES_OUTPUTS, TIO2, XANESNET, feff_small  # noqa: F401  (fixture)

from xane3.data.normalize import (
    EdgeWindows,
    SpectrumError,
    check_spectrum,
    default_grid,
    find_e0,
    normalize_record,
    onset,
    parse_grid,
)
from xane3.data.readers.fdmnes import read_fdmnes_output
from xane3.data.readers.fdmnes_run import find_runs, read_fdmnes_run
from xane3.data.readers.feff import read_feff_dir
from xane3.data.readers.xanesnet import read_xanesnet_pair, xanesnet_pairs
from xane3.data.record import SpectrumRecord


def _edge(e: np.ndarray, e0: float = 7120.0, width: float = 2.0, pre_peak: float = 0.0) -> np.ndarray:
    """Arctan edge of unit step, an optional pre-edge Gaussian 8 eV below, mild slope."""
    mu = 0.5 + np.arctan((e - e0) / width) / np.pi + 0.001 * (e - e0)
    return mu + pre_peak * np.exp(-0.5 * ((e - e0 + 8.0) / 0.7) ** 2) + 0.2


def _assert_normalised(rec: SpectrumRecord, grid: np.ndarray | None = None, tol_post: float = 0.12) -> None:
    """Mean of the flat baseline ~ 0 and mean of the post-edge (>= +30 eV) ~ 1 where covered."""
    n = normalize_record(rec, grid)
    g, s, m = n.energy, n.spectrum, n.mask
    assert np.all(np.isnan(s[~m])) and np.all(np.isfinite(s[m]))
    base = m & (g <= min(-10.0, onset(rec.energy, rec.mu) - n.e0))
    post = m & (g >= 30.0)
    assert post.sum() >= 3
    if base.sum():
        assert abs(s[base].mean()) < 0.03
    assert abs(s[post].mean() - 1.0) < tol_post


def test_default_grid_and_parse() -> None:
    g = default_grid()
    assert g.shape == (150,) and g[0] == -30.0 and g[-1] == 100.0
    np.testing.assert_array_equal(parse_grid("-20,80,101"), default_grid(-20, 80, 101))
    with pytest.raises(ValueError, match="e_min,e_max,n"):
        parse_grid("-20,80")


def test_synthetic_edge_with_pre_edge_peak() -> None:
    e = np.linspace(7060.0, 7250.0, 800)
    mu = _edge(e, pre_peak=0.7)  # pre-edge peak above half the jump: must not be taken for the edge
    assert find_e0(e, mu, smooth_ev=0.5) == pytest.approx(7120.0, abs=0.5)
    n = normalize_record(SpectrumRecord(e, mu, "synthetic", 26))
    assert n.e0_kind == "inflection" and n.edge_step == pytest.approx(1.0, rel=0.1)  # arctan tails
    inside = (n.energy > 40) & n.mask
    np.testing.assert_allclose(n.spectrum[inside], 1.0, atol=0.06)


def test_never_extrapolates() -> None:
    e = np.linspace(7100.0, 7160.0, 300)  # covers -20..+40 around E0 = 7120
    n = normalize_record(SpectrumRecord(e, _edge(e), "short", 26, e0=7120.0, e0_kind="fermi"))
    assert n.e0 == 7120.0 and n.e0_kind == "fermi"
    covered = (n.energy >= -20.0) & (n.energy <= 40.0)
    np.testing.assert_array_equal(n.mask, covered)
    assert np.isnan(n.spectrum[~covered]).all() and np.isfinite(n.spectrum[covered]).all()


@pytest.mark.parametrize("run", find_runs(TIO2) if TIO2.is_dir() else [], ids=lambda p: p.name)
def test_fdmnes_runs(run: Path) -> None:
    _assert_normalised(read_fdmnes_run(run)[0])


@pytest.mark.parametrize("conv", ["zno-classic/ZnO_FDMNES_conv.txt", "mo2c-2022/FDMNES_2022_Mo2C_out_conv.dat"])
def test_parser_only_convolutions(conv: str) -> None:
    """Spectra without structures still normalise (E0 = E_edge + E_cut from a header)."""
    out = read_fdmnes_output(FDMNES_OUTPUTS / conv)
    head = out if out.e_edge else read_fdmnes_output(FDMNES_OUTPUTS / "zno-classic" / "ZnO_FDMNES.txt")
    rec = SpectrumRecord(out.energy + head.e_edge, out.mu, conv, int(head.header.get("Z", 30)),
                         e0=head.e_edge + head.e_cut, e0_kind="fermi")
    _assert_normalised(rec, tol_post=0.2)  # strong post-edge oscillations on short windows


XANESNET_SAMPLE = xanesnet_pairs(XANESNET)[::204] if XANESNET.is_dir() else []


@pytest.mark.parametrize("pair", XANESNET_SAMPLE, ids=lambda p: p[0].stem[:24])
def test_xanesnet_sample(pair: tuple[Path, Path]) -> None:
    rec = read_xanesnet_pair(*pair)
    _assert_normalised(rec)
    assert 7105.0 < normalize_record(rec).e0 < 7145.0


def test_feff(feff_small: Path) -> None:  # noqa: F811
    (rec,) = read_feff_dir(feff_small)
    _assert_normalised(rec)
    n = normalize_record(rec)
    assert n.mask.all() and n.e0 == rec.e0


def test_windows_are_parameters() -> None:
    e = np.linspace(7060.0, 7250.0, 800)
    rec = SpectrumRecord(e, _edge(e), "w", 26, e0=7120.0, e0_kind="fermi")
    a = normalize_record(rec, windows=EdgeWindows(post=(30.0, 60.0), post_order=0))
    b = normalize_record(rec, windows=EdgeWindows(post=(30.0, 130.0), post_order=2))
    assert a.edge_step != b.edge_step


@pytest.mark.parametrize(("energy", "mu", "message"), [
    (np.linspace(0, 10, 5), np.ones(5), "too few points"),
    (np.linspace(0, 100, 50), np.r_[np.ones(49), np.nan], "mu has 1 NaN"),
    (np.r_[np.linspace(0, 50, 25), np.linspace(50, 100, 25)], np.ones(50), "not strictly increasing at row 25"),
    (np.linspace(0, 100, 50), np.ones(50), "no edge in range"),
    (np.linspace(0, 100, 50), np.linspace(2, 1, 50), "no edge in range"),
])
def test_bad_spectra_name_the_file(energy: np.ndarray, mu: np.ndarray, message: str) -> None:
    rec = SpectrumRecord(energy, mu, "/data/bad_spectrum.txt", 26)
    with pytest.raises(SpectrumError, match=f"bad_spectrum.txt: .*{message}"):
        normalize_record(rec)


def test_e0_outside_data() -> None:
    e = np.linspace(7100.0, 7200.0, 200)
    with pytest.raises(SpectrumError, match="x.txt: E0 7300.00 eV outside"):
        normalize_record(SpectrumRecord(e, _edge(e), "x.txt", 26, e0=7300.0, e0_kind="fermi"))
    with pytest.raises(SpectrumError, match="no pre-edge region"):
        normalize_record(SpectrumRecord(e, _edge(e, e0=7101.5), "x.txt", 26, e0=7101.0, e0_kind="fermi"))


def test_check_spectrum_shapes() -> None:
    with pytest.raises(SpectrumError, match="s.txt: energy .* equal-length"):
        check_spectrum(np.arange(20.0), np.arange(19.0), "s.txt")
