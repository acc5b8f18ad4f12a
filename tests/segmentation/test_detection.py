"""Side-level tumour detection on hand-made masks: a side's tumour counts as found only where
the automatic tumour overlaps it; an automatic tumour elsewhere is a false alarm."""

from __future__ import annotations

import numpy as np
from patients import SPACING, TUMOUR_SLICES, TUMOUR_Y, patient_arrays

from mrparotid.segmentation.detection import detection_counts, half_space_sides, side_detection


def _halves():
    a = patient_arrays(tumour_side="L")
    return half_space_sides(a["gland"], a["tumour"], SPACING), a["tumour"]


def test_found_needs_overlap_with_the_given_tumour():
    sides, truth = _halves()
    assert set(sides) == {"L", "R"} and not (sides["L"] & sides["R"]).any()
    assert (sides["L"] | sides["R"]).all()
    elsewhere = np.zeros_like(truth)                   # same gland, slices 8..9: no overlap
    elsewhere[8:10, TUMOUR_Y, 28:32] = 1
    det = side_detection(elsewhere, truth, sides)
    assert det["L"] == {"tumour": True, "auto": True, "found": False, "false_alarm": True}
    assert det["R"] == {"tumour": False, "auto": False, "found": False, "false_alarm": False}
    hit = side_detection(truth, truth, sides)
    assert hit["L"]["found"] and not hit["L"]["false_alarm"] and not hit["R"]["auto"]
    both = side_detection(np.maximum(truth, elsewhere), truth, sides)        # two components
    assert both["L"]["found"] and both["L"]["false_alarm"]


def test_a_tumour_on_the_wrong_side_is_a_miss_and_a_false_alarm():
    sides, truth = _halves()
    wrong = patient_arrays(tumour_side="R")["tumour"]
    det = side_detection(wrong, truth, sides)
    assert not det["L"]["found"] and det["R"]["false_alarm"] and not det["R"]["tumour"]
    counts = detection_counts(list(det.values()))
    assert counts == {"sides": 2, "tumour_sides": 1, "found": 0, "missed": 1, "tumour_free_sides": 1,
                      "clear": 0, "false_alarm_sides": 1}


def test_a_component_off_every_region_goes_to_the_nearest_side():
    a = patient_arrays(tumour_side="L", gland_labels=True)
    regions = {"L": a["gland"] == 2, "R": a["gland"] == 1}
    outside = np.zeros_like(a["tumour"])
    outside[slice(*TUMOUR_SLICES), 2:5, 34:38] = 1     # beyond the left gland, touching nothing
    det = side_detection(outside, a["tumour"], regions)
    assert det["L"]["false_alarm"] and not det["L"]["found"] and not det["R"]["auto"]
    assert side_detection(outside, a["tumour"], {}) == {}
