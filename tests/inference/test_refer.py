"""p(malignant) aggregation, the refer band and the answer (hand-made numbers, no model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mrparotid.constants import CLASSES
from mrparotid.inference import refer
from mrparotid.inference.refer import (answer_patient, choose_aggregation, choose_band, in_band,
                                       p_malignant, tumour_slices)


def probs(p_mal, benign="pleomorphic_adenoma"):
    out = np.zeros((len(p_mal), 4))
    out[:, CLASSES.index("malignant")] = p_mal
    out[:, CLASSES.index(benign)] = 1 - np.asarray(p_mal)
    return out


def test_mean_and_noisy_or_over_the_tumour_slices_only():
    p = probs([0.5, 0.5, 0.2, 0.99])
    tumour = np.array([True, True, True, False])           # the 0.99 slice is not a tumour slice
    assert p_malignant(p, tumour, "mean") == pytest.approx(0.4)
    assert p_malignant(p, tumour, "noisy_or") == pytest.approx(1 - 0.5 * 0.5 * 0.8)
    assert math.isnan(p_malignant(p, np.zeros(4, bool), "noisy_or"))
    with pytest.raises(ValueError):
        p_malignant(p, tumour, "max")


def test_aggregation_with_the_lower_patient_log_loss_wins():
    # malignant patients with many moderate slices: noisy-OR gets them right, the mean does not
    many = [(True, probs([0.3] * 8), np.ones(8, bool)), (False, probs([0.02] * 3), np.ones(3, bool))]
    assert choose_aggregation(many)[0] == "noisy_or"
    # benign patients with many moderate slices: noisy-OR overshoots, the mean wins
    benign = [(False, probs([0.3] * 8), np.ones(8, bool)), (True, probs([0.8] * 3), np.ones(3, bool))]
    name, losses = choose_aggregation(benign)
    assert name == "mean" and losses["mean"] < losses["noisy_or"]
    assert choose_aggregation([])[0] == "mean"


# (p per patient, malignant flags, target) -> expected lo (hi is 0.5); referred count
BANDS = [
    # every malignant already >= 0.5: empty band
    ([0.9, 0.8, 0.7, 0.6, 0.55, 0.3, 0.2], [1, 1, 1, 1, 1, 0, 0], 0.95, 0.5, 0),
    # one malignant at 0.3 must be referred; the band stops just below it (midpoint to 0.2)
    ([0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1], [1, 1, 1, 1, 1, 0, 0], 0.95, 0.25, 1),
    # target 0.8: 4 of 5 caught is enough, nobody referred
    ([0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1], [1, 1, 1, 1, 1, 0, 0], 0.8, 0.5, 0),
    # two low malignant ones, a benign between them is referred too
    ([0.9, 0.8, 0.7, 0.6, 0.4, 0.35, 0.1, 0.05], [1, 1, 1, 1, 1, 0, 1, 0], 0.95, 0.075, 3),
    # the lowest malignant patient is the lowest patient: lo = 0
    ([0.9, 0.8, 0.7, 0.6, 0.01, 0.2], [1, 1, 1, 1, 1, 0], 0.95, 0.0, 2),
]


@pytest.mark.parametrize("p, mal, target, lo, n_referred", BANDS)
def test_band_reaches_the_sensitivity_with_the_fewest_referrals(p, mal, target, lo, n_referred):
    choice = choose_band(p, np.array(mal, bool), target, min_malignant=5)
    assert choice.band == (pytest.approx(lo), 0.5)
    assert choice.n_referred == n_referred
    p, mal = np.array(p), np.array(mal, bool)
    answered = ~np.array([in_band(v, choice.band) for v in p])
    caught, missed = (mal & answered & (p >= 0.5)).sum(), (mal & answered & (p < 0.5)).sum()
    assert caught >= target * (caught + missed)
    # one more patient answered (the lowest referred one) would miss the target or refer nobody
    if n_referred:
        edge = p[~answered].min()
        mal_edge = mal[p == edge].any()
        assert mal_edge and caught < target * (caught + missed + 1)


def test_fewer_than_min_malignant_leaves_no_band():
    choice = choose_band([0.9, 0.2, 0.1, 0.3], [1, 1, 0, 1], 0.95, min_malignant=5)
    assert choice.band is None and "3 malignant" in choice.note and "never refer" in choice.note
    assert not in_band(0.4, choice.band)


def test_target_outside_0_1_is_refused():
    with pytest.raises(ValueError):
        choose_band([0.5], [1], 1.5)


def test_answer_refer_inside_the_band_else_a_diagnosis():
    cal = {"temperature": 1.0, "aggregation": "mean", "refer_band": [0.25, 0.5]}
    tumour = np.ones(2, bool)
    assert answer_patient(probs([0.4, 0.4]), tumour, cal)["answer"] == "refer"
    assert answer_patient(probs([0.6, 0.7]), tumour, cal)["answer"] == "malignant"
    assert answer_patient(probs([0.1, 0.1], "warthin"), tumour, cal)["answer"] == "warthin"
    none = answer_patient(probs([0.4, 0.4]), tumour, dict(cal, refer_band=None))
    assert none["answer"] == "pleomorphic_adenoma" and none["p_malignant"] == pytest.approx(0.4)
    empty = answer_patient(probs([0.4]), np.zeros(1, bool), cal, rule_diagnosis="no_tumour_found")
    assert empty == {"p_malignant": None, "answer": "no_tumour_found", "tumour_slices": "tumour mask",
                     "n_tumour_slices": 0}


def test_answer_applies_the_temperature_once():
    raw = probs([0.7, 0.7])
    cal = {"temperature": 3.0, "aggregation": "mean", "refer_band": None}
    from mrparotid.inference.calibrate import apply_temperature
    once = apply_temperature(raw, 3.0)[:, CLASSES.index("malignant")].mean()
    assert answer_patient(raw, None, cal)["p_malignant"] == pytest.approx(once)
    assert once < 0.7


def test_tumour_slices_fall_back_to_the_predicted_ones_without_a_mask():
    p = np.eye(4)[[0, 1, 3, 0]]
    assert tumour_slices(p, None)[0].tolist() == [False, True, True, False]
    assert tumour_slices(p, None)[1] == "predicted"
    assert tumour_slices(p, np.array([1, 0, 0, 0], bool))[1] == "tumour mask"


def test_calibration_of_an_old_checkpoint_is_the_identity():
    assert refer.calibration_of({})["temperature"] == 1.0
    assert refer.calibration_of({"calibration": {"temperature": 2.0}})["temperature"] == 2.0
