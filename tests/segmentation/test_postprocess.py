"""Post-processing of the segmenter's masks on synthetic arrays (table-driven)."""

from __future__ import annotations

import numpy as np
import pytest

from mrparotid.data.grid import Study
from mrparotid.segmentation.postprocess import postprocess

SHAPE = (10, 40, 60)          # (z, y, x); x towards patient Left
SPACING = (1.0, 1.0, 2.0)     # (x, y, z) mm: a voxel is 2 mm^3
# the grid's study: centred on LPS x 0, T1 tissue everywhere (no head outline), so a lone gland's
# side is the sign of its LPS x (with a warning); see tests/data/test_sides.py for the outline
STUDY = Study("P1", {"T1": np.full(SHAPE, 300.0, np.float32)}, None, None, SPACING,
              (-29.5, -19.5, 0.0), np.eye(3))
SETTINGS = dict(min_component_mm3=40.0, tumour_max_distance_mm=3.0, study=STUDY)


def box(z, y, x) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[z[0]:z[1], y[0]:y[1], x[0]:x[1]] = True
    return m


RIGHT = box((2, 8), (10, 30), (5, 15))        # 6*20*10 voxels, x 5..14 (patient right)
LEFT = box((2, 8), (10, 30), (45, 55))        # patient left
SPECK = box((0, 1), (0, 2), (28, 30))         # 4 voxels = 8 mm^3 < 40 mm^3
RIGHT_SMALL = box((2, 6), (32, 38), (2, 6))   # 96 voxels, a second right-side piece


def tumour_at(x0: int, x1: int) -> np.ndarray:
    return box((4, 6), (15, 20), (x0, x1))


CASES = {
    # name: (gland, tumour, expected right gland, expected left gland, expected tumour, sides)
    "two glands kept, labelled 1 right 2 left": (RIGHT | LEFT, np.zeros(SHAPE, bool), RIGHT, LEFT,
                                                  np.zeros(SHAPE, bool), {"L", "R"}),
    "speck removed": (RIGHT | LEFT | SPECK, np.zeros(SHAPE, bool), RIGHT, LEFT, np.zeros(SHAPE, bool),
                      {"L", "R"}),
    "largest gland piece per side": (RIGHT | LEFT | RIGHT_SMALL, np.zeros(SHAPE, bool), RIGHT, LEFT,
                                     np.zeros(SHAPE, bool), {"L", "R"}),
    "tumour inside gland kept": (LEFT & ~tumour_at(47, 52), tumour_at(47, 52), np.zeros(SHAPE, bool),
                                 LEFT & ~tumour_at(47, 52), tumour_at(47, 52), {"L"}),
    "tumour touching gland kept": (LEFT, tumour_at(55, 58), np.zeros(SHAPE, bool), LEFT,
                                   tumour_at(55, 58), {"L"}),
    "tumour 2 mm from gland kept": (LEFT, tumour_at(57, 60), np.zeros(SHAPE, bool), LEFT,
                                    tumour_at(57, 60), {"L"}),
    "tumour far from gland dropped": (RIGHT | LEFT, tumour_at(26, 34), RIGHT, LEFT,
                                      np.zeros(SHAPE, bool), {"L", "R"}),
    "tumour speck dropped": (LEFT, box((4, 5), (15, 17), (47, 49)), np.zeros(SHAPE, bool), LEFT,
                             np.zeros(SHAPE, bool), {"L"}),
    "nothing found": (np.zeros(SHAPE, bool), tumour_at(47, 52), np.zeros(SHAPE, bool),
                      np.zeros(SHAPE, bool), np.zeros(SHAPE, bool), set()),
}


@pytest.mark.parametrize("name", CASES)
def test_postprocess(name):
    gland, tumour, right, left, want_tumour, sides = CASES[name]
    out = postprocess(gland, tumour, SPACING, **SETTINGS)
    assert np.array_equal(out.gland == 1, right)
    assert np.array_equal(out.gland == 2, left)
    assert np.array_equal(out.tumour > 0, want_tumour)
    assert set(out.sides) == sides
    assert out.gland.dtype == np.uint8 and out.tumour.dtype == np.uint8


def test_side_findings_in_ml():
    t = tumour_at(47, 52)
    out = postprocess(RIGHT | (LEFT & ~t), t, SPACING, **SETTINGS)
    voxel_ml = np.prod(SPACING) / 1000
    assert out.sides["R"].gland_ml == pytest.approx(RIGHT.sum() * voxel_ml)
    assert out.sides["L"].tumour_ml == pytest.approx(t.sum() * voxel_ml)
    assert out.sides["L"].tumour_found and not out.sides["R"].tumour_found


def test_min_size_is_in_mm3():
    # the 96-voxel right piece alone is 192 mm^3: kept at 150 mm^3, removed at 200 mm^3
    kept = postprocess(RIGHT_SMALL, np.zeros(SHAPE, bool), SPACING, min_component_mm3=150.0,
                       tumour_max_distance_mm=0.0, study=STUDY)
    gone = postprocess(RIGHT_SMALL, np.zeros(SHAPE, bool), SPACING, min_component_mm3=200.0,
                       tumour_max_distance_mm=0.0, study=STUDY)
    assert (kept.gland == 1).sum() == RIGHT_SMALL.sum() and not gone.gland.any()


def test_distance_threshold_is_in_mm():
    # the gland ends at x 54, x 55 touches it; a tumour starting at x 58 lies 3 mm (x spacing 1 mm)
    # from the touching voxels
    far = tumour_at(58, 60)
    assert postprocess(LEFT, far, SPACING, min_component_mm3=0.0, tumour_max_distance_mm=3.0,
                       study=STUDY).tumour.any()
    assert not postprocess(LEFT, far, SPACING, min_component_mm3=0.0, tumour_max_distance_mm=2.5,
                           study=STUDY).tumour.any()
