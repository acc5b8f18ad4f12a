"""Tests for mrparotid.evaluation.evaluate on a hand-written predictions CSV with known answers
(``toy_csv`` in conftest.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from mrparotid.constants import CLASSES
from mrparotid.evaluation import evaluate as ev
from mrparotid.evaluation import metrics, predictions
from mrparotid.evaluation.bootstrap import bootstrap_accuracy, bootstrap_micro_auc
from mrparotid.errors import InputError

# rows true, columns predicted: no_tumour, PA, Warthin, malignant
CONFUSION = [[4, 0, 1, 0], [0, 2, 1, 1], [0, 2, 1, 1], [0, 1, 0, 3]]
# view -> (accuracy k/n, sensitivity k/n, specificity k/n)
VIEWS = {"benign_vs_malignant": ((9, 12), (3, 4), (6, 8)),
         "pa_vs_warthin": ((3, 8), (2, 4), (1, 4)),
         "lesion_vs_no_lesion": ((16, 17), (12, 12), (4, 5))}


def wilson(k, n, cc=False, z=norm.ppf(0.975)):
    """Independent closed-form Wilson interval (Newcombe 1998, methods 3 and 4)."""
    p, c = k / n, (1.0 if cc else 0.0)
    lo = (2 * n * p + z * z - c - z * math.sqrt(z * z - 2 * c - c / n + 4 * p * (n * (1 - p) + c))) / (2 * (n + z * z))
    hi = (2 * n * p + z * z + c + z * math.sqrt(z * z + 2 * c - c / n + 4 * p * (n * (1 - p) - c))) / (2 * (n + z * z))
    if not cc:
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = centre - half, centre + half
    return p, (0.0 if k == 0 else max(lo, 0.0)), (1.0 if k == n else min(hi, 1.0))


def r3(rate: dict) -> tuple:
    return round(rate["estimate"], 3), round(rate["lo"], 3), round(rate["hi"], 3)


def indep(rate: dict) -> dict:
    """The independent-slices (Wilson) interval kept beside the clustered one."""
    return {"estimate": rate["estimate"], **rate["independent"]}


def test_read_write_roundtrip(csv_path, tmp_path):
    df = predictions.read_predictions(csv_path)
    assert list(df.columns) == list(predictions.COLUMNS) and len(df) == 17
    assert df["index"].dtype == np.int64 and df["p_malignant"].dtype == np.float64
    out = predictions.write_predictions(df.to_dict("records"), tmp_path / "again.csv")
    pd.testing.assert_frame_equal(predictions.read_predictions(out), df)


def test_slice_metrics_known_counts(csv_path):
    sm = metrics.slice_metrics(predictions.read_predictions(csv_path))
    assert sm["confusion"] == CONFUSION
    acc = sm["accuracy"]
    assert (acc["k"], acc["n"]) == (10, 17)
    # primary CI: patient-clustered bootstrap (B=2000, seed 0); Wilson kept beside it
    df = predictions.read_predictions(csv_path)
    boot = bootstrap_accuracy(df["patient_id"].to_numpy(), df["true"].to_numpy(), df["pred"].to_numpy())
    assert acc["method"] == "patient_bootstrap" and (acc["lo"], acc["hi"]) == (boot["lo"], boot["hi"])
    assert acc["independent"]["note"] == "assumes independent slices"
    assert r3(indep(acc)) == tuple(round(v, 3) for v in wilson(10, 17))
    assert r3(indep(acc)) == (0.588, 0.360, 0.784)
    for name, ((ak, an), (sk, sn), (pk, pn)) in VIEWS.items():
        v = sm["binary_views"][name]
        assert (v["accuracy"]["k"], v["accuracy"]["n"]) == (ak, an)
        assert (v["sensitivity"]["k"], v["sensitivity"]["n"]) == (sk, sn)
        assert (v["specificity"]["k"], v["specificity"]["n"]) == (pk, pn)
        assert r3(indep(v["accuracy"])) == tuple(round(x, 3) for x in wilson(ak, an))
        assert r3(indep(v["sensitivity"])) == tuple(round(x, 3) for x in wilson(sk, sn, cc=True))
        assert r3(indep(v["specificity"])) == tuple(round(x, 3) for x in wilson(pk, pn, cc=True))
        assert all(v[m]["method"] == "patient_bootstrap" for m in ("accuracy", "sensitivity", "specificity"))
    assert sm["binary_views"]["benign_vs_malignant"]["positive"] == "malignant"
    assert r3(indep(sm["binary_views"]["benign_vs_malignant"]["accuracy"])) == (0.750, 0.468, 0.911)
    # AUCs are the DeLong/Mann-Whitney values of the probability columns
    from mrparotid.evaluation.stats import roc_auc
    df = predictions.read_predictions(csv_path)
    y = df["true"].map(CLASSES.index).to_numpy()
    assert sm["auc"]["per_class"]["malignant"]["auc"] == pytest.approx(roc_auc(y == 3, df["p_malignant"]))
    micro = sm["auc"]["micro"]
    assert 0.5 < micro["auc"] <= 1 and micro["delong"]["note"] == "assumes independent slices"
    boot = bootstrap_micro_auc(df["patient_id"].to_numpy(), y, df[list(predictions.PROB_COLUMNS)].to_numpy())
    assert (micro["lo"], micro["hi"]) == (boot["lo"], boot["hi"]) and micro["method"] == "patient_bootstrap"


def test_patient_level_rule(csv_path):
    pm, table = metrics.patient_metrics(predictions.read_predictions(csv_path))
    assert pm["excluded_no_tumour_only"] == ["P4"] and pm["n_patients"] == 3
    rule = pm["rule"]
    assert rule["table5"] == {"pleomorphic_adenoma": {"patients": 1, "correct": 1},
                              "warthin": {"patients": 1, "correct": 0},
                              "benign": {"patients": 2, "correct": 2},
                              "malignant": {"patients": 1, "correct": 1}}
    assert (rule["accuracy"]["k"], rule["accuracy"]["n"]) == (2, 3)
    bvm = rule["benign_vs_malignant"]
    assert [(bvm[m]["k"], bvm[m]["n"]) for m in ("accuracy", "sensitivity", "specificity")] == [(3, 3), (1, 1), (2, 2)]
    assert rule["misdiagnosed"] == [{"patient_id": "P3", "true": "warthin", "diagnosis": "pleomorphic_adenoma",
                                     "counts": {"no_tumour": 1, "pleomorphic_adenoma": 2, "warthin": 1,
                                                "malignant": 1}}]
    assert table.set_index("patient_id").loc["P3", "n_slices"] == 5          # both sides
    assert list(table["rule_diagnosis"]) == ["malignant", "pleomorphic_adenoma", "pleomorphic_adenoma"]
    # stricter rule: 3 malignant slices are no longer "more than 3"
    strict, _ = metrics.patient_metrics(predictions.read_predictions(csv_path), malignant_min_slices=3)
    assert strict["rule"]["table5"]["malignant"]["correct"] == 0


def test_soft_vote_threshold(csv_path):
    df = predictions.read_predictions(csv_path)
    pm, table = metrics.patient_metrics(df)
    assert pm["soft_vote"]["threshold"] == 0.5
    assert "NOT chosen on validation" in pm["soft_vote"]["threshold_source"]
    # means over the tumour slices only (P3's tumour-free right side does not vote)
    assert table.set_index("patient_id")["mean_p_malignant"].to_dict() == pytest.approx(
        {"P1": 0.625, "P2": 0.175, "P3": 0.175})
    assert list(table["n_tumour_slices"]) == [4, 4, 4]
    assert list(table["soft_diagnosis"]) == ["malignant", "pleomorphic_adenoma", "pleomorphic_adenoma"]
    from mrparotid.decision.fit import soft_cut

    pats = metrics.patient_slices(df)[0]
    th = soft_cut(pats, 0.95)          # the answer's rule-out method: keeps the malignant P1
    assert 0.175 < th < 0.625
    pm_val, _ = metrics.patient_metrics(df, soft_threshold=th, soft_source="validation")
    assert pm_val["soft_vote"]["threshold"] == pytest.approx(th)
    only_benign = {k: v for k, v in pats.items() if k != "P1"}
    assert soft_cut(only_benign, 0.95) == 0.5


def test_evaluate_writes_everything(csv_path, tmp_path):
    out = tmp_path / "eval"
    m = ev.evaluate_predictions(csv_path, out, val_preds=csv_path, synthetic=True, title="toy")
    for name in ("metrics.json", "confusion.csv", "slice_metrics.csv", "patients.csv",
                 "confusion.png", "roc.png", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["slice"]["confusion"] == CONFUSION and saved["synthetic"] is True
    assert m["patient"]["rule"]["table5"]["benign"] == {"patients": 2, "correct": 2}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.splitlines()[0].startswith("> **SYNTHETIC DATA") and "no clinical accuracy" in report
    assert "![confusion matrix](confusion.png)" in report and "![ROC curves](roc.png)" in report
    assert "Wilson" in report and "positive class" in report and "| malignant |" in report
    assert "| lesion |" in report and "| pleomorphic adenoma |" in report
    assert "P3: true Warthin, called pleomorphic adenoma (1/2/1/1)" in report
    assert "Excluded from patient level" in report and "P4" in report
    cm = pd.read_csv(out / "confusion.csv", index_col=0)
    assert cm.to_numpy().tolist() == CONFUSION
    plain = ev.evaluate_predictions(csv_path, tmp_path / "plain")
    assert "SYNTHETIC" not in (tmp_path / "plain" / "report.md").read_text(encoding="utf-8") and plain["synthetic"] is False


def test_summarise_folds(csv_path, tmp_path):
    m = ev.evaluate_predictions(csv_path, tmp_path / "f1")
    m2 = json.loads(json.dumps(m, default=str))
    m2["slice"]["accuracy"]["estimate"] = 0.8
    s = metrics.summarise_folds([m, m2])
    acc = s["slice_accuracy"]
    assert acc["n"] == 2 and acc["mean"] == pytest.approx((10 / 17 + 0.8) / 2)
    assert acc["sd"] == pytest.approx(np.std([10 / 17, 0.8], ddof=1))
    assert s["patient_accuracy"]["mean"] == pytest.approx(2 / 3)
    one = metrics.summarise_folds([m])
    assert math.isnan(one["slice_accuracy"]["sd"])


def _bad(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        predictions.read_predictions(path)
    msg = str(info.value)
    assert "bad.csv" in msg and " -> " in msg and "\n" not in msg
    return msg


def test_bad_csv(tmp_path, toy_csv):
    CSV = toy_csv
    lines = CSV.splitlines()
    assert "missing column(s) p_malignant" in _bad(tmp_path, CSV.replace(",p_malignant", ""))
    assert "line 3" in _bad(tmp_path, CSV.replace("P1,L,1,malignant", "P1,L,1,cancer"))
    assert "line 2" in _bad(tmp_path, "\n".join([lines[0], lines[1].replace("0.85", "nan")]))
    assert "line 2" in _bad(tmp_path, "\n".join([lines[0], lines[1].replace("0.85", "")]))
    not_argmax = lines[1].replace(",no_tumour,0.85", ",warthin,0.85")
    assert "most probable" in _bad(tmp_path, "\n".join([lines[0], not_argmax]))
    assert "repeats" in _bad(tmp_path, "\n".join([lines[0], lines[1], lines[1]]))
    assert "side" in _bad(tmp_path, "\n".join([lines[0], lines[1].replace("P1,L", "P1,X")]))
    assert "integer" in _bad(tmp_path, "\n".join([lines[0], lines[1].replace("P1,L,0", "P1,L,1.5")]))
    assert "no prediction rows" in _bad(tmp_path, lines[0] + "\n")
    _bad(tmp_path, "")
    with pytest.raises(InputError, match="not found"):
        predictions.read_predictions(tmp_path / "absent.csv")


def test_two_tumour_classes_in_one_patient(csv_path):
    df = predictions.read_predictions(csv_path)
    df.loc[(df["patient_id"] == "P3") & (df["side"] == "R"), ["true", "pred"]] = "malignant"
    df.loc[(df["patient_id"] == "P3") & (df["side"] == "R"), "p_malignant"] = 0.9
    with pytest.raises(InputError, match="patient P3.*several classes"):
        metrics.patient_metrics(df)


def test_ablation_table(csv_path, tmp_path):
    ref = predictions.read_predictions(csv_path)
    weak = ref.copy()
    weak[list(predictions.PROB_COLUMNS)] = 0.25
    weak["pred"] = "no_tumour"
    shuffled = ref.sample(frac=1.0, random_state=0)   # same slices, other order
    results = [{"name": "T1", "channels": ("T1",), "preds": weak},
               {"name": "all", "channels": ("T1", "CE-T1", "T2", "mask"), "preds": ref},
               {"name": "copy", "channels": "T1,CE-T1,T2,mask", "preds": shuffled}]
    table = ev.ablation_table(results, "all", tmp_path / "abl", synthetic=True)
    t = table.set_index("name")
    assert t.loc["T1", "accuracy"] == pytest.approx(5 / 17) and t.loc["T1", "micro_auc"] == 0.5
    assert t.loc["all", "accuracy"] == pytest.approx(10 / 17)
    assert math.isnan(t.loc["all", "p_vs_reference"]) and t.loc["copy", "p_vs_reference"] == 1.0
    # primary: paired patient bootstrap of the micro-AUC difference; DeLong (independent slices) beside it
    assert 0 <= t.loc["T1", "p_vs_reference"] < 0.05 and 0 < t.loc["T1", "p_delong"] < 0.05
    assert t.loc["T1", "auc_diff"] == pytest.approx(0.5 - t.loc["all", "micro_auc"])
    assert t.loc["T1", "auc_diff_lo"] <= t.loc["T1", "auc_diff"] <= t.loc["T1", "auc_diff_hi"] < 0
    assert t.loc["copy", "auc_diff"] == 0 and t.loc["copy", "acc_diff"] == 0
    assert t.loc["all", "auc_lo"] <= t.loc["all", "micro_auc"] <= t.loc["all", "auc_hi"]
    assert {"acc_wilson_lo", "auc_delong_lo", "n_patients", "acc_p"} <= set(table.columns)
    md = (tmp_path / "abl" / "ablation.md").read_text(encoding="utf-8")
    assert "patient-clustered percentile bootstrap" in md and "B=2000, seed 0" in md
    assert "assumes independent slices" in md and "< 0.001" in md
    assert t.loc["all", "channels"] == "T1,CE-T1,T2,mask"
    for name in ("ablation.csv", "ablation.md", "ablation.png"):
        assert (tmp_path / "abl" / name).stat().st_size > 0
    assert (tmp_path / "abl" / "ablation.md").read_text(encoding="utf-8").startswith("> **SYNTHETIC DATA")
    with pytest.raises(InputError, match="same patient_id/side/index"):
        ev.ablation_table([results[1], {"name": "short", "channels": "T1", "preds": ref.iloc[:-1]}],
                          "all", tmp_path / "abl2")
    with pytest.raises(InputError, match="reference model"):
        ev.ablation_table(results, "missing", tmp_path / "abl3")


def test_rows_without_a_true_class_are_left_out_and_counted(tmp_path, toy_csv):
    lines = toy_csv.splitlines()
    unknown = "P5,L,0,,malignant,0.05,0.05,0.05,0.85"            # e.g. diagnose --csv, no tumour mask
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines[:3] + [unknown] + lines[3:]) + "\n", encoding="utf-8")
    df = predictions.read_predictions(path)
    assert len(df) == len(lines) - 1 and df.attrs["unlabelled_rows"] == 1
    assert "P5" not in set(df["patient_id"])
    m = ev.evaluate_predictions(df, tmp_path / "out")
    assert m["unlabelled_rows"] == 1
    assert "1 slice(s) without a true class" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    # a bad row after the blank one still reports its own file line
    bad = lines[:3] + [unknown] + [lines[3].replace("malignant,malignant", "malignant,cancer", 1)]
    assert "line 5" in _bad(tmp_path, "\n".join(bad))
    assert "none of the 1 rows" in _bad(tmp_path, "\n".join([lines[0], unknown]))
