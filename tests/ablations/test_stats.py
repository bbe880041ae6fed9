"""Table 1's paired statistics against values computed by hand on made-up data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ablations import stats
from ablations.table import claims, effects, forest_plot, markdown, summarise

D = [0.5, 1.5, -0.2, 0.9, 0.3]  # variant - baseline over 5 seeds: mean 0.6, sd 0.64031


def test_paired_difference_ci_and_p_values_by_hand() -> None:
    base = {k: 10.0 + k for k in range(5)}
    pr = stats.paired(base, {k: base[k] + d for k, d in enumerate(D)})
    assert pr.n == 5 and pr.mean == pytest.approx(0.6)
    assert pr.sd == pytest.approx(math.sqrt(sum((d - 0.6) ** 2 for d in D) / 4))
    # t(0.975, 4) = 2.776445; half-width = 2.776445 * 0.640312 / sqrt(5)
    assert pr.ci95 == pytest.approx(2.776445 * 0.640312 / math.sqrt(5), rel=1e-5)
    # t = 0.6 / (0.640312 / sqrt 5) = 2.0953, two-sided p with 4 df = 0.10421
    assert pr.p_t == pytest.approx(0.10421, abs=1e-4)
    # |sum| >= 3.0 under sign flips of (0.5, 1.5, 0.2, 0.9, 0.3): the flipped set must sum to
    # <= 0.2 or >= 3.2 -> {}, {0.2} and their complements: 4 of 32 patterns
    assert pr.p_signflip == pytest.approx(4 / 32)


def test_signflip_floor_and_pairing_by_seed() -> None:
    assert stats.signflip_p(np.ones(5)) == pytest.approx(2 / 32)  # 5 seeds never reach 0.05
    # only seeds both sides have are paired; the order of the dicts does not matter
    pr = stats.paired({0: 1.0, 1: 2.0, 2: 3.0}, {2: 3.5, 0: 1.5, 7: 99.0})
    assert pr.n == 2 and pr.mean == pytest.approx(0.5)


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    adj = stats.holm([0.01, 0.04, 0.03, float("nan")])
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(adj[3])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 2 x 0.5, then never below it


def test_seeds_for_80_percent_power() -> None:
    # the textbook case: a paired effect of one standard deviation needs 10 pairs at alpha 0.05
    assert stats.seeds_needed(1.0, 1.0, 0.05) == 10
    assert stats.power_paired_t(10, 1.0, 1.0, 0.05) >= 0.8 > stats.power_paired_t(9, 1.0, 1.0, 0.05)
    assert stats.seeds_needed(1.0, 1.0, 0.05 / 40) > 10  # a stricter level needs more
    assert stats.seeds_needed(0.0, 1.0, 0.05) == math.inf
    assert stats.seeds_needed(1e-4, 1.0, 0.05) == math.inf  # beyond MAX_SEEDS


def _scores(diffs: dict[str, list[float]]) -> pd.DataFrame:
    base = [2.0, 2.4, 1.8, 2.2, 2.1]
    rows = []
    for spec, d in {"baseline": [0.0] * 5, **diffs}.items():
        for seed, (b, x) in enumerate(zip(base, d)):
            v = b + x
            rows.append({"spec": spec, "seed": seed, "total": v, "spectrum": v / 2, "gradient": v / 4,
                         "curvature": v / 4})
    return pd.DataFrame(rows)


def test_summary_resolves_a_clear_effect_and_leaves_noise_unresolved(tmp_path) -> None:
    clear = [1.0, 1.1, 0.9, 1.05, 0.95]  # +1 on every seed: resolved after Holm over 8 cells
    noise = [0.5, -0.4, 0.3, -0.6, 0.1]  # mean -0.02 against a spread of 0.46: unresolved
    s = summarise(_scores({"no_layer_norm": clear, "no_gated_residual": noise}),
                  ["baseline", "no_layer_norm", "no_gated_residual"])
    ln, gr = s.iloc[1], s.iloc[2]
    assert ln["total_verdict"] == "worse" and ln["total_pct"] == pytest.approx(100 * 1.0 / 2.1)
    assert ln["total_p_holm"] == pytest.approx(min(1.0, 8 * ln["total_p_t"]))  # smallest of 8 cells
    assert gr["total_verdict"] == "not resolved"
    assert gr["total_p_holm"] == pytest.approx(1.0)
    assert gr["total_seeds_needed"] > 100  # "not resolved" here means too small to see
    assert gr["spectrum_delta"] == pytest.approx(-0.01)
    md = markdown(s, {"total": 100.0, "spectrum": 50.0, "gradient": 25.0, "curvature": 25.0})
    assert "(+47.6 %, worse)" in md and "not resolved" in md
    lines = claims(s)
    assert any(ln.startswith("- **replicates**: the layer norm") for ln in lines)
    assert any(ln.startswith("- **unresolved**: the gated residual") for ln in lines)
    assert any(ln.startswith("- **not run**: attention pooling") for ln in lines)
    assert "| no_layer_norm | total | 5 |" in effects(s)
    forest_plot(s, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_a_claim_the_data_contradict() -> None:
    better = [-1.0, -1.1, -0.9, -1.05, -0.95]  # removing attention pooling *helps*
    s = summarise(_scores({"no_attention_pooling": better}), ["baseline", "no_attention_pooling"])
    assert s.iloc[1]["total_verdict"] == "better"
    assert any(ln.startswith("- **contradicts**: attention pooling") for ln in claims(s))


def test_runs_that_did_not_learn_get_no_verdict(tmp_path) -> None:
    """A smoke table whose baseline does not beat the mean spectrum: differences are noise."""
    s = summarise(_scores({"no_layer_norm": [1.0, 1.1, 0.9, 1.05, 0.95]}), ["baseline", "no_layer_norm"])
    md = markdown(s, {"total": 1.0, "spectrum": 1.0, "gradient": 1.0, "curvature": 1.0})
    assert "Not interpretable" in md and "not interpretable)" in md
    assert "The paper's claims" not in md
    forest_plot(s, tmp_path / "chart.png", learned=False)
    assert (tmp_path / "chart.png").stat().st_size > 1000
