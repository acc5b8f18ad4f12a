"""The side of a lone gland comes from the patient's own midline (head outline on T1), else the
sign of LPS x with a warning, never the field-of-view centre; near the midline it is unknown.
Given masks (side_regions), automatic ones (postprocess) and diagnose's mask warnings agree."""

from __future__ import annotations

import numpy as np
import pytest
from heads import head_study

from mrparotid.data.sides import SIDE_UNKNOWN_MM, find_sides, outline_midline_x, side_regions
from mrparotid.inference.masks import resolve_masks
from mrparotid.segmentation.postprocess import UNKNOWN_LABEL, UNKNOWN_SIDE, postprocess

SETTINGS = dict(min_component_mm3=0.0, tumour_max_distance_mm=3.0)

# name: (study options, the side the gland is on, whether a warning is due)
CASES = {
    # the repro: a 60 mm field of view on the patient's right, body filling it, gland at
    # LPS x -46.5 mm (right of the field-of-view centre, -50 mm): no outline -> sign of LPS x
    "narrow FOV on the right, no outline": (dict(fov_x=(-80, -20), head_x=None, glands=[-46.5]),
                                            "R", True),
    # the head lies 60 mm right of the scanner centre; the gland is 45 mm to the head's left, yet
    # right of both the field-of-view centre (0) and LPS x 0: only the outline names it
    "head off-centre, outline": (dict(fov_x=(-160, 160), head_x=-60, glands=[-15]), "L", False),
    "head off-centre, right gland": (dict(fov_x=(-160, 160), head_x=60, glands=[15]), "R", False),
    "two glands": (dict(fov_x=(-160, 160), head_x=-60, glands=[-105, -15]), "LR", False),
}


@pytest.mark.parametrize("name", CASES)
def test_lone_gland_side_given_masks(name):
    options, side, warned = CASES[name]
    sides = find_sides(head_study(**options))
    assert "".join(sorted(sides.regions)) == "".join(sorted(side))
    assert not sides.unknown
    assert bool(sides.warnings) == warned
    if warned:
        assert "sign of LPS x" in sides.warnings[0]


@pytest.mark.parametrize("name", CASES)
def test_automatic_masks_get_the_same_side(name):
    """postprocess names sides with the same rule: label 1 right, 2 left, as side_regions does."""
    options, side, warned = CASES[name]
    study = head_study(**options)
    clean = postprocess(study.gland, study.tumour, study.spacing, study=study, **SETTINGS)
    assert "".join(sorted(clean.sides)) == "".join(sorted(side))
    for s, value in (("R", 1), ("L", 2)):
        np.testing.assert_array_equal(clean.gland == value, side_regions(study).get(s, 0) & (study.gland > 0))
    assert bool(clean.warnings) == warned


def test_outline_midline_is_the_head_centre():
    study = head_study(fov_x=(-160, 160), head_x=-60, glands=[-15])
    assert outline_midline_x(study, study.gland > 0) == pytest.approx(-60, abs=1.0)
    cut = head_study(fov_x=(-100, 100), head_x=-60, glands=[-15])      # head cut at -100 mm
    assert outline_midline_x(cut, cut.gland > 0) is None


@pytest.mark.parametrize("offset", [0.0, 4.0, -SIDE_UNKNOWN_MM + 1])
def test_gland_near_the_midline_has_no_side(offset):
    study = head_study(fov_x=(-160, 160), head_x=-60, glands=[-60 + offset], tumour_in=0)
    sides = find_sides(study)
    assert len(sides.regions) == 1 and sides.unknown == tuple(sides.regions)
    assert any(w.startswith("side unknown") for w in sides.warnings)
    clean = postprocess(study.gland, study.tumour, study.spacing, study=study, **SETTINGS)
    assert set(np.unique(clean.gland)) == {0, UNKNOWN_LABEL}
    assert list(clean.sides) == [UNKNOWN_SIDE] and clean.sides[UNKNOWN_SIDE].tumour_found
    assert any(w.startswith("side unknown") for w in clean.warnings)


def test_lone_gland_without_geometry_is_side_unknown():
    """Without a study there is no midline: the field-of-view centre is never used."""
    study = head_study(fov_x=(-80, -20), head_x=None, glands=[-30])
    clean = postprocess(study.gland, study.tumour, study.spacing, **SETTINGS)
    assert set(np.unique(clean.gland)) == {0, UNKNOWN_LABEL} and list(clean.sides) == [UNKNOWN_SIDE]


def test_diagnose_masks_carry_the_side_warnings():
    unknown = head_study(fov_x=(-160, 160), head_x=-60, glands=[-58], tumour_in=0)
    assert any(w.startswith("side unknown") for w in resolve_masks(unknown, None).warnings)
    no_outline = head_study(fov_x=(-80, -20), head_x=None, glands=[-46.5], tumour_in=0)
    masks = resolve_masks(no_outline, None)
    assert masks.tumour_found == {"R": True}
    assert any("sign of LPS x" in w for w in masks.warnings)
    clear = head_study(fov_x=(-160, 160), head_x=-60, glands=[-105, -15], tumour_in=1)
    assert resolve_masks(clear, None).warnings == ()
