"""Table 1: test-set terms x1e-3 per spec, and each spec's *paired* difference to the baseline.

Columns as the paper's table reads: spectrum MSE; gradient and curvature are the
final-weight terms (lambda x MSE of plain finite differences, the BASELINE's lambdas for
every row, so `no_derivative_loss` is comparable); total = their sum before rounding; E0
is not included. The statistics (``ablations.stats``) pair seed k of a spec with seed k of
the baseline; Holm's correction runs over every (spec, term) of the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations import stats
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
# what the paper's text claims of each ablation: (spec, term, expected verdict of removing
# it, the claim in words); "level" = no resolved difference, within +-LEVEL_PCT %
CLAIMS = [
    ("no_derivative_loss", "spectrum", "worse", "the derivative loss lowers the spectrum MSE (1.2 -> 1.0)"),
    ("no_global_background", "total", "worse", "the global background lowers the total (2.6 -> 2.3)"),
    ("no_gated_residual", "total", "worse", "the gated residual lowers the total (2.5 -> 2.3)"),
    ("no_attention_pooling", "total", "worse", "attention pooling lowers the total (2.6 -> 2.3)"),
    ("no_layer_norm", "total", "worse", "the layer norm lowers the total, by the most (5.5 -> 2.3)"),
    ("no_tensorial_features", "spectrum", "level",
     "a capacity-matched scalar-only model matches the spectrum MSE (0.9 vs 1.0)"),
    ("no_tensorial_features", "gradient", "worse",
     "tensorial channels improve derivative fidelity (gradient 0.7 -> 0.6)"),
]
LEVEL_PCT = 10.0


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


def summarise(scores: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """One row per spec: each term's mean and CI over its seeds; for variants, the paired
    difference to the baseline (``_delta``, ``_delta_ci95``, ``_pct``, ``_pct_ci95``), its
    p-values (``_p_signflip``, ``_p_t``, ``_p_holm``), ``_seeds_needed`` and ``_verdict``."""
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
            row[f"{t}_ci95"] = stats.ci_half_width(x)
            if spec != "baseline" and len(base):
                pr = stats.paired(dict(zip(base.seed, base[t])), dict(zip(s.seed, s[t])))
                ref = float(base[t].mean())
                row.update({f"{t}_paired_seeds": pr.n, f"{t}_delta": pr.mean,
                            f"{t}_delta_ci95": pr.ci95, f"{t}_pct": 100 * pr.mean / ref,
                            f"{t}_pct_ci95": 100 * pr.ci95 / ref, f"{t}_p_signflip": pr.p_signflip,
                            f"{t}_p_t": pr.p_t, f"{t}_sd": pr.sd})
        rows.append(row)
    out = pd.DataFrame(rows)
    _correct(out)
    return out


def _correct(out: pd.DataFrame) -> None:
    """Holm over every (variant, term) cell, then verdicts and seeds needed at Bonferroni's level."""
    cells = [(i, t) for i in out.index for t in TERMS if f"{t}_p_t" in out and out.at[i, "spec"] != "baseline"]
    adjusted = stats.holm([float(out.at[i, f"{t}_p_t"]) for i, t in cells])
    m = max(sum(a == a for a in adjusted), 1)
    for t in TERMS:
        if f"{t}_p_t" in out:
            out[f"{t}_p_holm"] = np.nan
            out[f"{t}_verdict"] = ""
            out[f"{t}_seeds_needed"] = np.nan
    for (i, t), adj in zip(cells, adjusted):
        out.at[i, f"{t}_p_holm"] = adj
        out.at[i, f"{t}_verdict"] = stats.verdict(adj, out.at[i, f"{t}_delta"])
        out.at[i, f"{t}_seeds_needed"] = stats.seeds_needed(out.at[i, f"{t}_delta"],
                                                            out.at[i, f"{t}_sd"], stats.ALPHA / m)


