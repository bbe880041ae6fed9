"""Table 1: test-set terms x1e-3, mean +/- 95 % CI over seeds, against the baseline.

Columns as the paper's table reads: spectrum MSE; gradient and curvature are the
final-weight terms (lambda x MSE of plain finite differences, the BASELINE's
lambdas for every row, so `no_derivative_loss` is comparable); total = their sum
before rounding; E0 is not included.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from xane3.objective import combine

# paper Table 1 (x1e-3): total, spectrum, gradient, curvature (None = N/A)
PAPER = {
    "baseline": (2.3, 1.0, 0.6, 0.6),
    "no_derivative_loss": (None, 1.2, None, None),
    "no_global_background": (2.6, 1.0, 0.8, 0.8),
    "no_gated_residual": (2.5, 1.0, 0.7, 0.8),
    "no_attention_pooling": (2.6, 0.9, 0.8, 0.8),
    "no_layer_norm": (5.5, 2.0, 2.0, 1.5),
    "no_tensorial_features": (2.2, 0.9, 0.7, 0.7),
}
TERMS = ("total", "spectrum", "gradient", "curvature")


def score_rows(df: pd.DataFrame, lambda_grad: float, lambda_curv: float) -> pd.DataFrame:
    """Per (spec, seed) scores x1e-3 from unweighted test MSEs."""
    out = df[["spec", "seed"]].copy()
    out["spectrum"] = df["test_spectrum"] * 1e3
    out["gradient"] = lambda_grad * df["test_gradient"] * 1e3
    out["curvature"] = lambda_curv * df["test_curvature"] * 1e3
    out["total"] = combine({k: df[f"test_{k}"] for k in ("spectrum", "gradient", "curvature")},
                           lambda_grad, lambda_curv) * 1e3
    if "parameters" in df:
        out["parameters"] = df["parameters"]
    return out


def ci95(x: np.ndarray) -> float:
    """Half-width of the t-based 95 % CI of the mean (NaN for one seed)."""
    n = len(x)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * np.std(x, ddof=1) / math.sqrt(n))


def summarise(scores: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """One row per spec: mean, CI, change vs baseline and Welch-test significance per term."""
    rows = []
    base = scores[scores.spec == "baseline"]
    for spec in order:
        s = scores[scores.spec == spec]
        if s.empty:
            continue
        row: dict = {"spec": spec, "seeds": len(s)}
        if "parameters" in s:
            row["parameters"] = int(s["parameters"].iloc[0])
        for t in TERMS:
            x = s[t].to_numpy(float)
            row[t] = float(np.mean(x))
            row[f"{t}_ci95"] = ci95(x)
            if spec != "baseline" and len(base):
                b = base[t].to_numpy(float)
                row[f"{t}_delta"] = row[t] - float(np.mean(b))
                p = stats.ttest_ind(x, b, equal_var=False).pvalue if len(x) > 1 and len(b) > 1 else np.nan
                row[f"{t}_p"] = float(p)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(row: pd.Series, t: str, marks: bool = True) -> str:
    txt = f"{row[t]:.3f} ± {row[f'{t}_ci95']:.3f}" if np.isfinite(row[f"{t}_ci95"]) else f"{row[t]:.3f}"
    if f"{t}_delta" in row and np.isfinite(row.get(f"{t}_delta", np.nan)):
        mark = "*" if marks and row.get(f"{t}_p", 1.0) < 0.05 else ""
        txt += f" ({row[f'{t}_delta']:+.3f}{mark})"
    return txt


def _paper(spec: str, i: int) -> str:
    vals = PAPER.get(spec)
    if vals is None:
        return "–"
    return "N/A" if vals[i] is None else f"{vals[i]:.1f}"


def markdown(summary: pd.DataFrame, mean_baseline: dict[str, float] | None = None) -> str:
    head = ("| variant | params | total | spectrum | gradient | curvature | paper total / spec / grad / curv |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n")
    lines = []
    base = summary[summary.spec == "baseline"]
    # a baseline that does not beat the mean spectrum on the total has not learned: its
    # differences from the variants are noise, so nothing is marked significant
    learned = not (mean_baseline and len(base)) or base["total"].iloc[0] < mean_baseline["total"]
    for _, r in summary.iterrows():
        paper = " / ".join(_paper(r["spec"], i) for i in range(4))
        params = f"{int(r['parameters']):,}" if "parameters" in r and pd.notna(r.get("parameters")) else ""
        lines.append(f"| {r['spec']} | {params} | " + " | ".join(_cell(r, t, learned) for t in TERMS)
                     + f" | {paper} |")
    if mean_baseline:
        lines.append("| mean training spectrum (reference) | 0 | " +
                     " | ".join(f"{mean_baseline[t]:.3f}" for t in TERMS) + " | – |")
    if mean_baseline and len(base):
        beaten = [t for t in TERMS if base[t].iloc[0] < mean_baseline[t]]
        missed = [t for t in TERMS if t not in beaten]
        verdict = (f"beats the mean training spectrum on {', '.join(beaten) or 'no term'}"
                   + (f", not on {', '.join(missed)}" if missed else " (every term)"))
        lines.append(f"\n**Learning check:** the baseline {verdict}.")
        if not learned:
            lines.append("\n**Not interpretable:** the baseline does not beat the mean training spectrum "
                         "on the total, so the runs did not learn and no effect is marked significant.")
    note = ("\nValues x1e-3 on the test split, mean ± 95 % CI over seeds; (change vs baseline, "
            "* = Welch t-test p < 0.05). Gradient/curvature use the baseline's final weights.\n")
    return head + "\n".join(lines) + "\n" + note


def bar_chart(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xane3.plots import save_figure

    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=150)
    x = np.arange(len(summary))
    width = 0.2
    for k, t in enumerate(TERMS):
        ci = summary[f"{t}_ci95"].fillna(0).to_numpy(float)
        low = np.minimum(ci, summary[t].to_numpy(float))  # an error can't go below zero
        ax.bar(x + (k - 1.5) * width, summary[t], width, yerr=[low, ci], capsize=2, label=t)
    ax.set_xticks(x, summary["spec"], rotation=30, ha="right")
    ax.set_ylabel("test error (x1e-3)")
    ax.set_title("XANE(3) ablations: mean ± 95 % CI over seeds")
    ax.legend(frameon=False, ncol=4)
    fig.tight_layout()
    save_figure(fig, path)
