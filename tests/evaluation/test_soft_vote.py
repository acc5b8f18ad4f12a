"""The patient soft vote on realistic patients: a few tumour slices plus more contralateral
no-tumour slices; the threshold is chosen on validation patients and the report names it."""

from __future__ import annotations

import pandas as pd
import pytest

from mrparotid.evaluation import metrics, predictions
from mrparotid.evaluation.evaluate import evaluate_predictions
from mrparotid.inference.decide import soft_vote, tumour_mean_malignant

BENIGN = ("pleomorphic_adenoma", "warthin")


def patient(pid: str, cls: str, p_malignant: list[float], n_contra: int = 8) -> list[dict]:
    """Tumour slices (side L) with the given malignant probabilities, the rest of the mass on the
    tumour's class (malignant: on PA), then ``n_contra`` contralateral no-tumour slices (side R)."""
    rows = []
    for i, q in enumerate(p_malignant):
        other = "pleomorphic_adenoma" if cls == "malignant" else cls
        p = {"no_tumour": 0.05, "pleomorphic_adenoma": 0.0, "warthin": 0.0, "malignant": q}
        p[other] = 0.95 - q
        rows.append({"patient_id": pid, "side": "L", "index": i, "true": cls,
                     "pred": max(p, key=p.get), **{f"p_{c}": v for c, v in p.items()}})
    rows += [{"patient_id": pid, "side": "R", "index": i, "true": "no_tumour", "pred": "no_tumour",
              "p_no_tumour": 0.92, "p_pleomorphic_adenoma": 0.03, "p_warthin": 0.03, "p_malignant": 0.02}
             for i in range(n_contra)]
    return rows


def cohort(spec: dict[str, tuple[str, list[float]]]) -> pd.DataFrame:
    return predictions.as_predictions(pd.DataFrame([r for pid, (c, q) in spec.items() for r in patient(pid, c, q)]))


# test: two clear malignant patients (tumour slices mostly called malignant) and two benign ones
TEST = {"M1": ("malignant", [0.70, 0.60, 0.55, 0.52]), "M2": ("malignant", [0.80, 0.65, 0.40]),
        "B1": ("pleomorphic_adenoma", [0.10, 0.05, 0.20]), "B2": ("warthin", [0.15, 0.10])}
# validation: tumour-slice means 0.45 / 0.55 (malignant) and 0.10 / 0.20 (benign) -> threshold 0.325
VAL = {"V1": ("malignant", [0.45, 0.45]), "V2": ("malignant", [0.55, 0.55]),
       "V3": ("pleomorphic_adenoma", [0.10, 0.10]), "V4": ("warthin", [0.20, 0.20])}


def test_soft_vote_averages_tumour_slices_only():
    rows = patient("M1", "malignant", TEST["M1"][1])
    df = pd.DataFrame(rows)
    probs = df[list(predictions.PROB_COLUMNS)].to_numpy()
    tumour = (df["true"] != "no_tumour").to_numpy()
    assert probs[:, 3].mean() < 0.5 < tumour_mean_malignant(probs, tumour)   # what went wrong before
    assert soft_vote(probs, 0.5, tumour) == "malignant"
    assert soft_vote(probs, 0.5, ~tumour) == "no_tumour_found"              # contralateral side alone


def test_clear_malignant_patients_are_malignant_at_the_default_threshold():
    pm, table = metrics.patient_metrics(cohort(TEST))
    by_id = table.set_index("patient_id")
    assert by_id["soft_diagnosis"].to_dict() == {"B1": "pleomorphic_adenoma", "B2": "warthin",
                                                 "M1": "malignant", "M2": "malignant"}
    assert by_id.loc["M1", "mean_p_malignant"] == pytest.approx(0.5925)
    assert list(by_id["n_tumour_slices"]) == [3, 2, 4, 3] and list(by_id["n_slices"]) == [11, 10, 12, 11]
    assert pm["soft_vote"]["accuracy"]["k"] == 4


def test_threshold_is_chosen_on_validation_patients_and_reported(tmp_path):
    val_path = predictions.write_predictions(cohort(VAL), tmp_path / "predictions_val.csv")
    th, source = metrics.choose_soft_threshold(cohort(VAL), "predictions_val.csv")
    assert th == pytest.approx(0.325) and "4 validation patients (predictions_val.csv)" in source
    m = evaluate_predictions(cohort(TEST), tmp_path / "eval", val_preds=val_path)
    sv = m["patient"]["soft_vote"]
    assert sv["threshold"] == pytest.approx(0.325) and "predictions_val.csv" in sv["threshold_source"]
    report = (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    assert "Soft-vote threshold 0.325 (chosen on 4 validation patients (predictions_val.csv)" in report
    assert "mean malignant probability over the patient's tumour slices" in report
    m0 = evaluate_predictions(cohort(TEST), tmp_path / "eval0")
    assert "NOT chosen on validation" in (tmp_path / "eval0" / "report.md").read_text(encoding="utf-8")
    assert m0["patient"]["soft_vote"]["threshold"] == 0.5


def test_pooled_validation_predictions_keep_each_fold_patient():
    fold1, fold2 = cohort(VAL), cohort(VAL)                  # the same patients validated in two folds
    fold2.attrs["synthetic"] = True
    pooled = predictions.pool_predictions({"fold1": fold1, "fold2": fold2})
    assert len(pooled) == 2 * len(fold1) and pooled.attrs["synthetic"] is True
    assert {"fold1/V1", "fold2/V1"} <= set(pooled["patient_id"])
    th, source = metrics.choose_soft_threshold(pooled, "2 folds")
    assert th == pytest.approx(0.325) and "8 validation patients" in source
