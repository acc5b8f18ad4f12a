"""``diagnose`` on a patient lacking a series: answered (and the series named) by a checkpoint
trained with series dropout, refused on one line by one trained without it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from checkpoints import tiny_checkpoint
from patients import write_patient
from mrparotid.cli.main import main
from mrparotid.errors import CheckpointError, InputError
from mrparotid.inference.diagnose import diagnose_case, format_report, predict_patient
from mrparotid.inference.predict import predict_probs
from mrparotid.io.manifest import PatientCase
from mrparotid.models.checkpoint import load_checkpoint


def checkpoint(path, *overrides: str):
    """A tiny untrained model at 32 px saved as an mrparotid checkpoint."""
    tiny_checkpoint(path, *overrides)
    return path


def test_dropout_checkpoint_answers_without_ce_t1(tmp_path):
    folder = write_patient(tmp_path / "P001", omit=("CE-T1",))
    loaded = load_checkpoint(checkpoint(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3"))
    case = PatientCase("P001", None, folder)
    evidence = predict_patient(case, loaded)
    assert evidence.present.tolist() == [True, False, True]     # T1, CE-T1, T2: what the model sees
    x = evidence.x
    assert (x[:, 1] == 0).all() and x[:, 0].any() and x[:, 2].any()
    np.testing.assert_allclose(evidence.probs, predict_probs(loaded.model, x, present=evidence.present))
    report = diagnose_case(case, loaded)
    assert report["missing_series"] == ["CE-T1"] and report["model"]["series_dropout"] == 0.3
    assert "missing series: CE-T1" in format_report(report)


def test_every_series_present_names_none(tmp_path):
    folder = write_patient(tmp_path / "P002")
    loaded = load_checkpoint(checkpoint(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3"))
    assert predict_patient(PatientCase("P002", None, folder), loaded).present.tolist() == [True] * 3
    report = diagnose_case(PatientCase("P002", None, folder), loaded)
    assert report["missing_series"] == [] and "missing series" not in format_report(report)


def test_cli_json_names_the_missing_series(tmp_path, capsys):
    folder = write_patient(tmp_path / "P003", omit=("CE-T1",))
    ckpt = checkpoint(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3")
    out = tmp_path / "r.json"
    assert main(["diagnose", str(folder), "--checkpoint", str(ckpt), "--json", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["missing_series"] == ["CE-T1"]
    assert "missing series: CE-T1" in capsys.readouterr().out


def test_checkpoint_without_dropout_refuses_on_one_line(tmp_path, capsys):
    folder = write_patient(tmp_path / "P004", omit=("CE-T1",))
    ckpt = checkpoint(tmp_path / "p.ckpt")
    with pytest.raises(CheckpointError, match="CE-T1"):
        diagnose_case(PatientCase("P004", None, folder), load_checkpoint(ckpt))
    assert main(["diagnose", str(folder), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CE-T1" in err and "series_dropout" in err


def test_none_of_the_model_series_is_one_line_naming_them(tmp_path, capsys):
    folder = write_patient(tmp_path / "P005", omit=("CE-T1", "T2"))
    ckpt = checkpoint(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3",
                      "--data.channels", "[CE-T1,T2,mask]")
    with pytest.raises(InputError, match="CE-T1, T2"):
        diagnose_case(PatientCase("P005", None, folder), load_checkpoint(ckpt))
    assert main(["diagnose", str(folder), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CE-T1, T2" in err and "P005" in err


def test_t1_is_needed_even_with_dropout(tmp_path):
    folder = write_patient(tmp_path / "P006", omit=("T1",))
    loaded = load_checkpoint(checkpoint(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3"))
    with pytest.raises(InputError, match="reference grid") as exc:
        diagnose_case(PatientCase("P006", None, folder), loaded)
    assert not isinstance(exc.value, CheckpointError) and "T1" in str(exc.value)
