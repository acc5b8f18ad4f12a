"""SEG and SR on real vendor T1 series from ../shared (a classic axial Philips series, and an
enhanced multi-frame sagittal Siemens one): masks given on the T1 reference grid come back voxel
for voxel from the SEG's frames onto the T1 grid, and dciodvfy finds no error in either object."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_fixtures import image_files, materialize_all
from dicom_results import dciodvfy_errors, decode_seg

from mrparotid.data.grid import Study, reference_grid
from mrparotid.dicom_out.source import read_source
from mrparotid.dicom_out.write import write_dicom_results
from mrparotid.io.files import read_image


def box_masks(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Gland (1 right = low x, 2 left = high x) and tumour boxes on a (z, y, x) reference grid."""
    nz, ny, nx = shape
    gland = np.zeros(shape, np.uint8)
    z, y = slice(nz // 4, 3 * nz // 4), slice(ny // 3, 2 * ny // 3)
    gland[z, y, nx // 8: 3 * nx // 8] = 1
    gland[z, y, 5 * nx // 8: 7 * nx // 8] = 2
    tumour = np.zeros(shape, np.uint8)
    tumour[nz // 3: nz // 2, ny // 2 - 3: ny // 2 + 3, 5 * nx // 8 + 2: 6 * nx // 8] = 1
    return gland, tumour


def back_on_t1(volume: np.ndarray, reference: sitk.Image, t1: sitk.Image) -> np.ndarray:
    """A (z, y, x) reference-grid volume on the T1 grid as read (nearest voxel: no value changes)."""
    image = sitk.GetImageFromArray(volume)
    image.CopyInformation(reference)
    return sitk.GetArrayFromImage(sitk.Resample(image, t1, sitk.Transform(), sitk.sitkNearestNeighbor,
                                                0, sitk.sitkUInt8))


@pytest.mark.parametrize("name", ["philips_t1_ffe_ax_classic", "siemens_xa30_t1_tfl3d_sag_enhanced"])
def test_seg_and_sr_on_a_vendor_t1(name, tmp_path_factory, tmp_path):
    folder = materialize_all(tmp_path_factory)[name]
    files = image_files(folder)
    t1 = read_image(folder)
    reference = reference_grid(t1)
    gland, tumour = box_masks(sitk.GetArrayViewFromImage(reference).shape)
    study = Study(name, {"T1": sitk.GetArrayFromImage(reference)}, gland, tumour,
                  tuple(reference.GetSpacing()), tuple(reference.GetOrigin()),
                  np.array(reference.GetDirection()).reshape(3, 3))
    row = int(np.flatnonzero(tumour.any((1, 2)))[0])
    report = {"answer": "refer", "answer_reason": "test", "diagnosis": "warthin", "p_malignant": 0.3,
              "decision": {"operating_point": "refer band [0.2, 0.5)", "record": "test"},
              "slices": [{"side": "L", "index": row, "z_mm": 0.0, "pred": "warthin",
                          "probs": {"no_tumour": 0.1, "pleomorphic_adenoma": 0.1, "warthin": 0.7,
                                    "malignant": 0.1}}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = write_dicom_results(tmp_path, study, read_source(files),
                                     {"gland": "given", "tumour": "given"}, report=report)
    name = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientName)
    assert not [w for w in caught if name in str(w.message)]      # no warning quotes the name
    decoded = decode_seg(result.seg, t1, files)
    assert np.array_equal(decoded["Right parotid gland"] + 2 * decoded["Left parotid gland"],
                          back_on_t1(gland, reference, t1))
    assert np.array_equal(decoded["Tumour"], back_on_t1(tumour, reference, t1))
    seg = pydicom.dcmread(result.seg)
    assert {s.SegmentAlgorithmType for s in seg.SegmentSequence} == {"MANUAL"}     # given contours
    assert "SYNTHETIC" not in seg.SeriesDescription                               # real data
    assert dciodvfy_errors(result.seg) == [] and dciodvfy_errors(result.sr) == []



def test_the_t1_of_a_study_with_no_ce_t1_and_two_t2_is_found(tmp_path, tmp_path_factory):
    """A SEG references the T1 alone: a study folder without CE-T1 and with two T2 series (a
    study the classifier may read with a series-dropout model) still gives its T1's files."""
    from dicom_fixtures import copy_series

    from mrparotid.dicom_out.source import t1_files

    files = image_files(materialize_all(tmp_path_factory)["philips_t1_ffe_ax_classic"])
    study = tmp_path / "study"
    t1 = copy_series(files, study / "s3", description="T1W_SE", series_number=3)
    copy_series(files, study / "s5", description="T2W_TSE", series_number=5)
    copy_series(files, study / "s6", description="T2W_TSE 2", series_number=6)
    assert sorted(p.name for p in t1_files(study, "P1", None)) == sorted(p.name for p in t1)
