"""Paired statistics for Table 1: every spec at seed k shares the baseline's split, data
order and initialisation seed, so the evidence is in the per-seed *differences*.

Seed-to-seed spread in one spec is often larger than an architectural effect, while the
paired difference is not; an unpaired (Welch) test throws that pairing away. Each (spec,
term) gets the paired mean difference with its 95 % t interval, an exact sign-flip
permutation p-value (distribution-free: its smallest value is 2 / 2**n, so 5 seeds can
never go below 0.0625) and a paired t-test p-value beside it. Holm's step-down correction
runs over every (spec, term) of a table, on the paired t p-values (the sign-flip floor would
make every row unresolvable with the seeds a CPU table can afford). ``seeds_needed`` is the
number of seeds at which a paired t-test at the Bonferroni level (Holm's strictest step)
has 80 % power for the observed difference and spread, so "not resolved" can be read as
"no effect" or "too few seeds".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 1000  # beyond this "seeds needed" is reported as > MAX_SEEDS
EXACT_UP_TO = 16  # 2**16 sign patterns; more seeds use a fixed-seed Monte Carlo of 2**16


@dataclass(frozen=True)
class Paired:
    """One variant against the baseline on one term, over the seeds both have."""

    n: int
    mean: float  # variant - baseline
    ci95: float  # half-width of the t interval of the mean difference
    sd: float  # sample standard deviation of the differences
    p_signflip: float
    p_t: float


def ci_half_width(x: np.ndarray) -> float:
    """Half-width of the t-based 95 % CI of the mean (NaN for fewer than two values)."""
    n = len(x)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * np.std(x, ddof=1) / math.sqrt(n))


def signflip_p(d: np.ndarray) -> float:
    """Two-sided p of the mean difference under random signs (exact up to 16 seeds).

    Under "no effect" each paired difference is as likely to have either sign; p is the
    share of sign patterns whose |mean| is at least the observed one (the observed pattern
    counts, so p >= 2 / 2**n).
    """
    d = np.asarray(d, float)
    n = len(d)
    if n == 0:
        return float("nan")
    observed = abs(d.mean())
    if n <= EXACT_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(2 ** EXACT_UP_TO, n))
        signs[0] = 1.0
    means = np.abs(signs @ d) / n
    return float(np.mean(means >= observed - 1e-12 * max(observed, 1e-300)))


def paired_t_p(d: np.ndarray) -> float:
    """Two-sided paired t-test p (1 when every difference is zero, NaN below two seeds)."""
    d = np.asarray(d, float)
    if len(d) < 2:
        return float("nan")
    if np.allclose(d, 0.0):
        return 1.0
    if np.std(d, ddof=1) <= 1e-12 * np.abs(d).max():  # a constant non-zero difference (to rounding)
        return 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def paired(base: dict[int, float], variant: dict[int, float]) -> Paired:
    """Pair ``{seed: value}`` maps on the seeds both have."""
    seeds = sorted(set(base) & set(variant))
    d = np.array([variant[s] - base[s] for s in seeds], float)
    sd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    return Paired(len(d), float(d.mean()) if len(d) else float("nan"), ci_half_width(d), sd,
                  signflip_p(d), paired_t_p(d))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count in m)."""
    idx = [i for i, p in enumerate(pvalues) if p == p]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def power_paired_t(n: int, effect: float, sd: float, alpha: float) -> float:
    """Power of a two-sided paired t-test with ``n`` seeds for a true mean difference ``effect``."""
    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0 if effect != 0 else alpha
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = effect / (sd / math.sqrt(n))
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_needed(effect: float, sd: float, alpha: float, power: float = POWER) -> float:
    """Smallest seed count whose paired t-test reaches ``power`` (inf past MAX_SEEDS or for
    no effect; NaN when the spread is unknown)."""
    if not (sd == sd and effect == effect):
        return float("nan")
    if effect == 0:
        return float("inf")
    lo, hi = 3, MAX_SEEDS  # two seeds give a spread of one degree of freedom: never enough
    if power_paired_t(hi, effect, sd, alpha) < power:
        return float("inf")
    while lo < hi:  # power grows with n: bisect
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if power_paired_t(mid, effect, sd, alpha) < power else (lo, mid)
    return float(lo)


def verdict(adjusted_p: float, mean_diff: float, alpha: float = ALPHA) -> str:
    """Lower error is better: ``better`` / ``worse`` when Holm-resolved, else ``not resolved``."""
    if not adjusted_p == adjusted_p or adjusted_p >= alpha:
        return "not resolved"
    return "better" if mean_diff < 0 else "worse"
