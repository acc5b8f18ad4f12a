"""What a channel set adds over a reference (issue 23): lesion-slice and PA-vs-Warthin patient
accuracy with paired, patient-clustered bootstrap CIs; and the ablation report carries them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from calibration_data import slice_row
from mrparotid.evaluation.evaluate import ablation_table
from mrparotid.evaluation.gains import channel_gains


def _frame(calls: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Per patient (true diagnosis, the class every one of its 3 tumour slices is given), plus one
    no-tumour slice (side R) called no_tumour."""
    rows = []
    for pid, (truth, called) in calls.items():
        for i in range(3):
            row = slice_row(pid, i, truth, 0.05, benign=called if called != "malignant" else "warthin")
            if called == "malignant":
                row.update(p_malignant=0.9, p_warthin=0.05, p_pleomorphic_adenoma=0.03, p_no_tumour=0.02,
                           pred="malignant")
            rows.append(row)
        rows.append(dict(slice_row(pid, 0, "no_tumour", 0.0), side="R", p_no_tumour=0.97,
                         p_pleomorphic_adenoma=0.01, p_warthin=0.01, p_malignant=0.01, pred="no_tumour"))
    return pd.DataFrame(rows)


TRUTH = {**{f"PA{i}": "pleomorphic_adenoma" for i in range(6)}, **{f"W{i}": "warthin" for i in range(6)},
         **{f"M{i}": "malignant" for i in range(4)}}


def test_the_gain_is_the_paired_difference_and_the_reference_gains_nothing():
    better = _frame({p: (t, t) for p, t in TRUTH.items()})                    # every call right
    worse = _frame({p: (t, "warthin" if t == "pleomorphic_adenoma" and p in ("PA0", "PA1", "PA2") else t)
                    for p, t in TRUTH.items()})                               # 3 PAs called Warthin
    g = channel_gains(better, worse)
    assert g["n_pa_warthin_patients"] == 12 and g["n_lesion_patients"] == 16
    assert g["pa_warthin_acc"] == 1.0 and g["pa_warthin_acc_ref"] == pytest.approx(9 / 12)
    assert g["pa_warthin_acc_diff"] == pytest.approx(3 / 12)
    assert 0 <= g["pa_warthin_acc_diff_lo"] <= 3 / 12 <= g["pa_warthin_acc_diff_hi"]
    assert g["lesion_acc_diff"] == pytest.approx(9 / 48)
    same = channel_gains(better, better)
    assert same["pa_warthin_acc_diff"] == 0 and same["pa_warthin_acc_diff_lo"] == same["pa_warthin_acc_diff_hi"] == 0


def test_a_malignant_call_of_a_benign_patient_counts_as_wrong_and_malignant_patients_are_left_out():
    wrong = _frame({p: (t, "malignant" if p == "W0" else t) for p, t in TRUTH.items()})
    right = _frame({p: (t, t) for p, t in TRUTH.items()})
    g = channel_gains(wrong, right)
    assert g["pa_warthin_acc"] == pytest.approx(11 / 12) and g["pa_warthin_acc_diff"] == pytest.approx(-1 / 12)


def test_the_ablation_report_carries_the_gains_against_the_three_series_model(tmp_path):
    right = _frame({p: (t, t) for p, t in TRUTH.items()})
    worse = _frame({p: (t, "warthin" if p == "PA0" else t) for p, t in TRUTH.items()})
    table = ablation_table([{"name": "T1+CE-T1+T2+mask", "channels": "T1,CE-T1,T2,mask", "preds": worse},
                            {"name": "T1+CE-T1+T2+ADC+mask", "channels": "T1,CE-T1,T2,ADC,mask", "preds": right}],
                           "T1+CE-T1+T2+mask", tmp_path)
    adc = table.set_index("name").loc["T1+CE-T1+T2+ADC+mask"]
    assert adc["pa_warthin_acc_diff"] == pytest.approx(1 / 12) and not math.isnan(adc["lesion_acc_diff_lo"])
    md = (tmp_path / "ablation.md").read_text(encoding="utf-8")
    assert "PA vs Warthin" in md and "+0.083" in md
