"""The ``ablate --missing`` comparison table: accuracies, paired difference, target margins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mrparotid.constants import CLASSES
from mrparotid.errors import InputError
from mrparotid.evaluation.missing import format_missing, missing_table


def preds(correct: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Predictions on 10 patients x 10 slices; ``correct`` (100,) says which slices are right."""
    rows = []
    for i, ok in enumerate(correct):
        true = CLASSES[i % 4]
        pred = true if ok else CLASSES[(i + 1) % 4]
        p = np.full(4, 0.1)
        p[CLASSES.index(pred)] = 0.7
        rows.append({"patient_id": f"P{i // 10}", "side": "L", "index": i % 10, "true": true,
                     "pred": pred, **{f"p_{c}": v for c, v in zip(CLASSES, p)}})
    return pd.DataFrame(rows)


def test_table_accuracies_difference_and_margin(tmp_path):
    base = np.ones(100, bool)
    base[:10] = False                                   # dedicated: 0.90
    drop_full = base.copy()
    drop_full[10] = False                               # dropout, all present: 0.89 (-0.01: met)
    drop_no_ce = base.copy()
    drop_no_ce[10:15] = False                           # dropout without CE-T1: 0.85 (-0.05: missed)
    rows = [{"subset": "T1+CE-T1+T2", "missing": [], "dedicated": preds(base), "dropout": preds(drop_full)},
            {"subset": "T1+T2", "missing": ["CE-T1"], "dedicated": preds(base), "dropout": preds(drop_no_ce)},
            {"subset": "T1", "missing": ["CE-T1", "T2"], "dedicated": preds(base), "dropout": preds(base)}]
    table = missing_table(rows, tmp_path, synthetic=True, dropout_rate=0.3, n_boot=200)
    assert table["dedicated_acc"].tolist() == pytest.approx([0.9, 0.9, 0.9])
    assert table["dropout_acc"].tolist() == pytest.approx([0.89, 0.85, 0.9])
    assert table["diff"].tolist() == pytest.approx([-0.01, -0.05, 0.0])
    assert table["margin"].iloc[0] == 0.02 and table["margin"].iloc[1] == 0.03
    assert table["within_margin"].tolist() == [True, False, None]
    assert (table["diff_lo"] <= table["diff"]).all() and (table["diff"] <= table["diff_hi"]).all()
    assert (table["dedicated_lo"] < 0.9).all() and table["n_patients"].iloc[0] == 10
    md = (tmp_path / "missing.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in md and "series_dropout: 0.3" in md and "MISSED" in md and "met" in md
    assert pd.read_csv(tmp_path / "missing.csv")["subset"].tolist() == ["T1+CE-T1+T2", "T1+T2", "T1"]
    text = format_missing(table)
    assert "T1+T2" in text and "-0.050" in text


def test_models_on_other_slices_are_refused(tmp_path):
    a = preds(np.ones(100, bool))
    with pytest.raises(InputError, match="same"):
        missing_table([{"subset": "T1", "missing": ["CE-T1", "T2"], "dedicated": a,
                        "dropout": a.iloc[:50]}], tmp_path, n_boot=50)
