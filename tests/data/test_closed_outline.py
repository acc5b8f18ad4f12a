"""The gland-mask channel as the closed outline of gland ∪ tumour: a moat or notch that a drawn
contour leaves around the tumour, and a segmenter does not, is closed (issue 21)."""

from __future__ import annotations

import numpy as np

from mrparotid.data.crops import PLANES, select_channels


def crops_with_moat(moat: int) -> np.ndarray:
    """One 64 px slice: a gland block with a tumour against its right edge; the drawn contour
    leaves a ``moat`` px wide around the tumour out of the gland (0: a segmenter's contour)."""
    c = np.zeros((1, len(PLANES), 64, 64), np.uint8)
    c[0, PLANES.index("gland"), 10:54, 8:30] = 255
    c[0, PLANES.index("tumour"), 20:40, 30:46] = 255
    c[0, PLANES.index("gland"), 20 - moat:40 + moat, 30 - moat:30] = 0
    c[0, PLANES.index("T1")] = 100
    return c


def test_a_moat_between_gland_and_tumour_is_closed_so_both_contours_give_one_input():
    drawn, segmented = crops_with_moat(3), crops_with_moat(0)
    assert (select_channels(drawn, ["mask"]) != select_channels(segmented, ["mask"])).sum() > 50
    a = select_channels(drawn, ["mask"], gland_close_px=14)
    b = select_channels(segmented, ["mask"], gland_close_px=14)
    assert np.array_equal(a, b)                                      # the cue is gone
    assert set(np.unique(a)) == {0, 255}


def test_the_outline_keeps_t1_inside_and_nothing_outside_and_leaves_series_alone():
    c = crops_with_moat(3)
    t1_mask = select_channels(c, ["T1", "mask"], gland_channel="t1", gland_close_px=14)
    assert np.array_equal(t1_mask[:, 0], c[:, PLANES.index("T1")])
    inside = select_channels(c, ["mask"], gland_close_px=14)[0, 0] > 0
    assert set(np.unique(t1_mask[0, 1][inside])) == {100} and not t1_mask[0, 1][~inside].any()


def test_a_slice_without_tumour_keeps_its_gland_outline():
    c = crops_with_moat(0)
    c[0, PLANES.index("tumour")] = 0
    out = select_channels(c, ["mask"], gland_close_px=14)[0, 0] > 0
    assert np.array_equal(out, c[0, PLANES.index("gland")] > 0)