def claims(summary: pd.DataFrame) -> list[str]:
    """One line per paper claim: replicates, contradicts, or unresolved (with the seeds it takes)."""
    lines = []
    for spec, term, expect, text in CLAIMS:
        hit = summary[summary.spec == spec]
        if hit.empty or f"{term}_verdict" not in hit or not hit[f"{term}_verdict"].iloc[0]:
            lines.append(f"- **not run**: {text} (`{spec}` has no paired rows)")
            continue
        r = hit.iloc[0]
        got, pct, ci = r[f"{term}_verdict"], r[f"{term}_pct"], r[f"{term}_pct_ci95"]
        need = r[f"{term}_seeds_needed"]
        effect = f"{term} {pct:+.1f} % (95 % CI ±{ci:.1f} %, Holm p = {r[f'{term}_p_holm']:.3g})"
        if expect == "level":
            within = got == "not resolved" and abs(pct) + ci <= LEVEL_PCT
            word = "replicates" if within else ("contradicts" if got != "not resolved" else "unresolved")
        else:
            word = ("replicates" if got == expect else "unresolved" if got == "not resolved"
                    else "contradicts")
        more = ""
        if int(r[f"{term}_paired_seeds"]) < 2:
            effect = f"{term} {pct:+.1f} % on one paired seed (no spread yet)"
            more = "; at least 2 paired seeds are needed for any verdict"
        elif word == "unresolved" and expect != "level":
            more = (f"; resolving it would take ~{need:.0f} seeds" if np.isfinite(need)
                    else "; no seed count would resolve an effect this small against its spread")
        lines.append(f"- **{word}**: {text}. Here `{spec}`: {effect}{more}.")
    return lines


def _fmt_p(p: float) -> str:
    return "–" if not p == p else f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def _cell(row: pd.Series, t: str, learned: bool) -> str:
    ci = row[f"{t}_ci95"]
    txt = f"{row[t]:.3f} ± {ci:.3f}" if np.isfinite(ci) else f"{row[t]:.3f}"
    if np.isfinite(row.get(f"{t}_pct", np.nan)):
        mark = row[f"{t}_verdict"] if learned else "not interpretable"
        txt += f" ({row[f'{t}_pct']:+.1f} %, {mark})"
    return txt


def _paper(spec: str, i: int) -> str:
    vals = PAPER.get(spec)
    if vals is None:
        return "–"
    return "N/A" if vals[i] is None else f"{vals[i]:.1f}"


