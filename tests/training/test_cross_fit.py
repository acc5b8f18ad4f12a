"""``decision.cross_fit: K``: every training patient gets an out-of-fold validation prediction
from a model that never saw it, the decision is chosen on them, and the model trains on all."""

from __future__ import annotations

import json

import pytest

from mrparotid.config import load_config
from mrparotid.evaluation.predictions import read_predictions
from mrparotid.models.checkpoint import load_checkpoint
from mrparotid.training.fit import fit
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
TINY = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--optim.ema_decay", "0"]


@pytest.mark.slow
def test_cross_fit_predicts_every_training_patient_out_of_fold(tmp_path):
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(8)]
    manifest = write_cohort(tmp_path, rows)
    splits = {"train": [f"P{i:02d}" for i in range(6)], "val": [], "test": ["P06", "P07"]}
    run = tmp_path / "run"
    summary = fit(load_config(None, [*TINY, "--decision.cross_fit", "2"]), manifest=manifest, out_dir=run,
                  splits=splits, progress=False)
    val = read_predictions(run / "predictions_val.csv")
    assert sorted(set(val["patient_id"])) == splits["train"]
    for fold in sorted((run / "cross_fit").iterdir()):
        trained = set(json.loads((fold / "split.json").read_text())["splits"]["train"])
        predicted = set(read_predictions(fold / "predictions_test.csv")["patient_id"])
        assert predicted and not trained & predicted                 # never a patient it trained on
    assert summary["splits"]["train"] == splits["train"] and summary["splits"]["val"] == []
    record = load_checkpoint(run / "checkpoints" / "last.ckpt").meta["decision"]
    assert "out-of-fold predictions of 2 cross-fit models" in record["source"]
    assert not set(val["patient_id"]) & set(splits["test"])
