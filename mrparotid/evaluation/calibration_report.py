"""Figures and report lines of the calibration section (:mod:`mrparotid.evaluation.calibration`):
the reliability diagram, the coverage-accuracy curve of the refer band, the Markdown section."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mrparotid.evaluation.plots import save_figure, set_title
from mrparotid.inference.refer import band_text

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


def plot_band_curve(curve: pd.DataFrame, band, coverage: float, out_png: str | Path, *,
                    title: str = "Refer band", synthetic: bool = False) -> Path:
    """Accuracy and malignant sensitivity on the answered patients against coverage, for the bands
    [lo, hi) of :func:`~mrparotid.evaluation.calibration.band_curve`; the chosen band's
    ``coverage`` marked."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.step(curve["coverage"], curve["accuracy"], where="post", label="accuracy (answered)")
    ax.step(curve["coverage"], curve["sensitivity"], where="post", label="malignant sensitivity (answered)")
    if band is not None and math.isfinite(coverage):
        ax.axvline(coverage, color="0.3", linestyle=":", label=f"chosen band {band_text(band)}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("coverage (share of patients answered)")
    ax.set_ylabel("rate on answered patients")
    ax.legend(loc="lower left", fontsize=8)
    set_title(ax, title)
    fig.tight_layout()
    return save_figure(fig, out_png, synthetic, top=SYNTHETIC_TOP)


def _f(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def _ci(r: dict) -> str:
    return f"{_f(r.get('estimate'))} [{_f(r.get('lo'))}, {_f(r.get('hi'))}]"


def _rate(r: dict) -> str:
    return f"{_ci(r)} ({r.get('k')}/{r.get('n')})" if r.get("n") else "n/a (none)"


def calibration_markdown(section: dict | None) -> list[str]:
    """The report's "Calibration and referral" section (no lines for None)."""
    if not section:
        return []
    cal, sl, pt = section["calibration"], section["slice"], section["patient"]
    band = cal.get("refer_band")
    auc = pt["auc"]
    b = pt["band"]
    lines = ["", "## Calibration and referral", "",
             f"Temperature {cal['temperature']:.3f} ({section['source']}); p(malignant) = "
             f"{cal['aggregation'].replace('_', '-')} of the calibrated malignant probability over "
             "the patient's tumour slices (mean vs noisy-OR chosen by patient log loss on validation: "
             + ", ".join(f"{k} {_f(v)}" for k, v in (cal.get("val_log_loss") or {}).items()) + ")."
             + (f" **Warning:** {cal['temperature_note']}." if cal.get("temperature_note") else ""), "",
             f"| slices | before (T = 1) | after (T = {cal['temperature']:.2f}) |", "|---|---|---|",
             f"| ECE ({sl['n_bins']} bins) | {_ci(sl['ece']['before'])} | {_ci(sl['ece']['after'])} |",
             f"| Brier | {_ci(sl['brier']['before'])} | {_ci(sl['brier']['after'])} |", "",
             "CIs: patient-clustered bootstrap. ![reliability](reliability.png)", "",
             f"Patient AUC of p(malignant): {_f(auc['auc'])} [{_f(auc['lo'])}, {_f(auc['hi'])}] "
             f"(DeLong){' - ' + auc['na_reason'] if auc.get('na_reason') else ''}; {pt['n']} patients.", "",
             f"Refer band: {band_text(band)} - {cal.get('refer_note', '')}", "",
             "| answered patients | value [95% CI] |", "|---|---|",
             f"| coverage | {_rate(b['coverage'])} |", f"| accuracy (diagnosis) | {_rate(b['accuracy'])} |",
             f"| benign-vs-malignant accuracy | {_rate(b['bvm_accuracy'])} |",
             f"| malignant sensitivity | {_rate(b['sensitivity'])} |", "",
             f"{b['n_referred']} of {b['n_patients']} patients referred. Wilson CIs. "
             "![coverage-accuracy](coverage_accuracy.png)"]
    return lines


def calibration_lines(section: dict | None) -> list[str]:
    """What ``mrparotid evaluate`` prints of the calibration section (a WARNING line first when no
    refer band could be chosen)."""
    if not section:
        return []
    cal, sl, b, auc = section["calibration"], section["slice"], section["patient"]["band"], section["patient"]["auc"]
    band = cal.get("refer_band")
    return [f"WARNING: {w}" for w in section.get("warnings", [])] + [
        f"calibration: temperature {cal['temperature']:.3f} ({section['source']})",
        f"ECE {_ci(sl['ece']['before'])} -> {_ci(sl['ece']['after'])}; Brier {_ci(sl['brier']['before'])} -> "
        f"{_ci(sl['brier']['after'])} (before -> after, patient-clustered bootstrap)",
        f"p(malignant) ({cal['aggregation'].replace('_', '-')}) patient AUC {_f(auc['auc'])} "
        f"[{_f(auc['lo'])}, {_f(auc['hi'])}] (DeLong)",
        f"refer band {band_text(band)}"
        + f": coverage {_rate(b['coverage'])}, accuracy {_rate(b['accuracy'])}, malignant sensitivity "
          f"{_rate(b['sensitivity'])} on answered patients"]
