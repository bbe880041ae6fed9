"""The search report's pages: Markdown for the repository, one self-contained HTML file for a
browser (the figure embedded, no Python needed to read it)."""

from __future__ import annotations

import base64
import html as _html
import re
from pathlib import Path

import pandas as pd

from search.trainable import OBJECTIVE

FEW_TRIALS = 20  # below this, importances move a lot from one trial to the next


def _num(v: object, fmt: str) -> str:
    return "" if v is None or (isinstance(v, float) and v != v) else format(v, fmt)


def markdown(name: str, df: pd.DataFrame, imp: dict[str, float] | None, why: str,
             budget: int = 0, objectives: list[str] | None = None) -> str:
    """``df``: the trials with ``hours`` (``report.progress``)."""
    objectives = objectives or [OBJECTIVE]
    multi = len(objectives) > 1
    df = df.sort_values(OBJECTIVE, na_position="last")
    counts = ", ".join(f"{n} {s}" for s, n in df["status"].value_counts().items())
    costs = [o for o in ("n_parameters", "s_per_epoch", "infer_ms_per_structure") if o in df]
    lines = [f"# Search {name}", "", f"{len(df)} trials ({counts}); wall time "
             f"{df['hours'].max():.2f} h from the first start to the last result."
             + (f" Objectives: {', '.join(objectives)} (all minimised)." if multi else ""), "",
             "![search report](report.png)", ""]
    if multi and "pareto" in df:
        front = df[df["pareto"].fillna(False).astype(bool)].sort_values(objectives[1])
        lines += ["## Pareto front", "", f"Trials no other trial beats on every objective, by "
                  f"{objectives[1]}:", "", "| trial | " + " | ".join(objectives) + " | searched |",
                  "| --- | " + " | ".join("---:" for _ in objectives) + " | --- |"]
        lines += [f"| {r['trial_id']} | " + " | ".join(_num(r[o], ".4g") for o in objectives)
                  + f" | `{r['params_json']}` |" for _, r in front.iterrows()]
        lines.append("")
    lines += ["## Trials", "", f"| rank | trial | status | {OBJECTIVE} | "
              + "".join(f"{c} | " for c in costs) + "epochs | wall s | searched |",
              "| ---: | --- | --- | ---: | " + "---: | " * len(costs) + "---: | ---: | --- |"]
    for rank, (_, r) in enumerate(df.iterrows(), 1):
        lines.append(f"| {rank} | {r['trial_id']} | {r['status']} | {_num(r[OBJECTIVE], '.4g')} | "
                     + "".join(f"{_num(r[c], '.4g')} | " for c in costs)
                     + f"{_num(r['epochs_run'], '.0f')} | {_num(r['wall_time_s'], '.0f')} | `{r['params_json']}` |")
    lines += ["", "## Parameter importances (Optuna, over this table)", ""]
    if budget:
        lines += [f"Each trial's best validation objective within the first {budget} epoch(s), the "
                  "budget every trial ran (ASHA stopped the rest there), so all are compared alike.", ""]
    if imp and len(df) < FEW_TRIALS:
        lines += [f"**Caveat:** {len(df)} trials. Importances from fewer than ~{FEW_TRIALS} trials "
                  "change a lot with each new trial; read them as a hint, not a ranking.", ""]
    if imp:
        lines += ["| parameter | importance |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in imp.items()]
    else:
        lines.append(f"Not computed: {why}")
    return "\n".join(lines) + "\n"


def _inline(text: str) -> str:
    t = _html.escape(text)
    t = re.sub(r"`([^`]*)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]*)\*\*", r"<b>\1</b>", t)


def html(md: str, folder: Path) -> str:
    """The Markdown page as one HTML file: headings, paragraphs, tables, images inlined."""
    body, table = [], []

    def flush() -> None:
        if table:
            rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in table
                    if not re.fullmatch(r"\|[\s\-:|]+\|", ln.strip())]
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                                  for r in rest) + "</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        img = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip())
        if img and (folder / img.group(2)).exists():
            data = base64.b64encode((folder / img.group(2)).read_bytes()).decode()
            body.append(f'<img alt="{_html.escape(img.group(1))}" src="data:image/png;base64,{data}">')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 6px;text-align:left}th{background:#eee}img{max-width:100%}code{font-size:12px}")
    title = _html.escape(md.splitlines()[0].lstrip("# ")) if md else "search report"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
