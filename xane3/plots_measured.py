"""Figures of predictions laid on measurements: the experiment comparison and LCF.

Same conventions as ``xane3.plots``: the measurement solid black, the prediction as
edge-aligned dashed red, the broadened fit solid blue, LCF components thin dotted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xane3.plots import PRED, STYLE, plt, save_figure, top_legend

FIT = {"color": "#1f77b4", "lw": 1.2, "label": "XANE(3), broadened + shifted (fit)"}


def plot_experiment(path: str | Path, panels: Sequence[dict]) -> Path:
    """Measured vs predicted spectra side by side; each panel dict holds ``title``,
    ``energy`` (absolute, eV), ``measured``, ``predicted``, optional ``std``, ``fitted``
    (the broadening fit) and ``note``."""
    k = len(panels)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, k, figsize=(3.3 * k, 2.9), squeeze=False, sharey=True)
        for ax, p in zip(axes[0], panels):
            ax.plot(p["energy"], p["measured"], color="black", lw=1.4, label="experiment")
            ax.plot(p["energy"], p["predicted"], **{**PRED, "label": "XANE(3), edge-aligned"})
            if p.get("std") is not None:  # predict's band: ±2σ, calibrated where the ensemble is
                scale = p.get("std_scale")
                ax.fill_between(p["energy"], p["predicted"] - 2 * p["std"], p["predicted"] + 2 * p["std"],
                                color=PRED["color"], alpha=0.2, lw=0,
                                label=f"±2σ, calibrated (×{scale:.2f})" if scale else "±2σ of the members")
            if p.get("fitted") is not None:
                ax.plot(p["energy"], p["fitted"], **FIT)
            ax.set_title(p["title"])
            ax.set_xlabel("Energy (eV)")
            note = p.get("note", "")
            top_m, top_p = np.nanmax(p["measured"]), np.nanmax(p["predicted"])
            if top_p > 2.5 * top_m:  # keep the measurement readable; say that the curve leaves the axis
                ax.set_ylim(top=2.5 * top_m)
                note += f"\nprediction reaches {top_p:.1f} (off scale)"
            ax.text(0.97, 0.04, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
        axes[0, 0].set_ylabel("Normalised μ(E)")
        fig.tight_layout()
        top_legend(fig, axes[0, 0])
        return save_figure(fig, path)


def plot_lcf(path: str | Path, panels: Sequence[dict]) -> Path:
    """One panel per fitted spectrum: ``title``, ``energy``, ``measured``, ``fit``,
    ``components`` {name: curve} and ``note`` (fractions, R-factor)."""
    k = len(panels)
    cols = min(k, 3)
    rows = int(np.ceil(k / cols))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.7 * rows), squeeze=False,
                                 sharey=True)
        for ax in axes.flat[k:]:
            ax.set_visible(False)
        for ax, p in zip(axes.flat, panels):
            ax.plot(p["energy"], p["measured"], color="black", lw=1.4, label="measured")
            ax.plot(p["energy"], p["fit"], **{**PRED, "ls": "-", "lw": 1.2, "label": "LCF of predictions"})
            for (name, curve), c in zip(p["components"].items(), ("#2ca02c", "#9467bd", "#8c564b", "#e377c2")):
                ax.plot(p["energy"], curve, color=c, lw=0.9, ls=":", label=name)
            ax.set_title(p["title"])
            ax.set_xlabel("Energy (eV)")
            ax.text(0.97, 0.04, p.get("note", ""), transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=7)
        for ax in axes[:, 0]:
            ax.set_ylabel("Normalised μ(E)")
        fig.tight_layout()
        top_legend(fig, axes[0, 0])
        return save_figure(fig, path)
