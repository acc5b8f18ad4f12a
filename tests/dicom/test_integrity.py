"""DICOM integrity: a damaged file with the DICOM preamble is an error naming it (never a slice
quietly left out and interpolated); interpolated gaps are recorded and reach the report; gaps
longer than data.max_gap_slices are refused."""

from __future__ import annotations

import shutil

import pytest
from dicom_fixtures import copy_series, image_files, materialize_all
from patients import patient_arrays, to_image, write_patient

from mrparotid.data.preprocess import load_study, prepare_patient
from mrparotid.dicom.series import (SliceGapWarning, interpolated_positions, read_dicom_series,
                                    read_series_files)
from mrparotid.dicom.writer import write_dicom_series
from mrparotid.errors import InputError
from mrparotid.io.manifest import PatientCase


@pytest.fixture(scope="session")
def real_dicom(tmp_path_factory):
    return materialize_all(tmp_path_factory)


def _cut(path, n_bytes: int) -> None:
    path.write_bytes(path.read_bytes()[:n_bytes])


# name: (fixture series, bytes kept of the damaged file): cut in the header so that pydicom
# returns a partial header (2000: no series UID; 4000: no pixel data) or raises (enhanced, 2000)
DAMAGE = {"header cut before the series UID": ("siemens_t1_fl2d_sag_classic", 2000),
          "header cut before the pixel data": ("siemens_t1_fl2d_sag_classic", 4000),
          "header does not parse": ("philips_t1_ffe_ax_enhanced", 2000)}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_dicom_file_is_an_error_naming_it(real_dicom, tmp_path, name):
    series, keep = DAMAGE[name]
    folder = tmp_path / "T1"
    files = copy_series(image_files(real_dicom[series]), folder, new_uids=False)
    damaged = files[len(files) // 2]
    _cut(damaged, keep)
    with pytest.raises(InputError) as err:
        read_dicom_series(folder, patient="P7")
    text = str(err.value)
    assert text.startswith(f"patient P7: file {damaged}: ") and "\n" not in text
    with pytest.raises(InputError, match=str(damaged.name)):
        read_series_files(files, patient="P7")


def test_a_damaged_file_in_a_study_folder_fails_the_patient(real_dicom, tmp_path):
    """A study folder (patient → roles by description) with a damaged slice: an InputError for
    the patient naming the file (skip_bad then goes on without the patient)."""
    root = tmp_path / "P8"
    files = copy_series(image_files(real_dicom["philips_t1_ffe_ax_classic"]), root / "s1",
                        description="T1 AX")
    _cut(files[3], 2000)
    with pytest.raises(InputError) as err:
        load_study(PatientCase("P8", None, root), mode="diagnose", require_gland=False)
    assert f"patient P8: file {files[3]}" in str(err.value)


def test_files_without_the_preamble_are_still_skipped(real_dicom, tmp_path):
    folder = tmp_path / "T1"
    copy_series(image_files(real_dicom["philips_t1_ffe_ax_classic"]), folder, new_uids=False)
    (folder / "notes").write_bytes(b"\0" * 300)                   # no DICM at byte 128
    (folder / "README").write_text("export notes", encoding="utf-8")
    assert read_dicom_series(folder).GetSize()[2] > 3


def _dicom_patient(tmp_path, drop: list[int]):
    """The default patient with its T2 as a DICOM folder lacking slices ``drop`` (z indices)."""
    folder = write_patient(tmp_path / "P9", omit=("T2",))
    written = write_dicom_series(to_image(patient_arrays()["T2"]), folder / "T2",
                                 "1.2.826.0.1.3680043.10.1999.9.1")
    for k in drop:
        written[k].unlink()
    return folder


def test_interpolated_slices_are_recorded_and_noted(tmp_path):
    folder = _dicom_patient(tmp_path, [5])
    with pytest.warns(SliceGapWarning):
        image = read_dicom_series(folder / "T2")
    z5 = image.TransformIndexToPhysicalPoint((0, 0, 5))[2]       # axial: along the normal = LPS z
    assert interpolated_positions(image) == pytest.approx((z5,), abs=0.01)
    with pytest.warns(SliceGapWarning):
        study = load_study(PatientCase("P9", "warthin", folder), mode="train")
    (note,) = study.notes
    assert note.startswith("T2: 1 slice(s)") and f"{z5:.1f} mm" in note


def test_a_gap_beyond_max_gap_slices_is_refused(tmp_path):
    from mrparotid.config import load_config

    folder = _dicom_patient(tmp_path, [5, 6])
    case = PatientCase("P9", "warthin", folder)
    with pytest.raises(InputError, match=r"2 missing slices .* at most 1 in a row") as err:
        load_study(case, mode="train")
    assert "patient P9" in str(err.value) and "max_gap_slices" in str(err.value)
    cfg = load_config(None, ["--data.image_size", "32", "--data.max_gap_slices", "2"])
    with pytest.warns(SliceGapWarning):
        assert len(prepare_patient(case, cfg)) > 0
    cfg["data"]["max_gap_slices"] = 0
    with pytest.raises(InputError, match="1 missing slices"):
        prepare_patient(PatientCase("P9", "warthin", _dicom_patient(tmp_path / "b", [5])), cfg)


def test_diagnose_reports_the_interpolated_slices(tmp_path):
    from checkpoints import tiny_checkpoint

    from mrparotid.inference.diagnose import diagnose_case, format_report

    folder = _dicom_patient(tmp_path, [5])
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    with pytest.warns(SliceGapWarning):
        report = diagnose_case(PatientCase("P9", None, folder), loaded)
    assert any(n.startswith("T2: 1 slice(s)") for n in report["notes"])
    assert "T2: 1 slice(s)" in format_report(report)
    shutil.rmtree(folder)
