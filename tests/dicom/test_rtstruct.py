"""RTSTRUCT writing and reading: round trips of known masks on real series, ROI names, errors."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicom_fixtures import dice, ellipsoid, image_files, materialize_all

from mrparotid.dicom.series import read_dicom_series
from mrparotid.errors import InputError
from mrparotid.dicom.rtstruct import (masks_from_rtstruct, match_roi, rasterise, referenced_series_uids,
                                roi_contours, write_rtstruct)
from mrparotid.dicom.roles import load_roles


@pytest.fixture(scope="session")
def real_dicom(tmp_path_factory):
    return materialize_all(tmp_path_factory)


@pytest.fixture(scope="module")
def rules():
    return load_roles().rois


def _glands_and_tumour(reference):
    right = ellipsoid(reference, [-40, 0, 0], [18, 25, 30])   # LPS -x = patient right
    left = ellipsoid(reference, [40, 0, 0], [18, 25, 30])
    tumour = ellipsoid(reference, [42, 5, 0], [9, 10, 12])
    return right, left, tumour


@pytest.mark.parametrize("name", [
    "philips_t1_ffe_ax_classic", "siemens_xa30_t1_tfl3d_sag_enhanced"])
def test_round_trip(real_dicom, tmp_path, rules, name):
    files = image_files(real_dicom[name])
    reference = read_dicom_series(real_dicom[name])
    right, left, tumour = _glands_and_tumour(reference)
    path = write_rtstruct({"Parotid_R": right, "Parotid_L": left, "GTV_primary": tumour}, files,
                          tmp_path / "rs.dcm")
    ds = pydicom.dcmread(path)
    assert ds.Modality == "RTSTRUCT"
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    assert referenced_series_uids(ds) == [series_uid]
    assert set(roi_contours(ds)) == {"Parotid_R", "Parotid_L", "GTV_primary"}
    masks = masks_from_rtstruct(ds, reference, rules)
    assert set(np.unique(masks["gland"])) == {0, 1, 2}
    assert masks["gland"].shape == masks["tumour"].shape == reference.GetSize()[::-1]
    assert dice(masks["gland"] == 1, right) >= 0.95
    assert dice(masks["gland"] == 2, left) >= 0.95
    assert dice(masks["tumour"], tumour) >= 0.95


def test_holes_survive_the_round_trip(real_dicom, tmp_path, rules):
    folder = real_dicom["philips_t1_ffe_ax_classic"]
    reference = read_dicom_series(folder)
    outer = ellipsoid(reference, [0, 0, 0], [40, 40, 20])
    ring = outer & ~ellipsoid(reference, [0, 0, 0], [20, 20, 40])
    path = write_rtstruct({"Parotids": ring}, image_files(folder), tmp_path / "rs.dcm")
    ds = pydicom.dcmread(path)
    mask = masks_from_rtstruct(ds, reference, rules)["gland"]
    assert set(np.unique(mask)) == {0, 1}          # unsided ROI → 1
    assert dice(mask, ring) >= 0.95 and not mask[reference.GetSize()[2] // 2, 128, 128]


def test_contour_off_the_slice_planes_is_an_error(real_dicom, tmp_path):
    folder = real_dicom["philips_t1_ffe_ax_classic"]
    reference = read_dicom_series(folder)
    contour = np.array([[0, 0, 0], [20, 0, 0], [20, 20, 0], [0, 20, 0]], float)
    contour += reference.TransformIndexToPhysicalPoint((128, 128, 10))
    near = rasterise([contour + [0, 0, 2.5]], reference)       # 2.5 mm < half of 5.5 mm
    assert near[10].sum() > 300 and near.sum() == near[10].sum()
    assert rasterise([contour + [0, 0, 3.0]], reference)[11].sum() == near[10].sum()
    tilted = contour + np.array([[0, 0, 0], [0, 0, 0], [0, 0, 6.0], [0, 0, 6.0]])
    with pytest.raises(InputError, match="from the nearest slice plane") as err:
        rasterise([tilted], reference, name="GTV", patient="P9", path=tmp_path)
    assert str(err.value).startswith("patient P9: file ") and "\n" not in str(err.value)
    with pytest.raises(InputError, match="slice plane"):
        rasterise([contour + [0, 0, 200.0]], reference)            # beyond the last slice


@pytest.mark.parametrize("name, key", [
    ("Parotid_L", "gland_left"), ("Parotid_R", "gland_right"), ("parotid gland rt", "gland_right"),
    ("L Parotid", "gland_left"), ("Parotis_li", "gland_left"), ("Parotids", "gland"),
    ("parotid", "gland"), ("GTV1", "tumour"), ("GTV_parotid_R", "tumour"), ("Tumor", "tumour"),
    ("Tumour_2", "tumour"), ("lesion", "tumour"), ("Brainstem", None), ("Eye_L", None),
    ("Mandible", None),
])
def test_roi_names(rules, name, key):
    assert match_roi(name, rules) == key
