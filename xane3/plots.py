"""Publication-quality figures (PNG, matplotlib Agg): what a reader checks first.

One function per figure, each taking plain arrays and a path, so evaluation,
prediction and the experiment comparison draw the same way. Reference spectra are
solid black, predictions dashed red (colour-blind safe against black), baselines
grey dotted; energies are absolute (eV) whenever an E0 is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402

from xane3.atomic import atomic_path  # noqa: E402

STYLE = {
    "figure.dpi": 100, "savefig.dpi": 300, "savefig.bbox": "tight", "font.size": 9,
    "axes.labelsize": 9, "axes.titlesize": 9, "legend.fontsize": 8, "legend.frameon": False,
    "xtick.direction": "in", "ytick.direction": "in", "xtick.top": True, "ytick.right": True,
    "axes.linewidth": 0.8, "lines.linewidth": 1.4,
}
REF = {"color": "black", "lw": 1.4, "label": "reference"}
PRED = {"color": "#d62728", "lw": 1.4, "ls": "--", "label": "XANE(3)"}
BASE = {"color": "0.55", "lw": 1.0, "ls": ":", "label": "mean-spectrum baseline"}


def save_figure(fig: plt.Figure, path: str | Path, **savefig_kw) -> Path:
    """Write ``fig`` atomically (format from the suffix) and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:  # a crash never leaves half a PNG behind
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kw)
    finally:
        plt.close(fig)
    return path


def _axis(energy: np.ndarray, e0: float) -> tuple[np.ndarray, str]:
    if np.isfinite(e0):
        return energy + e0, "Energy (eV)"
    return energy, "E − E$_0$ (eV)"


