"""Evaluation figures: confusion matrix, ROC curves, ablation bars.

Each function builds its own :class:`matplotlib.figure.Figure` on the Agg canvas (no pyplot, so
no global state), saves a PNG and returns its path. ``synthetic=True`` stamps a visible
"SYNTHETIC DATA — not clinical" note on the figure.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mrparotid.constants import CLASSES
from mrparotid.evaluation.stats import per_class_auc, roc_curve, micro_auc
from mrparotid.io.atomic import atomic_path

SYNTHETIC_NOTE = "SYNTHETIC DATA — not clinical"
_DPI = 120


def pretty_class(name: str) -> str:
    """Readable class name: ``"pleomorphic_adenoma"`` -> ``"pleomorphic adenoma"``, ``"warthin"`` -> ``"Warthin"``."""
    return name.replace("_", " ").replace("warthin", "Warthin")


#: Characters per title line: longer titles wrap instead of running off the figure.
TITLE_WIDTH = 44


def set_title(ax, title: str) -> None:
    """Axes title wrapped to :data:`TITLE_WIDTH` characters a line (a long run or fold name
    never runs off the figure)."""
    ax.set_title(textwrap.fill(title, TITLE_WIDTH, break_long_words=False))


def save_figure(fig: Figure, out_png: str | Path, synthetic: bool, *, top: float | None = None) -> Path:
    """Write ``fig`` as a PNG (atomically, parent folders created) and return its path;
    ``synthetic`` stamps :data:`SYNTHETIC_NOTE` above the axes, first lowering their top to
    ``top`` (figure fraction) when given."""
    if synthetic:
        if top is not None:
            fig.subplots_adjust(top=top)
        fig.suptitle(SYNTHETIC_NOTE, fontsize=11, fontweight="bold", color="white",
                     bbox={"boxstyle": "round,pad=0.3", "facecolor": "#c0392b", "edgecolor": "none"})
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png")
    return out


def plot_confusion(confusion: np.ndarray, out_png: str | Path, classes: tuple[str, ...] = CLASSES,
                   title: str = "Slice confusion matrix", synthetic: bool = False) -> Path:
    """Heat map of a confusion matrix with the count and row percentage in each cell.

    Parameters
    ----------
    confusion : ndarray, shape (C, C)
        Counts, rows = true class, columns = predicted class.
    out_png : path
        PNG to write (parent folders are created).

    Returns
    -------
    Path
        ``out_png``.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    names = [pretty_class(c) for c in classes]
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class (row)")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            pct = f"{100 * frac[i, j]:.0f}%" if rows[i, 0] else "–"
            ax.text(j, i, f"{cm[i, j]}\n{pct}", ha="center", va="center", fontsize=10,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    set_title(ax, title)
    return save_figure(fig, out_png, synthetic)


def _macro_curve(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(0.0, 1.0, 201)
    tprs = []
    for j in range(probs.shape[1]):
        pos = y == j
        if pos.any() and (~pos).any():
            fpr, tpr, _ = roc_curve(pos, probs[:, j])
            tprs.append(np.interp(grid, fpr, np.maximum.accumulate(tpr)))
    return grid, (np.mean(tprs, axis=0) if tprs else np.full_like(grid, np.nan))


def plot_roc(y_true_int, probs: np.ndarray, out_png: str | Path, classes: tuple[str, ...] = CLASSES,
             title: str = "Slice ROC curves (one-vs-rest)", synthetic: bool = False) -> Path:
    """One-vs-rest ROC curve per class plus micro- and macro-average curves, AUCs in the legend.

    Parameters
    ----------
    y_true_int : array of int, shape (n,)
        True class indices.
    probs : ndarray, shape (n, C)
        Class probabilities.
    out_png : path
        PNG to write.
    """
    y = np.asarray(y_true_int, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    aucs = per_class_auc(y, p, classes=classes)
    fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance")
    for j, name in enumerate(classes[:p.shape[1]]):
        pos = y == j
        if pos.any() and (~pos).any():
            fpr, tpr, _ = roc_curve(pos, p[:, j])
            ax.plot(fpr, tpr, lw=1.5, label=f"{pretty_class(name)} (AUC {aucs[name]['auc']:.3f})")
    onehot = np.eye(p.shape[1], dtype=bool)[y]
    fpr, tpr, _ = roc_curve(onehot.ravel(), p.ravel())
    ax.plot(fpr, tpr, lw=2.2, ls="--", color="black",
            label=f"micro-average (AUC {micro_auc(y, p):.3f})")
    finite = [v["auc"] for v in aucs.values() if np.isfinite(v["auc"])]
    grid, mean_tpr = _macro_curve(y, p)
    ax.plot(grid, mean_tpr, lw=2.2, ls="-.", color="dimgrey",
            label=f"macro-average (AUC {np.mean(finite):.3f})" if finite else "macro-average (AUC n/a)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    set_title(ax, title)
    ax.legend(loc="lower right", fontsize=8.5)
    ax.grid(alpha=0.3)
    return save_figure(fig, out_png, synthetic)


def plot_ablation(rows: list[dict], out_png: str | Path, title: str = "Channel ablation",
                  synthetic: bool = False) -> Path:
    """Grouped bars of slice accuracy and micro-AUC per model, with CI error bars.

    Parameters
    ----------
    rows : list of dict
        One per model: ``name``, ``accuracy``, ``acc_lo``, ``acc_hi``, ``micro_auc``, ``auc_lo``,
        ``auc_hi`` (fractions in [0, 1]).
    out_png : path
        PNG to write.
    """
    if not rows:
        raise ValueError("plot_ablation: no rows to plot")
    names = [str(r["name"]) for r in rows]
    x = np.arange(len(rows))
    width = 0.38
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.8), layout="constrained")
    ax = fig.add_subplot()
    for off, key, lo, hi, label, colour in ((-width / 2, "accuracy", "acc_lo", "acc_hi",
                                             "slice accuracy (Wilson CI)", "#4c72b0"),
                                            (width / 2, "micro_auc", "auc_lo", "auc_hi",
                                             "micro-AUC (DeLong CI)", "#dd8452")):
        v = np.array([float(r[key]) for r in rows])
        err = np.array([[max(v[i] - float(r[lo]), 0.0), max(float(r[hi]) - v[i], 0.0)]
                        for i, r in enumerate(rows)]).T.reshape(2, len(rows))
        bars = ax.bar(x + off, v, width, yerr=err, capsize=3, label=label, color=colour)
        for b, val in zip(bars, v):
            ax.text(b.get_x() + b.get_width() / 2, 0.02, f"{val:.3f}", ha="center", va="bottom",
                    fontsize=7.5, rotation=90, color="white")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("value (95% CI)")
    set_title(ax, title)
    ax.legend(loc="upper center", ncol=2, fontsize=8.5, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, out_png, synthetic)
