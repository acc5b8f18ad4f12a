"""The patient soft vote on realistic patients: a few tumour slices plus more contralateral
no-tumour slices; the threshold is chosen on validation patients and the report names it."""

from __future__ import annotations

import pandas as pd
import pytest

from mrparotid.evaluation import metrics, predictions
from mrparotid.decision.rule import soft_vote, tumour_mean_malignant

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
