"""What a predictions file carries into every report: the SYNTHETIC flag, leading comment lines,
classes that are absent (never an AUC of nan), and CIs that respect that slices come in patients."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from mrparotid.errors import InputError
from mrparotid.evaluation import predictions
from mrparotid.evaluation.evaluate import ablation_table, evaluate_predictions
from mrparotid.evaluation.metrics import slice_metrics


@pytest.fixture()
def df(toy_df):
    return toy_df


def test_synthetic_flag_travels_with_the_file(df, tmp_path):
    path = predictions.write_predictions(df, tmp_path / "p.csv", synthetic=True)
    assert path.read_text(encoding="utf-8").startswith("# SYNTHETIC")
    back = predictions.read_predictions(path)
    assert back.attrs["synthetic"] is True
    pd.testing.assert_frame_equal(back, df)
    m = evaluate_predictions(path, tmp_path / "eval")                 # no synthetic=True given
    assert m["synthetic"] is True
    assert (tmp_path / "eval" / "report.md").read_text(encoding="utf-8").startswith("> **SYNTHETIC DATA")
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))["synthetic"] is True
    again = predictions.write_predictions(back, tmp_path / "copy.csv")      # re-written: still flagged
    assert again.read_text(encoding="utf-8").startswith("# SYNTHETIC")
    ablation_table([{"name": "a", "preds": path}, {"name": "b", "preds": df}], "b", tmp_path / "abl")
    assert (tmp_path / "abl" / "ablation.md").read_text(encoding="utf-8").startswith("> **SYNTHETIC DATA")
    plain = predictions.write_predictions(df, tmp_path / "plain.csv")
    assert not plain.read_text(encoding="utf-8").startswith("#")
    assert predictions.read_predictions(plain).attrs["synthetic"] is False


def test_leading_comment_line_is_not_read_as_the_header(tmp_path, toy_csv):
    CSV = toy_csv
    path = tmp_path / "commented.csv"
    path.write_text("# written by hand\n" + CSV, encoding="utf-8")
    df = predictions.read_predictions(path)
    assert len(df) == 17 and df.attrs["synthetic"] is False
    bad = tmp_path / "bad.csv"
    bad.write_text("# note\n" + CSV.replace("P1,L,1,malignant", "P1,L,1,cancer"), encoding="utf-8")
    with pytest.raises(InputError, match="line 4: true 'cancer'"):       # file lines count the comment
        predictions.read_predictions(bad)


def test_no_tumour_slice_at_all_is_refused_in_one_line(df, tmp_path):
    only_normal = df[df["true"] == "no_tumour"]                       # diagnose --csv lost the tumour side
    with pytest.raises(InputError) as info:
        evaluate_predictions(only_normal, tmp_path / "eval")
    assert "nothing to score" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "eval" / "report.md").exists()


def test_missing_class_is_flagged_in_the_headline_and_no_auc_is_nan(df, tmp_path):
    m = evaluate_predictions(df[df["true"] != "warthin"], tmp_path / "eval")
    assert m["warnings"] == ["no warthin slices: its AUC is n/a and accuracy covers the other classes only"]
    assert m["slice"]["auc"]["per_class"]["warthin"]["na_reason"] == "no warthin slices"
    report = (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    head = report.split("## Slice level")[0]
    assert "Incomplete test set:** no warthin slices" in head
    assert "| Warthin | n/a (no warthin slices) |" in report
    assert not re.search(r"\bnan\b", report, re.IGNORECASE)
    assert "NaN" not in (tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8")


def test_clustered_intervals_do_not_shrink_when_slices_are_copied(df, tmp_path):
    """Copying each slice 5 times adds no patient: the patient bootstrap CIs stay, while the
    intervals that assume independent slices shrink."""
    copies = pd.concat([df.assign(index=df["index"] * 10 + k) for k in range(5)], ignore_index=True)
    a, b = slice_metrics(df), slice_metrics(predictions.as_predictions(copies))
    for get in (lambda s: s["accuracy"], lambda s: s["auc"]["micro"],
                lambda s: s["binary_views"]["benign_vs_malignant"]["accuracy"]):
        assert (get(b)["lo"], get(b)["hi"]) == pytest.approx((get(a)["lo"], get(a)["hi"]))
    width = lambda r: r["hi"] - r["lo"]                               # noqa: E731
    assert width(b["accuracy"]["independent"]) < 0.6 * width(a["accuracy"]["independent"])
    assert width(b["auc"]["micro"]["delong"]) < 0.6 * width(a["auc"]["micro"]["delong"])
    m = evaluate_predictions(df, tmp_path / "eval")
    report = (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    assert "## Methods: confidence intervals" in report and "B=2000, seed 0" in report
    assert "DeLong 95% CI (assumes independent slices)" in report
    rows = pd.read_csv(tmp_path / "eval" / "slice_metrics.csv")
    assert set(rows["method"].dropna()) == {"patient_bootstrap"} and rows["indep_lo"].notna().any()
    assert m["slice"]["accuracy"]["n_patients"] == 4
