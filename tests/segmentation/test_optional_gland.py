"""A patient folder with only the three series: readable when asked (``require_gland=False``),
refused by default (training, prepare)."""

from __future__ import annotations

import pytest
from patients import SHAPE, write_patient

from mrparotid.data.preprocess import load_study
from mrparotid.errors import InputError
from mrparotid.io.files import find_patient_files
from mrparotid.io.manifest import PatientCase


@pytest.fixture
def series_only(tmp_path):
    return write_patient(tmp_path / "P1", omit=("gland", "tumour"))


def test_files_without_gland(series_only):
    with pytest.raises(InputError, match="no gland mask"):
        find_patient_files(series_only)
    files = find_patient_files(series_only, require_gland=False)
    assert set(files.paths) == {"T1", "CE-T1", "T2"}


def test_study_without_gland(series_only):
    case = PatientCase("P1", None, series_only)
    study = load_study(case, mode="diagnose", require_gland=False)
    assert study.gland is None and study.tumour is None
    assert study.shape == SHAPE and set(study.series) == {"T1", "CE-T1", "T2"}
    with pytest.raises(InputError, match="no gland mask"):
        load_study(case, mode="diagnose")
    with pytest.raises(InputError):
        load_study(case, mode="train", require_gland=False)   # training always needs the masks


def test_a_given_gland_is_still_read(tmp_path):
    folder = write_patient(tmp_path / "P2", omit=("tumour",))
    study = load_study(PatientCase("P2", None, folder), mode="diagnose", require_gland=False)
    assert study.gland is not None and study.gland.any()
