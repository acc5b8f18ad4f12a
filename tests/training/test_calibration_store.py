"""The calibration record goes into the run's checkpoints and comes back on load; a bad
``refer.target_sensitivity`` is a one-line config error."""

from __future__ import annotations

import pytest
import torch

from calibration_data import five_malignant
from mrparotid.cli.main import main
from mrparotid.config import load_config
from mrparotid.errors import ConfigError
from mrparotid.evaluation.predictions import write_predictions
from mrparotid.inference.refer import calibration_of
from mrparotid.models.checkpoint import checkpoint_meta, load_checkpoint
from mrparotid.models.factory import build_classifier
from mrparotid.training.calibration import calibrate_run, store_calibration


def tiny_ckpt(path):
    cfg = load_config(None, ["--model.name", "tiny_resnet", "--data.image_size", "32"])
    torch.manual_seed(0)
    model = build_classifier(cfg["model"], len(cfg["data"]["channels"]), pretrained=False)
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "epoch": 3, "mrparotid": checkpoint_meta(cfg, synthetic=True)}, path)
    return cfg


def test_store_round_trip_keeps_everything_else(tmp_path):
    path = tmp_path / "best.ckpt"
    tiny_ckpt(path)
    before = load_checkpoint(path)
    assert calibration_of(before.meta)["temperature"] == 1.0          # none stored yet
    record = {"temperature": 1.7, "aggregation": "noisy_or", "threshold": 0.5, "refer_band": [0.2, 0.5],
              "refer_note": "n", "val_log_loss": {"mean": 0.4, "noisy_or": 0.3}}
    store_calibration(path, record)
    after = load_checkpoint(path)
    assert after.meta["calibration"] == record
    assert {k: v for k, v in after.meta.items() if k != "calibration"} == before.meta
    assert torch.load(path, weights_only=True)["epoch"] == 3
    for a, b in zip(before.model.state_dict().values(), after.model.state_dict().values()):
        assert torch.equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]    # no temporary left


def test_calibrate_run_fits_on_validation_and_stores_in_each_checkpoint(tmp_path, capsys):
    cfg = tiny_ckpt(tmp_path / "best.ckpt")
    tiny_ckpt(tmp_path / "last.ckpt")
    write_predictions(five_malignant(), tmp_path / "predictions_val.csv", synthetic=True)
    record = calibrate_run(tmp_path, cfg, [tmp_path / "best.ckpt", tmp_path / "last.ckpt", tmp_path / "best.ckpt"])
    assert record["n_val_patients"] == 10 and record["refer_band"] is not None
    for name in ("best.ckpt", "last.ckpt"):
        assert load_checkpoint(tmp_path / name).meta["calibration"] == record
    assert "calibration: temperature" in capsys.readouterr().out


def test_calibrate_run_without_validation_is_uncalibrated(tmp_path, capsys):
    cfg = tiny_ckpt(tmp_path / "last.ckpt")
    record = calibrate_run(tmp_path, cfg, [tmp_path / "last.ckpt"])
    assert record["temperature"] == 1.0 and record["refer_band"] is None
    assert load_checkpoint(tmp_path / "last.ckpt").meta["calibration"]["refer_band"] is None
    assert capsys.readouterr().err.count("WARNING") == 1


@pytest.mark.parametrize("value", ["1.5", "0", "1", "-0.2"])
def test_target_sensitivity_outside_0_1_is_a_config_error(value, tmp_path, capsys):
    with pytest.raises(ConfigError):
        load_config(None, ["--refer.target_sensitivity", value])
    assert main(["fit", "--out", str(tmp_path / "r"), "--refer.target_sensitivity", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refer.target_sensitivity" in err[0]


def test_a_stale_validation_file_is_not_this_runs(tmp_path, capsys):
    cfg = tiny_ckpt(tmp_path / "last.ckpt")
    write_predictions(five_malignant(), tmp_path / "predictions_val.csv")
    assert calibrate_run(tmp_path, cfg, [tmp_path / "last.ckpt"], has_val=False)["temperature"] == 1.0
