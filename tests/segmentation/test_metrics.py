"""Honest HD95 on hand-made masks: a missed tumour (or one predicted where none is given) makes
the mean HD95 undefined, with the count, instead of leaving the patient out."""

from __future__ import annotations

import pytest
from patients import SPACING, patient_arrays

from mrparotid.segmentation.metrics import mean_scores, patient_scores


def _scores(tumour_side_auto):
    truth = patient_arrays(tumour_side="L")
    auto = patient_arrays(tumour_side=tumour_side_auto)
    return patient_scores(auto["gland"], auto["tumour"], truth["gland"], truth["tumour"], SPACING)


def test_a_missed_tumour_makes_the_mean_hd95_undefined_with_its_count():
    found, missed = _scores("L"), _scores(None)
    assert found["tumour_hd95_mm"] == 0.0 and not found["tumour_missed"]
    assert missed["tumour_hd95_mm"] is None and missed["tumour_missed"] and missed["tumour_dice"] == 0.0
    mean = mean_scores([found, found, missed])
    assert mean["tumour_hd95_mm"] is None                     # never the mean of the two found
    assert mean["tumour_hd95_missed"] == 1 and mean["tumour_hd95_false_alarms"] == 0
    assert (mean["tumour_hd95_mm_defined"], mean["tumour_hd95_n"]) == (0.0, 2)
    assert mean["tumour_dice"] == pytest.approx(2 / 3)
    assert mean_scores([found, found])["tumour_hd95_mm"] == 0.0
    assert mean["gland_hd95_mm"] == 0.0 and mean["gland_hd95_missed"] == 0


def test_a_tumour_predicted_where_none_is_given_is_a_false_alarm_in_the_hd95():
    truth = patient_arrays(tumour_side=None)
    auto = patient_arrays(tumour_side="R")
    row = patient_scores(auto["gland"], auto["tumour"], truth["gland"], truth["tumour"], SPACING)
    assert row["tumour_false_alarm"] and not row["tumour_missed"]
    clean = patient_scores(truth["gland"], truth["tumour"], truth["gland"], truth["tumour"], SPACING)
    assert not clean["tumour_false_alarm"] and clean["tumour_hd95_mm"] is None   # both empty: no failure
    mean = mean_scores([row, clean])
    assert mean["tumour_hd95_mm"] is None and mean["tumour_hd95_false_alarms"] == 1
    assert mean_scores([clean])["tumour_hd95_missed"] == 0
