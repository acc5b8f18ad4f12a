"""End to end on a tiny SYNTHETIC phantom cohort at reduced size: fit → diagnose → ablate,
DDP with two CPU processes, and the bad-input cases of the train/diagnose verbs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mrparotid.cli.main import main
from mrparotid.constants import CLASSES
from mrparotid.data.phantom import make_cohort

pytestmark = pytest.mark.slow

SMALL = ["--data.image_size", "32", "--data.val_fraction", "0.2", "--data.batch_size", "16", "--trainer.accelerator", "cpu",
         "--trainer.log_every_n_steps", "1"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    manifest = make_cohort(root, 9, seed=3, progress=False)
    return manifest


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    code = main(["fit", "-m", str(cohort), "--out", str(out), "-q", "--trainer.max_epochs", "2",
                 "--data.test_fraction", "0.34", *SMALL])
    assert code == 0
    return out


def test_fit_writes_run_folder(run):
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["synthetic"] is True
    assert summary["test"]["slices"] > 0
    assert 0.0 <= summary["test"]["slice_accuracy"] <= 1.0
    splits = summary["splits"]
    ids = [p for s in splits.values() for p in s]
    assert len(ids) == len(set(ids)) == 9                      # no patient in two splits
    saved = json.loads((run / "split.json").read_text(encoding="utf-8"))   # the split travels
    assert saved["splits"] == splits and len(saved["manifest_rows_hash"]) == 16
    meta = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["mrparotid"]
    assert meta["split"] == saved
    lines = (run / "predictions_test.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# SYNTHETIC")                 # the flag travels with the file
    header = lines[1].split(",")
    assert header == ["patient_id", "side", "index", "true", "pred"] + [f"p_{c}" for c in CLASSES] + ["centre"]
    assert (run / "evaluation" / "report.md").is_file()


def test_checkpoint_loads_weights_only(run):
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["mrparotid"]["channels"] == ["T1", "CE-T1", "T2", "mask"]


def test_diagnose_held_out_patient(run, cohort, tmp_path, capsys):
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    pid = summary["splits"]["test"][0]
    out = tmp_path / "report.json"
    code = main(["diagnose", str(cohort.parent / "patients" / pid), "--checkpoint",
                 str(run / "checkpoints" / "best.ckpt"), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"patient {pid}" in printed and "SYNTHETIC" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report) >= {"patient_id", "diagnosis", "counts", "slices", "rule", "model"}
    assert report["patient_id"] == pid
    assert report["diagnosis"] in {"pleomorphic_adenoma", "warthin", "malignant", "no_tumour_found"}
    assert set(report["counts"]) == set(CLASSES)
    assert sum(report["counts"].values()) == len(report["slices"]) > 0
    s = report["slices"][0]
    assert s["side"] in ("L", "R") and isinstance(s["index"], int) and isinstance(s["z_mm"], float)
    assert s["pred"] in CLASSES and abs(sum(s["probs"].values()) - 1) < 1e-3
    assert set(report["model"]) >= {"checkpoint", "channels", "config_hash"}
    assert report["masks"] == {"gland": "given", "tumour": "given"}
    assert "malignant_min_slices" in report["rule"]
    assert any(s.get("tumour_in_mask") for s in report["slices"])   # the phantom has a tumour mask


def test_diagnose_without_tumour_mask(run, cohort, tmp_path):
    pid = json.loads((run / "summary.json").read_text(encoding="utf-8"))["splits"]["test"][0]
    patient = tmp_path / pid
    shutil.copytree(cohort.parent / "patients" / pid, patient)
    for f in patient.iterdir():
        if f.name.split(".")[0].lower() in ("tumour", "tumor", "lesion"):
            f.unlink()
    out = tmp_path / "r.json"
    # without a tumour mask and without a segmenter only the screening view can run
    assert main(["diagnose", str(patient), "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
                 "--json", str(out), "-q", "--all-slices"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["view"] == "screening"
    assert report["slices"] and all("true" not in s for s in report["slices"])
    assert all("tumour_in_mask" not in s for s in report["slices"])


def test_diagnose_csv_feeds_evaluate(run, cohort, tmp_path):
    csv_path = tmp_path / "slices.csv"
    assert main(["diagnose", str(cohort), "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
                 "--csv", str(csv_path), "-q"]) == 0
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# SYNTHETIC")
    rows = list(csv.DictReader(lines[1:]))
    assert {r["patient_id"] for r in rows} == {f"SYN{i:03d}" for i in range(1, 10)}
    assert main(["evaluate", "--predictions", str(csv_path), "--out", str(tmp_path / "ev")]) == 0
    assert "SYNTHETIC" in (tmp_path / "ev" / "report.md").read_text(encoding="utf-8")


def test_ablate_two_channels(cohort, tmp_path):
    out = tmp_path / "abl"
    code = main(["ablate", "--channels", "T1,T2", "-m", str(cohort), "--out", str(out), "-q",
                 "--trainer.max_epochs", "1", "--data.test_fraction", "0.34", *SMALL])
    assert code == 0
    ckpt = torch.load(out / "T1+T2" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["mrparotid"]["channels"] == ["T1", "T2"]
    assert ckpt["state_dict"]["model.conv1.weight"].shape[1] == 2
    assert (out / "T1+T2" / "predictions_test.csv").is_file()


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


def test_bad_checkpoints(run, cohort, tmp_path, capsys):
    patient = str(cohort.parent / "patients" / "SYN001")
    assert main(["diagnose", patient, "--checkpoint", str(tmp_path / "nope.ckpt")]) == 2
    assert "checkpoint not found" in _one_error_line(capsys)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    assert main(["diagnose", patient, "--checkpoint", str(foreign)]) == 2
    assert "not an mrparotid checkpoint" in _one_error_line(capsys)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    assert main(["diagnose", patient, "--checkpoint", str(junk)]) == 2
    assert "cannot load" in _one_error_line(capsys)


def test_patient_lacks_checkpoint_channel(run, cohort, tmp_path, capsys):
    patient = tmp_path / "P"
    shutil.copytree(cohort.parent / "patients" / "SYN002", patient)
    for f in patient.iterdir():
        if f.name.split(".")[0].upper() in ("T2", "T2W"):
            (shutil.rmtree if f.is_dir() else os.remove)(f)
    assert main(["diagnose", str(patient), "--checkpoint", str(run / "checkpoints" / "best.ckpt")]) == 2
    line = _one_error_line(capsys)
    assert "patient P" in line and "T2" in line and "checkpoint" in line


def test_empty_patient_folder(run, tmp_path, capsys):
    (tmp_path / "EMPTY").mkdir()
    assert main(["diagnose", str(tmp_path / "EMPTY"), "--checkpoint",
                 str(run / "checkpoints" / "best.ckpt")]) == 2
    assert "empty" in _one_error_line(capsys)


def test_ablate_without_test_patients(cohort, tmp_path, capsys):
    rows = cohort.read_text(encoding="utf-8").splitlines()
    text = "\n".join(r if r.startswith(("#", "patient_id")) else r.replace(",,", ",train,", 1)
                     for r in rows)
    manifest = cohort.parent / "all_train.csv"
    manifest.write_text(text + "\n", encoding="utf-8")
    assert main(["ablate", "--channels", "T1", "-m", str(manifest), "--out", str(tmp_path / "a"), "-q",
                 *SMALL]) == 2
    assert "no test patients" in _one_error_line(capsys)


def test_ddp_two_cpu_processes(cohort, tmp_path):
    """configs/ddp.yaml with 2 CPU processes (gloo) for one epoch, as a user would run it."""
    out = tmp_path / "ddp"
    env = dict(os.environ, MRPAROTID_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "mrparotid", "fit", "--config", "ddp", "-m", str(cohort),
                           "--out", str(out), "-q", "--trainer.devices", "2",
                           "--trainer.max_epochs", "1", "--data.test_fraction", "0.34", *SMALL],
                          capture_output=True, text=True, encoding="utf-8", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = (out / "config.yaml").read_text(encoding="utf-8")
    assert "strategy: ddp" in cfg
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["test"]["slices"] > 0


def test_cross_validation_pools_out_of_fold_predictions(cohort, tmp_path):
    out = tmp_path / "cv"
    assert main(["fit", "--cv", "3", "-m", str(cohort), "--out", str(out), "-q",
                 "--trainer.max_epochs", "1", *SMALL]) == 0
    summary = json.loads((out / "cv_summary.json").read_text(encoding="utf-8"))
    assert summary["k"] == 3 and len(summary["folds"]) == 3
    rows = list(csv.DictReader(line for line in (out / "predictions_oof.csv").open(encoding="utf-8")
                               if not line.startswith("#")))
    assert {r["patient_id"] for r in rows} == {f"SYN{i:03d}" for i in range(1, 10)}  # each tested once
    assert (out / "pooled" / "report.md").is_file()
    assert "mean" in json.dumps(summary["fold_summary"])
    from mrparotid.decision.record import DecisionRecord
    from mrparotid.decision.score import answer_table
    from mrparotid.evaluation.metrics import patient_slices
    from mrparotid.evaluation.predictions import read_predictions
    from mrparotid.models.checkpoint import load_checkpoint

    own = {}
    for fold in (out / f"fold{i}" for i in (1, 2, 3)):       # no patient's answer chose its own cut
        tested = set(json.loads((fold / "split.json").read_text())["splits"]["test"])
        record = DecisionRecord.from_dict(load_checkpoint(fold / "checkpoints" / "best.ckpt").meta["decision"])
        assert tested and not tested & set(record.val_patients)
        own.update({pid: record for pid in tested})
    pooled = read_predictions(out / "predictions_oof.csv")
    want = answer_table(patient_slices(pooled)[0], own).set_index("patient_id")["answer"]
    got = {r["patient_id"]: r["answer"] for r in csv.DictReader((out / "pooled" / "patients_answers.csv").open())}
    assert got == want.to_dict()


def test_fit_without_manifest_uses_the_embedded_phantom(tmp_path, monkeypatch):
    monkeypatch.setenv("MRPAROTID_HOME", str(tmp_path / "home"))
    out = tmp_path / "r"
    assert main(["fit", "--out", str(out), "-q", "--data.phantom_patients", "6",
                 "--trainer.max_epochs", "1", "--data.test_fraction", "0.34", *SMALL]) == 0
    manifest = tmp_path / "home" / "phantom-v2-6" / "manifest.csv"
    assert manifest.is_file() and "SYNTHETIC" in manifest.read_text(encoding="utf-8")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["synthetic"] is True and Path(summary["manifest"]) == manifest


def test_evaluate_checkpoint_on_a_manifest_split(run, cohort, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints" / "best.ckpt"), "-m", str(cohort),
                 "--split", "test", "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "slice accuracy" in printed
    for name in ("report.md", "metrics.json", "confusion.png", "roc.png", "patients.csv"):
        assert (out / name).is_file()
    # the same checkpoint on the same split gives the same slice calls as fit's own predictions
    ours = (out / "predictions_test.csv").read_text(encoding="utf-8")
    assert ours == (run / "predictions_test.csv").read_text(encoding="utf-8")


def test_fit_refuses_to_replace_a_run_unless_asked(cohort, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "summary.json").write_text("{}", encoding="utf-8")
    assert main(["fit", "-m", str(cohort), "--out", str(out), "-q", *SMALL]) == 2
    assert "already holds a run" in _one_error_line(capsys)
    assert (out / "summary.json").read_text(encoding="utf-8") == "{}"        # nothing lost
    assert main(["fit", "-m", str(cohort), "--out", str(out), "-q", "--overwrite",
                 "--trainer.max_epochs", "1", "--data.test_fraction", "0.34", *SMALL]) == 0
    assert (out / "checkpoints" / "last.ckpt").is_file()
