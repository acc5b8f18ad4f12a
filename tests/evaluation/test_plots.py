"""Tests for mrparotid.evaluation.plots: PNGs are written, valid, and leave no pyplot state behind."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mrparotid.evaluation import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CM = np.array([[89, 0, 0, 0], [0, 41, 15, 1], [0, 14, 18, 4], [0, 9, 8, 76]])


def _probs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 2.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


ROWS = [dict(name=n, accuracy=a, acc_lo=a - 0.05, acc_hi=a + 0.04, micro_auc=a + 0.1,
             auc_lo=a + 0.07, auc_hi=min(a + 0.13, 1.0))
        for n, a in (("T1", 0.706), ("CE-T1", 0.739), ("T1,CE-T1,T2,mask (ref)", 0.822))]


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("synthetic", [False, True])
def test_plots_write_pngs(tmp_path, synthetic):
    y, p = _probs()
    paths = [
        plots.plot_confusion(CM, tmp_path / "sub" / "confusion.png", synthetic=synthetic),
        plots.plot_roc(y, p, tmp_path / "roc.png", synthetic=synthetic),
        plots.plot_ablation(ROWS, tmp_path / "ablation.png", synthetic=synthetic),
    ]
    for path in paths:
        assert path.is_file() and _is_png(path)


def test_synthetic_note_changes_the_image(tmp_path):
    a = plots.plot_confusion(CM, tmp_path / "a.png").read_bytes()
    b = plots.plot_confusion(CM, tmp_path / "b.png", synthetic=True).read_bytes()
    assert a != b


def test_roc_with_absent_class_and_empty_row(tmp_path):
    y = np.array([0, 0, 1, 1, 3, 3])
    p = np.eye(4)[[0, 1, 1, 3, 3, 0]] * 0.7 + 0.075
    assert _is_png(plots.plot_roc(y, p, tmp_path / "roc.png"))
    cm = CM.copy()
    cm[2] = 0
    assert _is_png(plots.plot_confusion(cm, tmp_path / "cm.png"))
    with pytest.raises(ValueError):
        plots.plot_ablation([], tmp_path / "none.png")


def test_no_pyplot_state(tmp_path):
    """Plotting uses Figure objects only: pyplot (global state, GUI backends) is never imported."""
    code = ("import sys, numpy as np; from mrparotid.evaluation import plots; "
            f"plots.plot_confusion(np.eye(4, dtype=int) * 3, r'{tmp_path / 'cm.png'}'); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True)
    assert out.stdout.strip() == "False"


def test_long_titles_stay_inside_the_figure(tmp_path, monkeypatch):
    """A CV title used to run off the confusion figure (x1 652 px of 640)."""
    from mrparotid.evaluation import plots

    extents = []
    save = plots.save_figure

    def spy(fig, out, synthetic):
        path = save(fig, out, synthetic)
        box = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
        extents.append((box.x0, box.x1, fig.bbox.x1))
        return path

    monkeypatch.setattr(plots, "save_figure", spy)
    title = "5-fold cross-validation, pooled out-of-fold"
    plots.plot_confusion(np.eye(4, dtype=int) * 3, tmp_path / "c.png",
                         title=f"Slice confusion matrix — {title}")
    y = np.array([0, 1, 2, 3] * 5)
    probs = np.random.default_rng(0).dirichlet(np.ones(4), 20)
    plots.plot_roc(y, probs, tmp_path / "r.png", title=f"Slice ROC (one-vs-rest) — {title}")
    for x0, x1, width in extents:
        assert 0 <= x0 and x1 <= width


def test_a_run_folder_named_run_is_not_titled_run_run():
    from pathlib import Path

    from mrparotid.training.fit import evaluation_title

    assert "run run" not in evaluation_title(Path("runs/run"))
    assert evaluation_title(Path("runs/r1")).endswith("r1")
