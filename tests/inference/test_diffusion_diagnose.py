"""``diagnose`` with a checkpoint whose channels name the ADC (issue 23): the checkpoint records
its series, a folder without the ADC (nor a DWI to compute it from) is refused on one line naming
it, and one with a DWI is answered with the ADC the model was trained on; a dropout model
answers without it."""

from __future__ import annotations

import numpy as np
import pytest

from checkpoints import tiny_checkpoint
from diffusion_patients import write_diffusion_patient
from patients import write_patient
from mrparotid.cli.main import main
from mrparotid.errors import CheckpointError
from mrparotid.inference.diagnose import diagnose_case, predict_patient
from mrparotid.io.manifest import PatientCase
from mrparotid.models.checkpoint import load_checkpoint

ADC = ("--data.channels", "T1,CE-T1,T2,ADC,mask")


def test_an_adc_checkpoint_records_its_series_and_reads_the_adc(tmp_path):
    _, loaded = tiny_checkpoint(tmp_path / "a.ckpt", *ADC)
    assert loaded.meta["preprocess"]["series"] == ["T1", "CE-T1", "T2", "ADC"]
    folder = write_diffusion_patient(tmp_path / "P001", tumour_adc=1.8, adc_scale=None)
    evidence = predict_patient(PatientCase("P001", None, folder), loaded)
    assert evidence.slices.planes[3] == "ADC" and evidence.x.shape[1] == 5
    tumour = evidence.slices.plane("tumour") > 0
    assert np.median(evidence.x[:, 3][tumour]) / 255 * 3.0 == pytest.approx(1.8, abs=0.1)


def test_a_folder_without_the_adc_is_refused_on_one_line_naming_it(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "a.ckpt", *ADC)
    folder = write_patient(tmp_path / "P002")
    with pytest.raises(CheckpointError, match="ADC"):
        diagnose_case(PatientCase("P002", None, folder), load_checkpoint(tmp_path / "a.ckpt"))
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "a.ckpt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ADC" in err and "P002" in err


def test_a_dropout_adc_checkpoint_answers_without_the_adc_and_names_it(tmp_path):
    _, loaded = tiny_checkpoint(tmp_path / "d.ckpt", *ADC, "--augment.series_dropout", "0.3")
    assert loaded.series_flags == ("T1", "CE-T1", "T2", "ADC")
    report = diagnose_case(PatientCase("P003", None, write_patient(tmp_path / "P003")), loaded)
    assert report["missing_series"] == ["ADC"]