def effects(summary: pd.DataFrame) -> str:
    """The paired statistics, one line per (variant, term)."""
    head = ("| variant | term | seeds | Δ vs baseline (95 % CI) | Δ % (95 % CI) | p sign-flip | p paired t "
            "| p Holm | seeds for 80 % power | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines = []
    for _, r in summary[summary.spec != "baseline"].iterrows():
        for t in TERMS:
            if not np.isfinite(r.get(f"{t}_delta", np.nan)):
                continue
            need = r[f"{t}_seeds_needed"]
            need_txt = "–" if not need == need else f"> {stats.MAX_SEEDS}" if np.isinf(need) else f"{need:.0f}"
            lines.append(
                f"| {r['spec']} | {t} | {int(r[f'{t}_paired_seeds'])} | {r[f'{t}_delta']:+.3f} ± "
                f"{r[f'{t}_delta_ci95']:.3f} | {r[f'{t}_pct']:+.1f} ± {r[f'{t}_pct_ci95']:.1f} | "
                f"{_fmt_p(r[f'{t}_p_signflip'])} | {_fmt_p(r[f'{t}_p_t'])} | {_fmt_p(r[f'{t}_p_holm'])} | "
                f"{need_txt} | {r[f'{t}_verdict']} |")
    return head + "\n".join(lines) + "\n"


def markdown(summary: pd.DataFrame, mean_baseline: dict[str, float] | None = None) -> str:
    head = ("| variant | params | seeds | total | spectrum | gradient | curvature | paper total / spec / grad / curv |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines = []
    base = summary[summary.spec == "baseline"]
    # a baseline that does not beat the mean spectrum on the total has not learned: its
    # differences from the variants are noise, so no verdict is given
    learned = not (mean_baseline and len(base)) or base["total"].iloc[0] < mean_baseline["total"]
    for _, r in summary.iterrows():
        paper = " / ".join(_paper(r["spec"], i) for i in range(4))
        params = f"{int(r['parameters']):,}" if "parameters" in r and pd.notna(r.get("parameters")) else ""
        lines.append(f"| {r['spec']} | {params} | {int(r['seeds'])} | "
                     + " | ".join(_cell(r, t, learned) for t in TERMS) + f" | {paper} |")
    if mean_baseline:
        lines.append("| mean training spectrum (reference) | 0 | – | " +
                     " | ".join(f"{mean_baseline[t]:.3f}" for t in TERMS) + " | – |")
    out = head + "\n".join(lines) + "\n"
    if mean_baseline and len(base):
        beaten = [t for t in TERMS if base[t].iloc[0] < mean_baseline[t]]
        missed = [t for t in TERMS if t not in beaten]
        verdict = (f"beats the mean training spectrum on {', '.join(beaten) or 'no term'}"
                   + (f", not on {', '.join(missed)}" if missed else " (every term)"))
        out += f"\n**Learning check:** the baseline {verdict}.\n"
        if not learned:
            out += ("\n**Not interpretable:** the baseline does not beat the mean training spectrum "
                    "on the total, so the runs did not learn and no verdict is given.\n")
    out += ("\nValues x1e-3 on the test split, mean ± 95 % CI over seeds; in brackets the paired "
            "change vs the baseline in % of the baseline's mean and its verdict (Holm-corrected "
            "paired t-test over every variant and term, α = 0.05; lower is better). Gradient/"
            "curvature use the baseline's final weights.\n")
    if len(summary) > 1:
        out += "\n## Paired differences\n\n" + effects(summary)
        out += ("\nSeeds pair across specs (same split, data order and initialisation seed). "
                "The sign-flip p is exact (smallest possible 2/2^n); Holm runs over the paired t p-values "
                "of every row above; seeds for 80 % power: a paired t-test at the Bonferroni level "
                "(Holm's strictest step) for the observed difference and spread.\n")
        if learned:
            out += "\n## The paper's claims\n\n" + "\n".join(claims(summary)) + "\n"
    return out


def forest_plot(summary: pd.DataFrame, path, title: str = "XANE(3) ablations", learned: bool = True) -> None:
    """Paired % change vs the baseline with 95 % CIs, one panel per term; colour = verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xane3.plots import save_figure

    var = summary[summary.spec != "baseline"].reset_index(drop=True)
    colours = {"worse": "tab:red", "better": "tab:blue", "not resolved": "0.45", "": "0.45"}
    fig, axes = plt.subplots(1, len(TERMS), figsize=(13, 0.45 * max(len(var), 3) + 1.6), dpi=150,
                             sharey=True)
    y = np.arange(len(var))[::-1]
    for ax, t in zip(axes, TERMS):
        if f"{t}_pct" not in var:
            continue
        for yi, (_, r) in zip(y, var.iterrows()):
            c = colours.get(r[f"{t}_verdict"], "0.45") if learned else "0.45"
            ax.errorbar(r[f"{t}_pct"], yi, xerr=r[f"{t}_pct_ci95"] if np.isfinite(r[f"{t}_pct_ci95"]) else 0,
                        fmt="o", color=c, capsize=3, ms=4)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(t)
        ax.set_xlabel("change vs baseline (%)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, var["spec"])
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=k)
               for k, c in (("worse", "tab:red"), ("better", "tab:blue"), ("not resolved", "0.45"))]
    fig.legend(handles=handles, loc="lower center", frameon=False, ncol=3)
    fig.suptitle(title + ("" if learned else "\nNOT INTERPRETABLE: the baseline did not beat the mean "
                          "spectrum, no verdicts"), x=0.01, ha="left", color="k" if learned else "tab:red")
    fig.tight_layout(rect=(0, 0.05, 1, 0.9 if learned else 0.86))
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m ablations.table NAME``: rebuild Table 1 from whatever rows exist."""
    import argparse
    import sys
    from pathlib import Path

    from ablations.study import Study, finished, missing, read_rows, write_table

    p = argparse.ArgumentParser(prog="python -m ablations.table", description=(
        "Rebuild a study's Table 1 (Markdown, CSV, forest plot) from its result rows alone, and "
        "list the (spec, seed) runs still missing; `python -m ablations.run ... --resume` runs them."))
    p.add_argument("name", help="the study (experiment) name, e.g. ablations-cpu-2core")
    p.add_argument("--results-dir", default="results", help="where its rows are (default results/)")
    p.add_argument("--out", help="where to write the table (default: --results-dir)")
    args = p.parse_args(argv)
    try:
        study = Study.load(args.results_dir, args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if study is None:
        print(f"error: no study {args.name!r} under {Path(args.results_dir).resolve()}", file=sys.stderr)
        return 2
    rows = read_rows(args.results_dir, args.name)
    if finished(rows).empty:
        print(f"error: study {args.name!r} has no finished run yet", file=sys.stderr)
        return 1
    print(write_table(rows, study, Path(args.out or args.results_dir)))
    todo = missing(study, rows)
    print(f"{len(todo)} run(s) missing" + (": " + " ".join(todo) if todo else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
