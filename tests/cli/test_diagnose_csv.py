"""``diagnose --csv`` names the series each patient lacked (``missing_series``), and the
predictions reader keeps that column and refuses a value that is no series."""

from __future__ import annotations

import pandas as pd
import pytest

from checkpoints import tiny_checkpoint
from patients import write_patient
from mrparotid.cli.main import main
from mrparotid.errors import InputError
from mrparotid.evaluation.predictions import read_predictions


def dropout_checkpoint(path):
    """A tiny untrained series-dropout model at 32 px, saved as an mrparotid checkpoint."""
    tiny_checkpoint(path, "--augment.series_dropout", "0.3")
    return path


def test_csv_names_the_missing_series(tmp_path):
    lacking = write_patient(tmp_path / "P1", omit=("CE-T1",))
    whole = write_patient(tmp_path / "P2")
    dropout_checkpoint(tmp_path / "d.ckpt")
    out = tmp_path / "s.csv"
    assert main(["diagnose", str(lacking), str(whole), "--checkpoint", str(tmp_path / "d.ckpt"),
                 "--csv", str(out), "-q"]) == 0
    raw = pd.read_csv(out, comment="#", keep_default_na=False, dtype=str)
    assert "missing_series" in raw.columns
    by_patient = raw.groupby("patient_id")["missing_series"].agg(set).to_dict()
    assert by_patient == {"P1": {"CE-T1"}, "P2": {""}}
    assert set(read_predictions(out)["missing_series"]) <= {"CE-T1", ""}


def test_a_missing_series_that_is_no_series_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("patient_id,side,index,true,pred,p_no_tumour,p_pleomorphic_adenoma,p_warthin,"
                    "p_malignant,missing_series\nP1,L,0,malignant,malignant,0.1,0.1,0.1,0.7,CE-T1;T2\n"
                    "P1,L,1,malignant,malignant,0.1,0.1,0.1,0.7,FLAIR\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3: missing_series 'FLAIR'"):
        read_predictions(path)
