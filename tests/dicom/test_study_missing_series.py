"""A DICOM study folder lacking a series: answered by a series-dropout checkpoint (the series
named as missing), refused by one trained without dropout, as for a folder of named files."""

from __future__ import annotations

import pytest

from checkpoints import tiny_checkpoint
from patients import patient_arrays, to_image, write_patient

from mrparotid.data.preprocess import load_study
from mrparotid.dicom.writer import write_dicom_series
from mrparotid.errors import CheckpointError, MissingSeriesError
from mrparotid.inference.diagnose import diagnose_case
from mrparotid.io.manifest import PatientCase

DESCRIPTIONS = {"T1": "T1 TSE AX", "CE-T1": "T1 TSE AX +C", "T2": "T2 TSE AX"}


def dicom_study(folder, omit: tuple[str, ...] = ()):
    """The default patient as a study export: each series a DICOM folder named by number (roles
    from the descriptions), the masks as parotid/tumour files beside them."""
    write_patient(folder, omit=("T1", "CE-T1", "T2"))
    arrays = patient_arrays()
    for n, (role, description) in enumerate(DESCRIPTIONS.items(), start=3):
        if role not in omit:
            write_dicom_series(to_image(arrays[role]), folder / f"SE{n}",
                               f"1.2.826.0.1.3680043.10.1999.4.{n}", description=description)
    return folder


def checkpoint(path, *overrides: str):
    return tiny_checkpoint(path, *overrides)[1]


def test_dropout_checkpoint_answers_a_study_without_ce_t1(tmp_path):
    case = PatientCase("P1", None, dicom_study(tmp_path / "P1", omit=("CE-T1",)))
    loaded = checkpoint(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3")
    report = diagnose_case(case, loaded)
    assert report["missing_series"] == ["CE-T1"]
    whole = diagnose_case(PatientCase("P2", None, dicom_study(tmp_path / "P2")), loaded)
    assert whole["missing_series"] == []


def test_checkpoint_without_dropout_refuses_a_study_without_ce_t1(tmp_path):
    case = PatientCase("P1", None, dicom_study(tmp_path / "P1", omit=("CE-T1",)))
    with pytest.raises(CheckpointError, match="CE-T1"):
        diagnose_case(case, checkpoint(tmp_path / "n.ckpt"))


@pytest.mark.parametrize("omit", ["CE-T1", "T1"])
def test_training_needs_every_series_and_t1_always(tmp_path, omit):
    case = PatientCase("P1", "warthin", dicom_study(tmp_path / "P1", omit=(omit,)))
    with pytest.raises(MissingSeriesError, match=f"no series matches the {omit} role") as err:
        load_study(case, mode="train" if omit == "CE-T1" else "diagnose", require_gland=False)
    assert err.value.role == omit
