"""Damaged DICOM header values (wrong type, count or range) give one InputError naming the file.

The values are written as stored (raw bytes, past pydicom's checks), as a broken export would
write them. A synthetic series (tests/support/patients.py) is used; the enhanced-file case uses the
real Philips fixture in ../shared and skips without it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_fixtures import image_files, materialize_all
from patients import patient_arrays, to_image
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.tag import Tag

from mrparotid.dicom.series import read_dicom_series
from mrparotid.dicom.writer import write_dicom_series
from mrparotid.errors import InputError

PATIENT = "P042"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A valid 12-slice synthetic series (40 x 40, 2 x 2 x 3 mm, identity direction)."""
    folder = tmp_path_factory.mktemp("series") / "clean"
    write_dicom_series(to_image(patient_arrays()["T1"]), folder, "1.2.826.0.1.3680043.10.1999.77.1")
    return folder


def _copy(clean: Path, dst: Path) -> list[Path]:
    dst.mkdir()
    out = []
    for f in sorted(clean.iterdir()):
        (dst / f.name).write_bytes(f.read_bytes())
        out.append(dst / f.name)
    return out


def _set_raw(path: Path, keyword: str, raw: bytes) -> None:
    """Store ``raw`` as the value of ``keyword`` in ``path``, unchecked by pydicom."""
    ds = pydicom.dcmread(path)
    tag = Tag(tag_for_keyword(keyword))
    vr = dictionary_VR(tag)
    if len(raw) % 2:
        raw += b"\x00" if vr in ("UI", "US") else b" "
    implicit = ds.file_meta.TransferSyntaxUID.is_implicit_VR
    ds[tag] = RawDataElement(tag, None if implicit else vr, len(raw), raw, 0, implicit, True)
    ds.save_as(path)


def _read(folder: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_dicom_series(folder, patient=PATIENT)


def _assert_one_line_naming(err: InputError, file: Path) -> None:
    text = str(err)
    assert "\n" not in text
    assert err.patient == PATIENT and Path(err.path).name == file.name


@pytest.mark.parametrize("keyword, raw", [
    ("PixelSpacing", b"2"),                              # one value where two are needed
    ("PixelSpacing", b"1\\2\\3\\4\\5\\6\\7"),
    ("PixelSpacing", b"0\\0"),                           # zero spacing
    ("PixelSpacing", b"-1\\2"),                          # negative spacing
    ("PixelSpacing", b"abc"),                            # not a number
    ("PixelSpacing", b""),                               # present but empty
    ("ImagePositionPatient", b"1e-300"),                 # one value where three are needed
    ("ImagePositionPatient", b"0\\0\\inf"),              # not finite
    ("ImageOrientationPatient", b"1\\0\\0\\1\\0\\0"),   # parallel cosines: no slice normal
    ("ImageOrientationPatient", b"0\\0\\0\\0\\0\\0"),   # zero cosines
    ("ImageOrientationPatient", b"2\\0\\0\\0\\2\\0"),   # not unit vectors
    ("ImageOrientationPatient", b"0\\0"),
    ("Rows", b"\x00\x01\x00\x01"),                       # two values
    ("Rows", b""),                                       # present but empty
    ("Columns", b"\x00\x00"),                            # zero columns
    ("SamplesPerPixel", b"\x00\x01\x00\x01"),
    ("RescaleSlope", b"1e400"),                          # overflows to inf
    ("RescaleSlope", b"1\\2"),
    ("RescaleIntercept", b"nan"),
])
def test_bad_value_in_every_file_is_one_error_naming_a_file(clean, tmp_path, keyword, raw):
    files = _copy(clean, tmp_path / "s")
    for f in files:
        _set_raw(f, keyword, raw)
    with pytest.raises(InputError) as info:
        _read(tmp_path / "s")
    _assert_one_line_naming(info.value, files[0])
    assert keyword in str(info.value)


@pytest.mark.parametrize("keyword, raw", [
    ("ImagePositionPatient", b"abc"), ("ImagePositionPatient", b"1\\2\\3\\4\\5\\6\\7"),
    ("ImageOrientationPatient", b"1\\0\\0\\0\\1\\0\\0"), ("PixelSpacing", b"nan\\2"),
    ("Rows", b"\x00\x01\x00\x01"), ("RescaleSlope", b"inf"),
])
def test_bad_value_in_one_file_names_that_file(clean, tmp_path, keyword, raw):
    files = _copy(clean, tmp_path / "s")
    _set_raw(files[5], keyword, raw)
    with pytest.raises(InputError) as info:
        _read(tmp_path / "s")
    _assert_one_line_naming(info.value, files[5])
    assert keyword in str(info.value)


def test_rescale_that_overflows_float32_is_an_error(clean, tmp_path):
    """A finite slope whose rescaled values do not fit float32 would give inf voxels."""
    files = _copy(clean, tmp_path / "s")
    for f in files:
        _set_raw(f, "RescaleSlope", b"1e300")
    with pytest.raises(InputError) as info:
        _read(tmp_path / "s")
    _assert_one_line_naming(info.value, files[0])


def test_colour_photometric_interpretation_is_an_error_not_a_wrong_shape(clean, tmp_path):
    """PhotometricInterpretation RGB on 1-sample pixels: GDCM reads 3-component pixels."""
    files = _copy(clean, tmp_path / "s")
    for f in files:
        _set_raw(f, "PhotometricInterpretation", b"RGB")
    with pytest.raises(InputError) as info:
        _read(tmp_path / "s")
    assert "\n" not in str(info.value) and info.value.patient == PATIENT
    assert Path(info.value.path).parent == tmp_path / "s"


def test_empty_optional_values_keep_their_defaults(clean, tmp_path):
    """Empty RescaleSlope/RescaleIntercept/SamplesPerPixel read as 1/0/1, as before."""
    files = _copy(clean, tmp_path / "s")
    for f in files:
        for keyword in ("RescaleSlope", "RescaleIntercept", "SamplesPerPixel"):
            _set_raw(f, keyword, b"")
    got, want = _read(tmp_path / "s"), _read(clean)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want))
    assert got.GetSpacing() == want.GetSpacing() and got.GetDirection() == want.GetDirection()


def test_enhanced_frame_with_a_short_position_names_the_file(tmp_path_factory, tmp_path):
    src = image_files(materialize_all(tmp_path_factory)["philips_t1_ffe_ax_enhanced"])[0]
    ds = pydicom.dcmread(src)
    plane = ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence[0]
    plane.ImagePositionPatient = ["1", "2"]
    (tmp_path / "enh").mkdir()
    ds.save_as(tmp_path / "enh" / "frames.dcm")
    with pytest.raises(InputError) as info:
        _read(tmp_path / "enh")
    _assert_one_line_naming(info.value, tmp_path / "enh" / "frames.dcm")
    assert "ImagePositionPatient" in str(info.value)
