"""Sides, slice labels, crop boxes, channel stacks and normalisation, with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from patients import GLAND_X, GLAND_Y, SHAPE, make_study, patient_arrays
from mrparotid.constants import CLASSES
from mrparotid.errors import ConfigError, InputError
from mrparotid.data.crops import PLANES, crop_box, extract_crops, normalise_percentiles, select_channels, to_uint8
from mrparotid.data.labels import UNLABELLED, label_side_slices
from mrparotid.data.preprocess import patient_slices, select_side_slices
from mrparotid.data.sides import side_regions

NO_TUMOUR = CLASSES.index("no_tumour")
GLAND_KS = list(range(2, 10))


def by_side(slices, side):
    m = slices.sides == side
    return slices.slice_index[m].tolist(), slices.labels[m].tolist()


# --- labels ----------------------------------------------------------------------------------

@pytest.mark.parametrize("diagnosis", ["pleomorphic_adenoma", "warthin", "malignant"])
def test_left_tumour_on_slices_4_to_6(diagnosis):
    out = patient_slices(make_study(tumour_side="L"), diagnosis, image_size=32)
    k = CLASSES.index(diagnosis)
    assert by_side(out, "L") == ([4, 5, 6], [k, k, k])      # tumour-free left slices left out
    assert by_side(out, "R") == (GLAND_KS, [NO_TUMOUR] * 8)  # every right gland slice negative
    assert out.crops.shape == (11, len(PLANES), 32, 32) and out.crops.dtype == np.uint8
    assert len(out) == 11 and out.labels.dtype == np.int64


def test_right_tumour_mirrors():
    out = patient_slices(make_study(tumour_side="R"), "malignant", image_size=32)
    assert by_side(out, "R") == ([4, 5, 6], [3, 3, 3])
    assert by_side(out, "L") == (GLAND_KS, [NO_TUMOUR] * 8)


def test_bilateral_tumours_give_no_negatives():
    out = patient_slices(make_study(bilateral=True), "warthin", image_size=32)
    assert by_side(out, "L") == ([4, 5, 6], [2, 2, 2])
    assert by_side(out, "R") == ([4, 5, 6], [2, 2, 2])
    assert NO_TUMOUR not in out.labels


def test_z_mm_is_the_slice_position():
    study = make_study()
    out = patient_slices(study, "warthin", image_size=32)
    np.testing.assert_allclose(out.z_mm, study.slice_z_mm()[out.slice_index])
    np.testing.assert_allclose(study.slice_z_mm()[4], -16.5 + 4 * 3.0)


def test_label_side_slices_table():
    region = np.zeros((8, 4, 4), bool)
    region[1:7, 1:3, 1:3] = True
    tumour = np.zeros_like(region)
    tumour[4:7, 2, 2] = True
    no_tumour = np.zeros_like(region)
    cases = [
        # (tumour, diagnosis, mode) -> (slices, labels)
        ((tumour, "warthin", "train"), ([4, 5, 6], [2, 2, 2])),
        ((no_tumour, "warthin", "train"), ([1, 2, 3, 4, 5, 6], [0] * 6)),
        ((tumour, "warthin", "all"), ([1, 2, 3, 4, 5, 6], [UNLABELLED] * 3 + [2] * 3)),
        ((tumour, None, "all"), ([1, 2, 3, 4, 5, 6], [UNLABELLED] * 6)),
        ((no_tumour, None, "all"), ([1, 2, 3, 4, 5, 6], [0] * 6)),
        ((None, None, "all"), ([1, 2, 3, 4, 5, 6], [UNLABELLED] * 6)),
        # the slice procedure at diagnosis: the same slices as "train", the diagnosis optional
        ((tumour, "warthin", "diagnose"), ([4, 5, 6], [2, 2, 2])),
        ((tumour, None, "diagnose"), ([4, 5, 6], [UNLABELLED] * 3)),
        ((no_tumour, None, "diagnose"), ([1, 2, 3, 4, 5, 6], [0] * 6)),
        ((no_tumour, "malignant", "diagnose"), ([1, 2, 3, 4, 5, 6], [0] * 6)),
    ]
    for (t, diagnosis, mode), (want_idx, want_labels) in cases:
        idx, labels = label_side_slices(region, t, diagnosis, mode=mode)
        assert (idx.tolist(), labels.tolist()) == (want_idx, want_labels), (diagnosis, mode)
    with pytest.raises(ValueError, match="needs the diagnosis"):
        label_side_slices(region, tumour, None, mode="train")
    for mode in ("train", "diagnose"):
        with pytest.raises(ValueError, match="needs a tumour mask"):
            label_side_slices(region, None, None, mode=mode)
    with pytest.raises(ValueError, match="mode must be one of"):
        label_side_slices(region, tumour, "warthin", mode="every")


@pytest.mark.parametrize("study_options, want", [
    ({"tumour_side": "L"}, {"L": [4, 5, 6], "R": list(range(2, 10))}),
    ({"tumour_side": "R"}, {"L": list(range(2, 10)), "R": [4, 5, 6]}),
    ({"bilateral": True}, {"L": [4, 5, 6], "R": [4, 5, 6]}),
    ({"tumour_side": None}, {"L": list(range(2, 10)), "R": list(range(2, 10))}),
    ({"tumour_side": "L", "tumour_slices": (0, 3)}, {"L": [0, 1, 2], "R": list(range(2, 10))}),
])
def test_prepare_and_diagnose_select_the_same_slices(study_options, want):
    """One slice procedure: tumour slices of the tumour side(s) + every gland slice of a side
    without tumour, whatever the diagnosis is known or not (a tumour may reach outside the gland)."""
    study = make_study(**study_options)
    chosen = {s.side: s.slice_index.tolist()
              for s in select_side_slices(study, None, margin_mm=10.0, mode="diagnose")}
    assert chosen == want
    if study.tumour.any():
        train = {s.side: s.slice_index.tolist()
                 for s in select_side_slices(study, "warthin", margin_mm=10.0, mode="train")}
        assert train == chosen


def test_the_procedure_without_a_tumour_mask_says_how_to_get_one():
    arrays = patient_arrays()
    del arrays["tumour"]
    with pytest.raises(InputError, match="no tumour mask") as err:
        patient_slices(make_study(arrays), None, image_size=32, mode="diagnose")
    assert "--segmenter" in err.value.fix and "--all-slices" in err.value.fix


def test_tumour_outside_the_region_does_not_count():
    region = np.zeros((8, 4, 4), bool)
    region[1:7, :2] = True
    tumour = np.zeros_like(region)
    tumour[3, 3, 3] = True                      # on slice 3 but not in this side's region
    idx, labels = label_side_slices(region, tumour, "malignant")
    assert labels.tolist() == [NO_TUMOUR] * 6


def test_training_needs_a_tumour():
    with pytest.raises(InputError, match="patient P001: tumour mask is empty"):
        patient_slices(make_study(tumour_side=None), "warthin")
    arrays = patient_arrays()
    del arrays["tumour"]
    with pytest.raises(InputError):
        patient_slices(make_study(arrays), "warthin")


def test_diagnosis_mode_all_without_tumour_mask():
    arrays = patient_arrays()
    del arrays["tumour"]
    out = patient_slices(make_study(arrays), None, image_size=32, mode="all")
    assert by_side(out, "L") == (GLAND_KS, [UNLABELLED] * 8)
    assert by_side(out, "R") == (GLAND_KS, [UNLABELLED] * 8)
    assert not out.crops[:, PLANES.index("tumour")].any()


# --- sides -----------------------------------------------------------------------------------

def test_sides_are_named_by_lps_x():
    """Patient left is LPS +x. With the x axis pointing to patient right, the gland at high
    index x is the RIGHT gland."""
    regions = side_regions(make_study(tumour_side="L"))
    assert regions["L"][:, :, GLAND_X["L"]].any() and not regions["L"][:, :, GLAND_X["R"]].any()
    flipped = make_study(tumour_side="L", direction=np.diag([-1.0, 1.0, 1.0]),
                         origin=(39.0, -39.0, -16.5))
    regions = side_regions(flipped)
    assert regions["R"][:, :, GLAND_X["L"]].any() and not regions["R"][:, :, GLAND_X["R"]].any()
    out = patient_slices(flipped, "warthin", image_size=32)
    assert by_side(out, "R") == ([4, 5, 6], [2, 2, 2])      # the tumour gland is now the right one


def test_gland_labels_1_and_2_are_the_sides():
    """Two glands touching across the midline are one component; labels 1/2 still split them.
    Which value is which side comes from the position, not the number."""
    for left_value in (1, 2):
        arrays = patient_arrays(tumour_side="L")
        gland = np.zeros(SHAPE, np.uint8)
        gland[2:10, GLAND_Y, 6:20] = 3 - left_value      # right, x < 20
        gland[2:10, GLAND_Y, 20:34] = left_value         # left, touching it
        arrays["gland"] = gland
        regions = side_regions(make_study(arrays))
        assert set(regions) == {"L", "R"}
        np.testing.assert_array_equal(regions["L"], gland == left_value)
        np.testing.assert_array_equal(regions["R"], gland == 3 - left_value)
        out = patient_slices(make_study(arrays), "malignant", image_size=32)
        assert by_side(out, "L") == ([4, 5, 6], [3, 3, 3])
        assert by_side(out, "R") == (GLAND_KS, [NO_TUMOUR] * 8)
        # the same glands without the labels are one region: no contralateral side
        arrays["gland"] = (gland > 0).astype(np.uint8)
        assert len(side_regions(make_study(arrays))) == 1


def test_tumour_outside_the_gland_contour_joins_its_side():
    arrays = patient_arrays(tumour_side="L", gland_labels=True)
    arrays["tumour"][:] = 0
    arrays["tumour"][4:7, GLAND_Y, 34:37] = 1        # lateral to the left gland, touching it
    regions = side_regions(make_study(arrays))
    assert regions["L"][4:7, GLAND_Y, 34:37].all()
    out = patient_slices(make_study(arrays), "warthin", image_size=32)
    assert by_side(out, "L") == ([4, 5, 6], [2, 2, 2])


def test_single_gland_is_one_side():
    arrays = patient_arrays(tumour_side="L")
    arrays["gland"][:, :, GLAND_X["R"]] = 0
    regions = side_regions(make_study(arrays))
    assert list(regions) == ["L"]


# --- crop boxes ------------------------------------------------------------------------------

def test_crop_box_known_answer():
    region = np.zeros(SHAPE, bool)
    region[2:10, 12:28, 26:34] = True                # 16 x 8 px = 32 x 16 mm at 2 mm
    assert crop_box(region, (2.0, 2.0, 3.0), 10.0) == (7, 33, 17, 43)   # 26 px = 52 mm a side
    assert crop_box(region, (2.0, 2.0, 3.0), 0.0) == (12, 28, 22, 38)   # 16 px = 32 mm a side


@pytest.mark.parametrize("spacing", [(1.0, 2.0, 3.0), (2.0, 0.7, 3.0), (0.9, 0.9, 5.0)])
@pytest.mark.parametrize("margin", [0.0, 7.5])
def test_crop_box_is_square_in_mm_and_encloses_the_region(spacing, margin):
    region = np.zeros((6, 60, 60), bool)
    region[1:5, 20:40, 25:33] = True
    y0, y1, x0, x1 = crop_box(region, spacing, margin)
    sx, sy = spacing[0], spacing[1]
    assert abs((y1 - y0) * sy - (x1 - x0) * sx) <= max(sx, sy)     # square in mm (to a pixel)
    assert y0 <= 20 and y1 >= 40 and x0 <= 25 and x1 >= 33
    side_mm = max(20 * sy, 8 * sx) + 2 * margin
    assert (y1 - y0) * sy == pytest.approx(side_mm, abs=sy)


def test_crop_box_is_fixed_over_the_side_slices():
    """A slice with a single gland voxel is cut with the same box as the big slices."""
    arrays = patient_arrays(tumour_side="L")
    arrays["gland"][9] = 0
    arrays["gland"][9, 12, 6] = 1                     # one voxel at the box corner on slice 9
    out = patient_slices(make_study(arrays), "warthin", image_size=32, margin_mm=0.0)
    right = out.crops[out.sides == "R", PLANES.index("gland")]
    full = right[0] > 0                               # 32 x 16 mm in a 32 mm square box
    corner = right[-1] > 0
    assert full.mean() == pytest.approx(0.5, abs=0.05)
    rows, cols = np.nonzero(full.any(1))[0], np.nonzero(full.any(0))[0]
    assert rows[0] == 0 and rows[-1] == 31            # margin 0: the gland spans the box height
    # the single voxel is the top-left pixel(s) of the full slice's gland, not a zoomed-in crop
    assert 0 < corner.sum() <= 4 and (corner <= full).all()
    assert np.argwhere(corner).min(0).tolist() == [rows[0], cols[0]]


def test_crop_is_square_in_mm_with_anisotropic_pixels():
    """A gland that is square in mm stays square in the crop, whatever the pixel aspect."""
    arrays = patient_arrays(tumour_side="L")
    spacing = (1.0, 2.0, 3.0)                         # x 1 mm, y 2 mm
    gland = np.zeros(SHAPE, np.uint8)
    gland[2:10, 12:22, 28:40] = 1
    gland[2:10, 12:22, 2:18] = 1                      # 10 px * 2 mm = 20 mm; 16 px * 1 mm = 16 mm
    arrays["gland"] = gland
    arrays["tumour"][:] = 0
    arrays["tumour"][4:7, 14:18, 28:34] = 1
    out = patient_slices(make_study(arrays, spacing=spacing), "warthin", image_size=64, margin_mm=5.0)
    mask = out.crops[out.sides == "R", PLANES.index("gland")][0] > 0
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert height / width == pytest.approx(20 / 16, rel=0.1)


@pytest.mark.parametrize("size", [16, 32, 48])
def test_crop_size_is_configurable(size):
    out = patient_slices(make_study(), "warthin", image_size=size)
    assert out.crops.shape[2:] == (size, size)


def test_extract_crops_outside_the_volume():
    volume = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    crops = extract_crops(volume, np.array([1]), (-1, 3, 2, 6), 4, is_mask=False)
    assert np.isnan(crops[0, 0]).all() and np.isnan(crops[0, :, 2:]).all()
    np.testing.assert_array_equal(crops[0, 1:, :2], volume[1, 0:3, 2:4])
    masks = extract_crops(volume, np.array([1]), (-1, 3, 2, 6), 4, is_mask=True)
    assert (masks[0, 0] == 0).all() and (masks[0, :, 2:] == 0).all()
    resized = extract_crops(volume, np.array([0, 1]), (0, 4, 0, 4), 8, is_mask=False)
    assert resized.shape == (2, 8, 8) and np.isfinite(resized).all()


def test_series_planes_are_normalised_per_patient_and_masks_binary():
    out = patient_slices(make_study(), "warthin", image_size=32, percentiles=(0.0, 100.0))
    for role in ("T1", "CE-T1", "T2"):
        plane = out.crops[:, PLANES.index(role)]
        assert plane.max() == 255 and plane.min() == 0
    for role in ("gland", "tumour"):
        assert set(np.unique(out.crops[:, PLANES.index(role)])) <= {0, 255}
    tumour_slices = out.labels != NO_TUMOUR
    t2, tumour = out.crops[:, PLANES.index("T2")], out.crops[:, PLANES.index("tumour")] > 0
    assert tumour[tumour_slices].any() and not tumour[~tumour_slices].any()
    assert t2[tumour].mean() > t2[~tumour].mean() + 100       # the tumour is bright on T2


def test_missing_series_plane_stays_zero():
    arrays = patient_arrays()
    del arrays["CE-T1"]
    out = patient_slices(make_study(arrays), "warthin", image_size=32)
    assert not out.crops[:, PLANES.index("CE-T1")].any() and out.crops[:, PLANES.index("T1")].any()


# --- channels --------------------------------------------------------------------------------

def planes_stack(n=2, size=4) -> np.ndarray:
    """uint8 (n, 5, size, size): series planes 10/20/30, gland on the left half, tumour top-left."""
    crops = np.zeros((n, len(PLANES), size, size), np.uint8)
    for i, role in enumerate(("T1", "CE-T1", "T2")):
        crops[:, PLANES.index(role)] = 10 * (i + 1)
    crops[:, PLANES.index("gland"), :, : size // 2] = 255
    crops[:, PLANES.index("tumour"), : size // 2, : size // 2] = 255
    return crops


@pytest.mark.parametrize("channels,values", [
    (("T1", "CE-T1", "T2", "mask"), [10, 20, 30, 255]),
    (("T1", "T2"), [10, 30]),
    (("CE-T1", "mask"), [20, 255]),
    (("T2",), [30]),
    (("mask", "T2", "T1"), [10, 30, 255]),          # any order asked: the fixed order comes out
    (("t2", "t1c"), [20, 30]),                       # and aliases are accepted
])
def test_select_channels_keeps_the_fixed_order(channels, values):
    x = select_channels(planes_stack(), channels)
    assert x.shape == (2, len(values), 4, 4) and x.dtype == np.uint8
    assert [int(x[0, c].max()) for c in range(x.shape[1])] == values


def test_select_channels_rejects_unknown_channels():
    with pytest.raises(ConfigError, match="FLAIR"):
        select_channels(planes_stack(), ("T1", "FLAIR"))


def test_series_mask_zeroes_outside_the_mask():
    crops = planes_stack()
    whole = select_channels(crops, ("T1", "CE-T1", "T2", "mask"), "none")
    assert (whole[:, :3] > 0).all()
    gland = select_channels(crops, ("T1", "CE-T1", "T2", "mask"), "gland")
    assert (gland[:, :3, :, :2] > 0).all() and (gland[:, :3, :, 2:] == 0).all()
    tumour = select_channels(crops, ("T1", "CE-T1", "T2", "mask"), "tumour")
    assert (tumour[:, :3, :2, :2] > 0).all() and tumour[:, :3].astype(bool).sum() == 2 * 3 * 4
    for x in (whole, gland, tumour):                 # the mask channel itself is never masked
        np.testing.assert_array_equal(x[:, 3], crops[:, PLANES.index("gland")])
    # a tumour left out of the gland contour is kept with the gland
    crops[:, PLANES.index("tumour"), 0, 3] = 255
    gland = select_channels(crops, ("T1", "CE-T1", "T2", "mask"), "gland")
    assert (gland[:, :3, 0, 3] > 0).all() and (gland[:, :3, 1:, 2:] == 0).all()


def test_gland_channel_t1_is_the_t1_inside_the_gland():
    crops = planes_stack()
    x = select_channels(crops, ("T2", "mask"), "tumour", "t1")
    np.testing.assert_array_equal(x[:, 1, :, :2], 10)          # T1 where the gland is
    np.testing.assert_array_equal(x[:, 1, :, 2:], 0)           # 0 outside the gland contour
    np.testing.assert_array_equal(select_channels(crops, ("mask",))[:, 0],
                                  crops[:, PLANES.index("gland")])   # default: the binary mask
    with pytest.raises(ConfigError, match="data.gland_channel is 'T2'"):
        select_channels(crops, ("mask",), "none", "T2")


def test_gland_series_mask_without_a_known_tumour_keeps_the_series_whole():
    crops = planes_stack()
    x = select_channels(crops, ("T1", "CE-T1", "T2", "mask"), "gland", tumour_known=False)
    np.testing.assert_array_equal(x[:, :3], crops[:, :3])


def test_a_slice_gets_the_same_bytes_in_train_and_all_modes():
    study = make_study(tumour_side="L")
    train = patient_slices(study, "warthin", image_size=32)
    every = patient_slices(study, "warthin", image_size=32, mode="all")
    assert len(every) > len(train)                          # the tumour side's other slices too
    where = {(s, k): i for i, (s, k) in enumerate(zip(every.sides, every.slice_index))}
    for i, (s, k) in enumerate(zip(train.sides, train.slice_index)):
        np.testing.assert_array_equal(train.crops[i], every.crops[where[(s, k)]], err_msg=f"{s}{k}")


# --- normalisation ---------------------------------------------------------------------------

def test_normalise_percentiles_maps_to_unit_interval():
    rng = np.random.default_rng(0)
    x = rng.normal(100, 20, (3, 16, 16))
    x[0, 0, 0] = 1e6                                   # an outlier does not squash the rest
    y = normalise_percentiles(x, 1.0, 99.0)
    assert y.dtype == np.float32 and y.min() == 0.0 and y.max() == 1.0
    assert 0.3 < np.median(y) < 0.7
    assert y[0, 0, 0] == 1.0


def test_normalise_percentiles_edge_cases():
    np.testing.assert_array_equal(normalise_percentiles(np.full((2, 3), 7.0)), np.zeros((2, 3)))
    nan = np.array([np.nan, 1.0, 1.0])
    out = normalise_percentiles(nan)
    assert np.isnan(out[0]) and (out[1:] == 0).all()
    out = normalise_percentiles(np.array([np.nan, 0.0, 5.0, 10.0]), 0, 100)
    assert np.isnan(out[0]) and out[1:].tolist() == [0.0, 0.5, 1.0]
    assert (normalise_percentiles(np.full(3, np.nan)) == 0).all()
    np.testing.assert_array_equal(to_uint8(np.array([np.nan, 0.0, 0.5, 1.0])), [0, 0, 128, 255])


def test_constant_series_gives_zero_plane():
    arrays = patient_arrays()
    arrays["T1"][:] = 123.0
    out = patient_slices(make_study(arrays), "warthin", image_size=32)
    assert not out.crops[:, PLANES.index("T1")].any()
