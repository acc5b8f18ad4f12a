"""ECE/Brier glue, the calibration section of ``evaluate``, and the refer-band report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration_data import five_malignant
from mrparotid.evaluation.calibration import (brier, calibration_section, ece, ece_torchmetrics,
                                              fit_calibration)
from mrparotid.evaluation.evaluate import evaluate_predictions
from mrparotid.evaluation.metrics import label_arrays
from mrparotid.evaluation.predictions import check_predictions
from mrparotid.inference.calibrate import apply_temperature

HAND = np.array([[0.9, 0.1, 0, 0], [0.9, 0.1, 0, 0], [0.55, 0.45, 0, 0]])
HAND_Y = np.array([0, 1, 0])


def test_ece_and_brier_on_a_hand_example():
    # bins of 1/15: both 0.9 slices share a bin (1 of 2 right), 0.55 has its own (right)
    want = (abs(1 - 1.8) + abs(1 - 0.55)) / 3
    assert ece_torchmetrics(HAND, HAND_Y) == pytest.approx(want, abs=1e-6)
    assert ece(HAND.max(1), HAND.argmax(1) == HAND_Y) == pytest.approx(want)
    assert brier(HAND, HAND_Y) == pytest.approx((0.02 + 1.62 + 0.405) / 3)


def test_bootstrap_ece_bins_are_torchmetrics_bins():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, size=(500, 4))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[:5] = [1.0, 0, 0, 0]                        # confidence 1.0: torchmetrics' extra bin
    y = rng.integers(0, 4, 500)
    assert ece(p.max(1), p.argmax(1) == y) == pytest.approx(ece_torchmetrics(p, y), abs=1e-6)


def test_few_malignant_validation_patients_warn_on_one_line_and_leave_no_band(toy_df, capsys):
    record = fit_calibration(toy_df)                  # 1 malignant validation patient
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("WARNING:") and "never refer" in err[0]
    assert record["refer_band"] is None and "1 malignant" in record["refer_note"]
    assert record["n_val_malignant"] == 1 and record["temperature"] > 0


def test_no_validation_patients_means_temperature_one_and_no_band(capsys):
    record = fit_calibration(None)
    assert record["temperature"] == 1.0 and record["refer_band"] is None
    assert "no validation patients" in record["refer_note"]
    assert "WARNING" in capsys.readouterr().err


def test_evaluate_scores_the_checkpoint_calibration_once(tmp_path, toy_df):
    record = {"temperature": 2.0, "aggregation": "mean", "threshold": 0.5, "refer_band": [0.3, 0.5],
              "refer_note": "given"}
    m = evaluate_predictions(toy_df, tmp_path, calibration=record)
    y, _, raw = label_arrays(toy_df)
    ece_after = m["calibration"]["slice"]["ece"]["after"]["estimate"]
    assert ece_after == pytest.approx(ece_torchmetrics(apply_temperature(raw, 2.0), y), abs=1e-6)
    assert ece_after != pytest.approx(ece_torchmetrics(apply_temperature(apply_temperature(raw, 2.0), 2.0), y),
                                      abs=1e-4)
    assert m["calibration"]["slice"]["ece"]["before"]["estimate"] == pytest.approx(ece_torchmetrics(raw, y),
                                                                                   abs=1e-6)
    # P1 (malignant): mean p over 4 tumour slices at T=2 is below 0.5 but above 0.3 -> refer
    table = {r["patient_id"]: r for r in
             __import__("pandas").read_csv(tmp_path / "patients_p_malignant.csv").to_dict("records")}
    assert table["P1"]["answer"] == "refer"
    assert table["P1"]["p_malignant"] < table["P1"]["p_malignant_raw"]
    for name in ("reliability.png", "coverage_accuracy.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert saved["calibration"]["source"].startswith("the checkpoint")
    band = saved["calibration"]["patient"]["band"]
    assert band["n_referred"] == 1 and band["coverage"]["k"] == 2


def test_report_has_auc_band_and_says_why_there_is_no_band(tmp_path, toy_df):
    m = evaluate_predictions(toy_df, tmp_path, val_preds=toy_df)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Calibration and referral" in md and "ECE (15 bins)" in md and "DeLong" in md
    assert "fewer than the 5" in md
    assert m["calibration"]["warnings"] and m["calibration"]["source"].startswith("fitted here")
    assert m["calibration"]["patient"]["band"]["n_referred"] == 0


def test_band_from_validation_is_applied_to_test(tmp_path):
    val = check_predictions(five_malignant(), "val")
    s = calibration_section(val, tmp_path, val=val, n_boot=50)
    assert s["calibration"]["refer_band"] is not None
    b = s["patient"]["band"]
    assert b["n_patients"] == 10 and b["coverage"]["n"] == 10
    assert s["patient"]["auc"]["auc"] > 0.5 and s["patient"]["auc"]["method"] == "DeLong"
    assert len(s["curve"]["coverage"]) >= 2 and s["curve"]["coverage"][0] == 1.0


def _all_slices(right: bool):
    """10 validation patients, 2 tumour slices each, every slice classified with a wide margin:
    rightly (``right``) or wrongly."""
    import pandas as pd

    from calibration_data import slice_row

    rows = []
    for i in range(10):
        truth = "malignant" if i < 5 else "pleomorphic_adenoma"
        p = 0.99 if (truth == "malignant") == right else 0.01
        rows += [slice_row(f"P{i}", k, truth, p) for k in range(2)]
    return pd.DataFrame(rows)


def test_a_temperature_at_the_lower_bound_is_not_used_to_sharpen(capsys):
    record = fit_calibration(_all_slices(right=True))
    assert record["temperature"] == 1.0
    assert "lower bound" in record["temperature_note"]
    assert any("lower bound" in line for line in capsys.readouterr().err.splitlines())


def test_a_temperature_at_the_upper_bound_is_kept_and_flagged(tmp_path, capsys):
    val = _all_slices(right=False)
    record = fit_calibration(val)
    assert record["temperature"] == pytest.approx(20.0, rel=0.01)
    assert "upper bound" in record["temperature_note"]
    m = evaluate_predictions(val, tmp_path, calibration=record)
    assert any("upper bound" in w for w in m["calibration"]["warnings"])
    assert "upper bound" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_an_ordinary_fit_has_no_temperature_note():
    assert fit_calibration(five_malignant())["temperature_note"] is None