def plot_examples(path: str | Path, energy: np.ndarray, ref: np.ndarray, pred: np.ndarray,
                  mask: np.ndarray, titles: Sequence[str], e0_ref: Sequence[float],
                  e0_pred: Sequence[float], baseline: np.ndarray | None = None,
                  notes: Sequence[str] | None = None) -> Path:
    """Predicted vs reference spectra, one panel per sample (paper Figure 2).

    Both curves are drawn on the reference E0's absolute axis (the shape is the
    comparison); the predicted E0 is given in the panel.
    """
    k = len(ref)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, k, figsize=(3.3 * k, 2.8), squeeze=False)
        for i, ax in enumerate(axes[0]):
            x, xlabel = _axis(energy, float(e0_ref[i]))
            m = mask[i]  # compare only where the reference exists
            ax.plot(x[m], ref[i][m], **REF)
            ax.plot(x[m], pred[i][m], **PRED)
            if baseline is not None:
                ax.plot(x[m], baseline[m], **BASE)
            text = notes[i] if notes else ""
            if np.isfinite(e0_ref[i]) and np.isfinite(e0_pred[i]):
                text += f"\nE$_0$ ref {e0_ref[i]:.1f} eV, pred {e0_pred[i]:.1f} eV"
            ax.text(0.97, 0.04, text.strip(), transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
            ax.set_title(titles[i])
            ax.set_xlabel(xlabel)
        axes[0, 0].set_ylabel("Normalised μ(E)")
        fig.tight_layout()
        top_legend(fig, axes[0, 0])
        return save_figure(fig, path)


def top_legend(fig: plt.Figure, ax: plt.Axes) -> None:
    """One legend above all panels, so it never hides a curve."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, 1.0))


def plot_derivatives(path: str | Path, energy: np.ndarray, ref: np.ndarray, pred: np.ndarray,
                     mask: np.ndarray, titles: Sequence[str]) -> Path:
    """Spectrum, first and second differences per sample (paper Figure 3's argument):
    a small pointwise error can hide wrong slopes and curvature."""
    k = len(ref)
    rows = (("μ(E)", 0), ("Δμ", 1), ("Δ²μ", 2))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(3, k, figsize=(3.2 * k, 5.6), sharex="col", squeeze=False)
        for i in range(k):
            for r, (label, order) in enumerate(rows):
                ax = axes[r, i]
                m = mask[i].copy()
                y_ref, y_pred, x = np.where(mask[i], ref[i], np.nan), pred[i], energy
                for _ in range(order):
                    y_ref, y_pred, x = np.diff(y_ref), np.diff(y_pred), 0.5 * (x[1:] + x[:-1])
                    m = m[1:] & m[:-1]
                ax.plot(x[m], y_ref[m], **REF)
                ax.plot(x[m], y_pred[m], **PRED)
                if i == 0:
                    ax.set_ylabel(label)
                if r == 0:
                    ax.set_title(titles[i])
            axes[-1, i].set_xlabel("E − E$_0$ (eV)")
        fig.tight_layout()
        top_legend(fig, axes[0, 0])
        return save_figure(fig, path)


def plot_error_distribution(path: str | Path, model: pd.DataFrame, baseline: pd.DataFrame | None = None) -> Path:
    """Histograms of per-spectrum errors, the model beside the baseline."""
    panels = [("mse_spectrum", "spectrum MSE (log$_{10}$)", True),
              ("mse_gradient", "gradient MSE (log$_{10}$)", True),
              ("err_edge_ev", "edge position error (eV)", False),
              ("err_wl_ev", "white-line position error (eV)", False),
              ("err_wl_height", "white-line height error", False),
              ("err_e0", "E$_0$ error (eV)", False)]
    panels = [p for p in panels if np.isfinite(model[p[0]].to_numpy(float)).any()]
    with plt.rc_context(STYLE):
        cols = 3
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.5 * rows), squeeze=False)
        for ax, (col, label, log) in zip(axes.flat, panels):
            series = [("XANE(3)", model, PRED["color"])]
            if baseline is not None:
                series.append(("baseline", baseline, BASE["color"]))
            vals = []
            for name, df, color in series:
                v = df[col].to_numpy(float)
                v = v[np.isfinite(v)]
                if log:
                    v = np.log10(np.clip(v, 1e-12, None))
                vals.append((name, v, color))
            allv = np.concatenate([v for _, v, _ in vals]) if vals else np.array([0.0])
            bins = np.histogram_bin_edges(allv, bins=min(40, max(8, len(allv) // 4)))
            for name, v, color in vals:
                ax.hist(v, bins=bins, histtype="stepfilled" if name == "XANE(3)" else "step",
                        color=color, alpha=0.55 if name == "XANE(3)" else 1.0, lw=1.2, label=name)
            ax.set_xlabel(label)
            ax.set_title("median " + " | ".join(f"{n} {np.median(v):.3g}" for n, v, _ in vals if v.size),
                         fontsize=7)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        axes[0, 0].set_ylabel("spectra")
        fig.tight_layout()
        top_legend(fig, axes[0, 0])
        return save_figure(fig, path)


def plot_learning_curves(path: str | Path, metrics: pd.DataFrame) -> Path:
    """Train/validation loss terms per epoch from a run's metrics.parquet."""
    terms = [t for t in ("spectrum", "gradient", "curvature") if f"val_{t}" in metrics]
    terms += ["e0"] if "val_e0_mae_ev" in metrics and metrics["val_e0_mae_ev"].notna().any() else []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(terms) + 1, figsize=(2.7 * (len(terms) + 1), 2.6), squeeze=False)
        ep = metrics["epoch"].to_numpy() + 1
        for ax, t in zip(axes[0], terms):
            for split, style in (("train", {"color": "#1f77b4"}), ("val", {"color": "#d62728"})):
                # the training E0 term is a z-scored L1; only validation has it in eV
                col = "val_e0_mae_ev" if t == "e0" else f"{split}_{t}"
                if col in metrics and not (t == "e0" and split == "train"):
                    ax.plot(ep, metrics[col], marker="o", ms=2.5, label=split, **style)
            ax.set_yscale("log")
            ax.set_title(f"{t} {'MAE (eV)' if t == 'e0' else 'MSE'}")
            ax.set_xlabel("epoch")
        ax = axes[0, -1]
        ax.plot(ep, metrics["lr"], color="black", label="learning rate")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title("learning rate")
        if "deriv_factor" in metrics:
            ax2 = ax.twinx()
            ax2.plot(ep, metrics["deriv_factor"], color="0.5", ls="--", label="derivative weight")
            ax2.set_ylim(-0.05, 1.05)
            ax2.set_ylabel("derivative-loss factor", color="0.4")
        axes[0, 0].legend()
        fig.tight_layout()
        return save_figure(fig, path)


def _neighbours(atoms: Atoms, centre: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(atom index, vector from the centre) of every atom/image within ``radius``."""
    a = atoms.copy()
    if not a.pbc.any():
        a.cell = np.zeros((3, 3))
    i, j, vec = neighbor_list("ijD", a, radius)
    keep = i == centre
    return j[keep], vec[keep]


def plot_attention(path: str | Path, atoms: Atoms, absorbers: Sequence[int], weights: dict[int, float],
                   radius: float = 6.0, title: str = "") -> Path:
    """The absorber and its neighbours within ``radius``, projected onto their principal
    plane, coloured and sized by the absorber-query attention weight of each atom."""
    centre = int(absorbers[0])
    j, vec = _neighbours(atoms, centre, radius)
    pooled = np.isin(j, np.asarray(absorbers))  # other absorbers of the group: not attended to
    other_abs, j, vec = vec[pooled], j[~pooled], vec[~pooled]
    w = np.array([weights.get(int(a), 0.0) for a in j])
    vt = np.eye(3)
    if len(vec) >= 3:
        _, _, vt = np.linalg.svd(vec - vec.mean(0), full_matrices=False)
    xyz, xyz_abs = vec @ vt.T, other_abs @ vt.T
    inside = sum(weights.get(int(a), 0.0) for a in set(j.tolist()) - set(int(x) for x in absorbers))
    wmin, wmax = (float(w.min()), float(w.max())) if w.size else (0.0, 1.0)
    span = max(wmax - wmin, 1e-12)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.4, 3.9))
        order = np.argsort(xyz[:, 2]) if len(xyz) else []
        dist = np.linalg.norm(vec, axis=1)
        for k in np.flatnonzero(dist < 2.6):
            ax.plot([0, xyz[k, 0]], [0, xyz[k, 1]], color="0.75", lw=0.8, zorder=1)
        sym = np.array([atoms[int(a)].symbol for a in j])
        sc = None
        for el, marker in zip(sorted(set(sym.tolist())), "osD^vph<>*"):  # one marker per element
            sel = [k for k in order if sym[k] == el]
            sc = ax.scatter(xyz[sel, 0], xyz[sel, 1], c=w[sel], s=12 + 220 * (w[sel] - wmin) / span,
                            marker=marker, cmap="viridis", vmin=wmin, vmax=wmin + span, edgecolors="black",
                            linewidths=0.4, zorder=2)
            ax.scatter([], [], marker=marker, s=30, color="0.8", edgecolors="black", linewidths=0.4, label=el)
        ax.scatter([0], [0], marker="*", s=320, color="#d62728", edgecolors="black", linewidths=0.6, zorder=3)
        ax.scatter([], [], marker="*", s=80, color="#d62728", edgecolors="black", linewidths=0.4,
                   label=f"absorber {atoms[centre].symbol}{centre}")  # legend proxy
        if len(xyz_abs):
            ax.scatter(xyz_abs[:, 0], xyz_abs[:, 1], marker="*", s=80, color="#ff9896", edgecolors="black",
                       linewidths=0.4, zorder=3, label="pooled absorbers")
        first_shell = np.flatnonzero(dist < 2.6).tolist()
        for k in dict.fromkeys(np.argsort(-w)[:5].tolist() + first_shell):
            ax.annotate(f"{atoms[int(j[k])].symbol}{int(j[k])}", (xyz[k, 0], xyz[k, 1]),
                        xytext=(4, 4), textcoords="offset points", fontsize=6.5, zorder=4)
        if sc is not None:
            fig.colorbar(sc, ax=ax, label="attention weight")
        ax.set_aspect("equal")
        ax.set_xlabel("principal axis 1 (Å)")
        ax.set_ylabel("principal axis 2 (Å)")
        ax.set_title((title + "\n" if title else "")
                     + f"{inside:.0%} of the attention within {radius:g} Å; "
                     + f"uniform weight {1 / max(len(weights), 1):.2g}", fontsize=8)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=6, fontsize=7, handletextpad=0.2,
                  columnspacing=0.8)
        fig.tight_layout()
        return save_figure(fig, path)


def plot_prediction(path: str | Path, energy: np.ndarray, labels: Sequence[str], spectra: np.ndarray,
                    std: np.ndarray | None = None, e0: Sequence[float] | None = None,
                    title: str = "", warning: str = "") -> Path:
    """Predicted spectra of one structure: one curve per group of equivalent sites (ensemble
    spread shaded) and, for several sites, their average (what a measurement sees). ``warning``:
    why the prediction is out of domain, written in red on the plot and into its title (also the
    PNG's Title), so the figure never travels without it."""
    if warning:
        title = f"OUT OF DOMAIN: {title}"
    from xane3.sites import equivalent_groups, group_label, site_average

    groups = equivalent_groups(spectra)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
        colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(groups), 1)))
        xlabel = "E − E$_0$ (eV)"
        for c, g in zip(colors, groups):
            i = g[0]
            e0_i = float(e0[i]) if e0 is not None else np.nan
            x, xlabel = _axis(energy, e0_i)
            ax.plot(x, spectra[i], color=c, lw=1.0, alpha=0.8,
                    label=group_label(labels, g) if len(groups) <= 10 else None)
            if std is not None and np.any(std[i] > 0):
                ax.fill_between(x, spectra[i] - std[i], spectra[i] + std[i], color=c, alpha=0.25, lw=0)
        if len(labels) > 1:
            grid, mean, absolute = site_average(energy, spectra, e0)
            x = grid if absolute else _axis(energy, np.nan)[0]
            ax.plot(x, mean, color="black", lw=2.0, label=f"average of {len(labels)} sites")
        if len(groups) > 10:
            ax.plot([], [], color=colors[0], label=f"{len(groups)} distinct sites")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Normalised μ(E)")
        ax.set_title(title, color="#d62728" if warning else "black")
        if warning:
            ax.text(0.02, 0.98, f"out of domain: {warning}", transform=ax.transAxes, va="top",
                    color="#d62728", fontsize="x-small", wrap=True)
        ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        return save_figure(fig, path, metadata={"Title": title + (f" ({warning})" if warning else "")})
