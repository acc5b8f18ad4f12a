"""Per-centre figures in ``evaluate`` (the predictions CSV's ``centre`` column) and the
out-of-centre vs in-centre comparison with its paired bootstrap gap."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mrparotid.constants import CLASSES
from mrparotid.errors import InputError
from mrparotid.evaluation import predictions
from mrparotid.evaluation.evaluate import evaluate_predictions

TUMOURS = ("pleomorphic_adenoma", "warthin", "malignant")


def cohort_predictions(seed: int, centres=("A", "B", "C"), n_patients: int = 18, skill: float = 1.5,
                       prefix: str = "P") -> pd.DataFrame:
    """Random but fixed slice predictions: each patient a tumour side of 3-6 slices of its diagnosis
    and 2 no-tumour slices; probabilities tilted towards the truth by ``skill``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        truth = TUMOURS[i % 3]
        labels = [truth] * int(rng.integers(3, 7)) + ["no_tumour"] * 2
        for j, label in enumerate(labels):
            logits = rng.normal(size=4)
            logits[CLASSES.index(label)] += skill
            p = np.exp(logits) / np.exp(logits).sum()
            rows.append({"patient_id": f"{prefix}{i:02d}", "side": "L" if label != "no_tumour" else "R",
                         "index": j, "true": label, "pred": CLASSES[int(np.argmax(p))],
                         **{f"p_{c}": float(v) for c, v in zip(CLASSES, p)},
                         "centre": centres[(i // 3) % len(centres)]})
    return pd.DataFrame(rows)


def as_json(x) -> str:
    return json.dumps(x, sort_keys=True, default=str)


def test_per_centre_figures_equal_the_pooled_ones_on_that_centres_rows(tmp_path):
    df, val = cohort_predictions(0), cohort_predictions(1, prefix="V")
    m = evaluate_predictions(df, tmp_path / "all", val_preds=val)
    assert list(m["per_centre"]) == ["A", "B", "C"]
    for centre in ("A", "B"):
        rows = df[df["centre"] == centre].reset_index(drop=True)
        alone = evaluate_predictions(rows, tmp_path / centre, val_preds=val)
        got = m["per_centre"][centre]
        assert as_json(got["slice"]) == as_json(alone["slice"])          # patient-bootstrap CIs too
        assert as_json(got["patient"]) == as_json(alone["patient"])
        assert as_json(got["answer"]) == as_json(alone["answer"]["patient"])
        assert got["n_patients"] == rows["patient_id"].nunique() == 6
    report = (tmp_path / "all" / "report.md").read_text(encoding="utf-8")
    assert "## Per centre" in report and "| figure | pooled | A | B | C |" in report
    saved = json.loads((tmp_path / "all" / "metrics.json").read_text(encoding="utf-8"))
    assert set(saved["per_centre"]) == {"A", "B", "C"}


def test_no_centre_changes_nothing_and_patients_without_one_are_their_own_group(tmp_path):
    from mrparotid.evaluation.centres import NO_CENTRE

    df = cohort_predictions(0)
    plain = evaluate_predictions(df.drop(columns="centre"), tmp_path / "plain")
    empty = evaluate_predictions(df.assign(centre=""), tmp_path / "empty")
    for m, name in ((plain, "plain"), (empty, "empty")):
        assert "per_centre" not in m
        assert "Per centre" not in (tmp_path / name / "report.md").read_text(encoding="utf-8")
    assert as_json(plain["slice"]) == as_json(empty["slice"])
    partial = evaluate_predictions(cohort_predictions(0, centres=("A", "")), tmp_path / "partial")
    assert list(partial["per_centre"]) == ["A", NO_CENTRE]


def test_the_centre_column_round_trips_and_old_files_still_read(tmp_path, csv_path):
    df = cohort_predictions(0, centres=("01", "B"))
    path = predictions.write_predictions(df, tmp_path / "p.csv")
    back = predictions.read_predictions(path)
    assert set(back["centre"]) == {"01", "B"}                          # read as text, not 1
    assert "centre" not in predictions.read_predictions(csv_path).columns   # an old CSV: as before
    two = df.copy()
    two.loc[two.index[0], "centre"] = "Z"
    with pytest.raises(InputError, match="several centres"):
        predictions.check_predictions(two, "x.csv")


def test_prediction_records_carry_the_centre_only_when_given():
    class Split:
        y = np.array([1, 0])
        patient_id = ["P1", "P2"]
        side = ["L", "R"]
        index = [0, 1]
    probs = np.array([[0.1, 0.7, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1]])
    assert "centre" not in predictions.prediction_records(Split, probs)[0]
    rows = predictions.prediction_records(Split, probs, {"P1": "A"})
    assert [r["centre"] for r in rows] == ["A", ""]


# --- out of centre vs in centre -----------------------------------------------------------------

def test_identical_predictions_give_a_zero_gap_with_a_zero_interval():
    from mrparotid.evaluation.centre_gap import ALL, FIGURES, centre_comparison

    df = cohort_predictions(3)
    result = centre_comparison(df, df.copy(), out_records=None, in_records=None, n_boot=300)
    assert set(result["groups"]) == {"A", "B", "C", ALL}
    for g in result["groups"].values():
        for name in ("rule_accuracy", "malignant_sensitivity", "lesion_slice_accuracy", "auc"):
            gap = g["gap"][name]
            assert (gap["estimate"], gap["lo"], gap["hi"]) == (0.0, 0.0, 0.0), name
        assert set(g["gap"]) == set(FIGURES)


def test_the_gap_is_paired_and_its_interval_holds_the_estimate():
    from mrparotid.evaluation.centre_gap import ALL, centre_comparison, patient_table

    out_df = cohort_predictions(4, skill=0.5)
    in_df = out_df.copy()       # the same patients and slices, other predictions
    better = cohort_predictions(4, skill=2.5)
    for col in [c for c in in_df.columns if c.startswith("p_")] + ["pred"]:
        in_df[col] = better[col]
    result = centre_comparison(out_df, in_df, out_records=None, in_records=None, n_boot=400)
    for name, g in result["groups"].items():
        for fig in ("rule_accuracy", "lesion_slice_accuracy", "auc"):
            gap = g["gap"][fig]
            if math.isfinite(gap["estimate"]):
                assert gap["lo"] <= gap["estimate"] <= gap["hi"], (name, fig)
                assert gap["estimate"] == pytest.approx(
                    g["out_of_centre"][fig]["estimate"] - g["in_centre"][fig]["estimate"])
    whole = result["groups"][ALL]["gap"]["lesion_slice_accuracy"]
    assert whole["hi"] < 0                  # a clearly better in-centre model: the gap excludes 0
    # paired: the gap's interval is narrower than the unpaired spread of the two figures
    a, b = patient_table(out_df, None, 2), patient_table(in_df, None, 2)
    rng = np.random.default_rng(0)
    unpaired = []
    for _ in range(400):
        i, j = rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b))
        unpaired.append(a["lesion_correct"].iloc[i].sum() / a["lesion_n"].iloc[i].sum()
                        - b["lesion_correct"].iloc[j].sum() / b["lesion_n"].iloc[j].sum())
    lo, hi = np.quantile(unpaired, [0.025, 0.975])
    assert whole["hi"] - whole["lo"] < hi - lo


def test_held_out_centre_figures_are_that_centres_patients_only():
    from mrparotid.evaluation.centre_gap import centre_comparison
    from mrparotid.evaluation.metrics import patient_metrics

    df = cohort_predictions(5)
    result = centre_comparison(df, df.copy(), out_records=None, in_records=None, n_boot=50)
    rows = df[df["centre"] == "B"]
    rule = patient_metrics(rows)[0]["rule"]
    got = result["groups"]["B"]["out_of_centre"]
    assert (got["rule_accuracy"]["k"], got["rule_accuracy"]["n"]) == (rule["accuracy"]["k"], rule["accuracy"]["n"])
    lesion = rows[rows["true"] != "no_tumour"]
    assert got["lesion_slice_accuracy"]["estimate"] == pytest.approx((lesion["true"] == lesion["pred"]).mean())


def test_the_comparison_refuses_predictions_of_other_slices():
    from mrparotid.evaluation.centre_gap import centre_comparison

    df = cohort_predictions(6)
    with pytest.raises(InputError, match="same slices"):
        centre_comparison(df, df.iloc[1:].copy(), out_records=None, in_records=None, n_boot=10)


def test_the_report_names_the_paired_method():
    from mrparotid.evaluation.centre_gap import centre_comparison
    from mrparotid.evaluation.centre_gap_report import centre_cv_markdown

    df = cohort_predictions(7)
    comparison = centre_comparison(df, df.copy(), out_records=None, in_records=None, n_boot=100)
    text = centre_cv_markdown({"k": 3, "centres": ["A", "B", "C"],
                               "reports": {"out_of_centre": "loco/pooled/report.md",
                                           "in_centre": "in_centre/pooled/report.md"}},
                              comparison, synthetic=True)
    assert "paired bootstrap over patients, 100 resamples" in text and "slices clustered by patient" in text
    assert text.startswith("> **SYNTHETIC") and "| **all centres** |" in text
    assert "| A | 6 |" in text
