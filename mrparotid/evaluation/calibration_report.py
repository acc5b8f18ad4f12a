"""Figures of the calibration and answer sections: the reliability diagram
(:mod:`mrparotid.evaluation.calibration`) and p(malignant) per patient with the two cuts
(:mod:`mrparotid.evaluation.answers`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mrparotid.evaluation.plots import save_figure, set_title

#: Top of the axes (figure fraction) on SYNTHETIC figures, below the stamped note.
SYNTHETIC_TOP = 0.84


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Per confidence bin (top label): ``lo, hi, n, confidence`` (mean), ``accuracy``; empty bins
    left out."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    idx = np.minimum(np.searchsorted(np.linspace(0, 1, n_bins + 1), conf, side="right") - 1, n_bins - 1)
    rows = [{"lo": k / n_bins, "hi": (k + 1) / n_bins, "n": int((idx == k).sum()),
             "confidence": float(conf[idx == k].mean()), "accuracy": float(correct[idx == k].mean())}
            for k in range(n_bins) if (idx == k).any()]
    return pd.DataFrame(rows, columns=["lo", "hi", "n", "confidence", "accuracy"])


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path, *,
                     n_bins: int = 15, title: str = "Reliability", synthetic: bool = False) -> Path:
    """Reliability diagram: accuracy against mean top-label confidence per bin, one line per
    ``name -> (probs (n, 4), y (n,))``, marker area by slice count; the diagonal is perfect."""
    fig = Figure(figsize=(5.5, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, (probs, y) in curves.items():
        b = reliability_bins(probs, y, n_bins)
        line, = ax.plot(b["confidence"], b["accuracy"], marker="", linewidth=1.5, label=name)
        ax.scatter(b["confidence"], b["accuracy"], s=10 + 200 * b["n"] / max(int(b["n"].sum()), 1),
                   color=line.get_color(), alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"mean confidence of the predicted class ({n_bins} bins)")
    ax.set_ylabel("slice accuracy in the bin")
    ax.legend(loc="upper left", fontsize=8)
    set_title(ax, title)
    fig.tight_layout()
    return save_figure(fig, out_png, synthetic, top=SYNTHETIC_TOP)


def plot_p_malignant(table: pd.DataFrame, lo: float | None, hi: float | None, out_png: str | Path, *,
                     title: str = "p(malignant) per patient", synthetic: bool = False) -> Path:
    """Each test patient's p(malignant) by true diagnosis (referred patients hollow), with the
    rule-out (``lo``) and rule-in (``hi``) cuts as lines."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    groups = ["pleomorphic_adenoma", "warthin", "malignant"]
    rng = np.random.default_rng(0)
    for i, g in enumerate(groups):
        rows = table.loc[table["true"] == g]
        x = i + rng.uniform(-0.15, 0.15, len(rows))
        ref = rows["referred"].to_numpy(bool)
        p = rows["p_malignant"].to_numpy(float)
        ax.scatter(x[~ref], p[~ref], s=22, color=f"C{i}", label=None)
        ax.scatter(x[ref], p[ref], s=22, facecolors="none", edgecolors=f"C{i}")
    for cut, name, style in ((lo, "rule-out cut (benign below)", "--"), (hi, "rule-in cut (malignant at or above)", ":")):
        if cut is not None and math.isfinite(cut):
            ax.axhline(cut, color="0.3", linestyle=style, linewidth=1, label=f"{name} {cut:.3f}")
    ax.set_xticks(range(len(groups)), ["PA", "Warthin", "malignant"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("p(malignant) (hollow: referred)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    set_title(ax, title)
    fig.tight_layout()
    return save_figure(fig, out_png, synthetic, top=SYNTHETIC_TOP)


def plot_validation_curve(values: list[float], from_epoch: int, out_png: str | Path, *,
                          title: str = "Validation figure per epoch", synthetic: bool = False) -> tuple[Path, int | None]:
    """The figure ``best.ckpt`` is chosen on, per epoch (validation patient log loss of the
    calibrated p(malignant)), with the eligible epochs (from ``from_epoch``) shaded and the chosen
    one marked. Returns (path, chosen epoch or None)."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    eligible = np.where(np.arange(len(v)) >= from_epoch, v, np.nan)
    chosen = int(np.nanargmin(eligible)) if np.isfinite(eligible).any() else None
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.arange(len(v)), v, marker="o", markersize=3, linewidth=1.2, label="validation patient log loss")
    ax.axvspan(from_epoch - 0.5, len(v) - 0.5, color="0.9", zorder=0, label="epochs eligible for best.ckpt")
    if chosen is not None:
        ax.scatter([chosen], [v[chosen]], s=80, facecolors="none", edgecolors="C3", label=f"best.ckpt (epoch {chosen})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("log loss of p(malignant), nats per patient")
    ax.legend(loc="upper right", fontsize=8)
    set_title(ax, title)
    fig.tight_layout()
    return save_figure(fig, out_png, synthetic, top=SYNTHETIC_TOP), chosen
