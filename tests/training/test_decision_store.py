"""The decision record lives in the checkpoint whose predictions chose it, and nowhere else; a
replaced run leaves no stale predictions behind."""

from __future__ import annotations

import torch

from calibration_data import patients_table
from checkpoints import tiny_checkpoint
from mrparotid.evaluation.predictions import write_predictions
from mrparotid.models.checkpoint import load_checkpoint
from mrparotid.training.decision import choose_decision
from mrparotid.training.fit import clear_run_outputs


def val_csv(tmp_path):
    pats = {f"M{i}": ("malignant", [0.6 + 0.03 * i] * 3) for i in range(12)}
    pats.update({f"B{i}": ("pleomorphic_adenoma", [0.05 + 0.02 * i] * 3) for i in range(12)})
    return write_predictions(patients_table(pats).to_dict("records"), tmp_path / "predictions_val.csv")


def test_the_record_goes_into_the_chosen_checkpoint_and_last_keeps_none(tmp_path, capsys):
    best, last = tmp_path / "best.ckpt", tmp_path / "last.ckpt"
    tiny_checkpoint(best)
    tiny_checkpoint(last, calibration={"temperature": 2.0})      # an old record: must not survive
    meta = torch.load(last, weights_only=True)["mrparotid"]
    meta["decision"] = {"schema": "stale"}
    torch.save({**torch.load(last, weights_only=True), "mrparotid": meta}, last)
    record = choose_decision(tmp_path, {"decision": {}}, best, [last], val_csv=val_csv(tmp_path))
    assert load_checkpoint(best).meta["decision"] == record and record["checkpoint"] == "best.ckpt"
    assert record["validated"] and "sensitivity >= 0.95" in capsys.readouterr().out
    stale = load_checkpoint(last).meta
    assert "decision" not in stale and "calibration" not in stale


def test_overwrite_clears_the_previous_runs_predictions_and_evaluation(tmp_path):
    for name in ("predictions_val.csv", "predictions_test.csv", "summary.json", "metrics.csv"):
        (tmp_path / name).write_text("old")
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "report.md").write_text("old")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.yaml").write_text("kept")
    clear_run_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_ddp_shares_are_put_back_in_split_order():
    from mrparotid.training.patient_val import interleave

    rows = torch.arange(7, dtype=torch.float32).view(-1, 1)
    padded = torch.cat([rows, rows[:1]])                     # 8 = 2 processes x 4, padded from the start
    gathered = torch.stack([padded[0::2], padded[1::2]])     # what each process saw, in order
    assert torch.equal(interleave(gathered, 7), rows)


def test_the_validation_curve_is_indexed_by_epoch_after_a_resume_or_sparse_validation():
    from types import SimpleNamespace

    import numpy as np

    from mrparotid.training.patient_val import PatientValidation

    labels = np.array([3, 3, 0, 1, 1, 0])
    cb = PatientValidation(np.array(["M", "M", "M", "B", "B", "B"]), labels)
    logged = {}
    module = SimpleNamespace(log=lambda k, v, **_: logged.update({k: v}))
    cb._probs = [torch.tensor([[0.1, 0.1, 0.1, 0.7]] * 2 + [[0.9, 0.03, 0.03, 0.04]] + [[0.1, 0.8, 0.05, 0.05]] * 2
                              + [[0.9, 0.03, 0.03, 0.04]])]
    cb.on_validation_epoch_end(SimpleNamespace(sanity_checking=False, world_size=1, current_epoch=3), module)
    assert cb.history[:3] == [None, None, None] and cb.history[3] == logged["val/patient_log_loss"]
