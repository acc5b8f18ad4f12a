"""``segment fit --split-from RUN_DIR`` trains on a classifier run's saved split (read, never
recomputed) and records it in split.json and the checkpoint; without it the split is
``cohort_split`` under the data keys, recorded the same way. The summary names what chose the
checkpoint and reports found / false alarm apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from patients import write_cohort

from mrparotid.cli.main import main
from mrparotid.data.splits import cohort_split, save_split
from mrparotid.io.manifest import read_manifest
from mrparotid.segmentation.config import load_segment_config

TINY = ["--trainer.max_epochs", "2", "--data.image_size", "32", "--data.spacing_mm", "3.0",
        "--model.channels", "[4,8]", "--model.strides", "[2]", "--model.num_res_units", "0",
        "--data.batch_size", "8", "--trainer.accelerator", "cpu", "--trainer.precision", "32-true"]

#: Not what cohort_split draws for these ids at the default keys (checked below).
CLASSIFIER_SPLIT = {"train": ["P0", "P1", "P2"], "val": ["P3"], "test": ["P4", "P5"]}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path]:
    """(root, manifest) of six patients without a split column, and a classifier run folder
    ``root/cls`` whose split.json holds :data:`CLASSIFIER_SPLIT`."""
    root = tmp_path_factory.mktemp("split_from")
    rows = [(f"P{i}", "warthin", {"tumour_side": "LR"[i % 2]}) for i in range(6)]
    manifest = write_cohort(root, rows)
    (root / "cls").mkdir()
    save_split(root / "cls", CLASSIFIER_SPLIT, read_manifest(manifest).cases)
    return root, manifest


def _meta_split(run: Path) -> dict:
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    return ckpt["mrparotid"]["split"]["splits"]


def test_split_from_takes_the_classifier_run_split(cohort, capsys):
    root, manifest = cohort
    drawn = cohort_split(read_manifest(manifest).cases, load_segment_config()["data"])
    assert drawn != CLASSIFIER_SPLIT
    run = root / "seg"
    assert main(["segment", "fit", "-m", str(manifest), "--out", str(run), "--split-from",
                 str(root / "cls"), "-q", *TINY]) == 0
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["splits"] == CLASSIFIER_SPLIT and str(root / "cls") in summary["split"]
    assert json.loads((run / "split.json").read_text(encoding="utf-8"))["splits"] == CLASSIFIER_SPLIT
    assert _meta_split(run) == CLASSIFIER_SPLIT
    assert summary["model_checkpoint"]["figure"] == "val/dice"
    assert "tumour-free slices" in summary["model_checkpoint"]["definition"]
    assert 0.0 <= summary["model_checkpoint"]["value"] <= 1.0
    det = summary["test"]["detection"]
    assert det["tumour_sides"] == 2 and det["found"] + det["missed"] == 2 and det["sides"] == 4
    for key in ("tumour_hd95_missed", "tumour_hd95_false_alarms", "tumour_hd95_n"):
        assert isinstance(summary["test"][key], int)
    out = capsys.readouterr().out
    assert "tumour sides found" in out and "false alarms on" in out
    assert "yaml" not in out and "split_from: " in (run / "config.yaml").read_text(encoding="utf-8")


def test_without_split_from_the_split_is_cohort_split_and_recorded(cohort):
    root, manifest = cohort
    run = root / "seg-own"
    assert main(["segment", "fit", "-m", str(manifest), "--out", str(run), "-q", *TINY,
                 "--data.test_fraction", "0.3", "--data.val_fraction", "0.3"]) == 0
    cfg = load_segment_config(None, ["--data.test_fraction", "0.3", "--data.val_fraction", "0.3"])
    drawn = cohort_split(read_manifest(manifest).cases, cfg["data"])
    assert json.loads((run / "split.json").read_text(encoding="utf-8"))["splits"] == drawn
    assert _meta_split(run) == drawn
    assert "cohort_split" in json.loads((run / "summary.json").read_text(encoding="utf-8"))["split"]


def test_patients_the_classifier_split_does_not_name_are_left_out(cohort, tmp_path):
    root, manifest = cohort
    cls = tmp_path / "cls5"
    cls.mkdir()
    five = {"train": ["P0", "P1", "P2"], "val": ["P3"], "test": ["P4"]}
    save_split(cls, five, read_manifest(manifest).cases)
    run = tmp_path / "seg"
    assert main(["segment", "fit", "-m", str(manifest), "--out", str(run), "--split-from", str(cls),
                 "-q", *TINY]) == 0
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["splits"] == five and "P5" in summary["split"]


def test_split_from_refusals_are_one_line(cohort, tmp_path, capsys):
    root, manifest = cohort
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "split.json").write_text('{"splits": {"train": ["P0"], "test": ["P0"]}}', encoding="utf-8")
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "split.json").write_text(json.dumps({"splits": CLASSIFIER_SPLIT,
                                                    "patient_hashes": {"P4": "0000"}}), encoding="utf-8")
    base = ["segment", "fit", "-m", str(manifest), "-q", *TINY]
    for argv in (base + ["--out", str(tmp_path / "a"), "--split-from", str(tmp_path / "nowhere")],
                 base + ["--out", str(tmp_path / "b"), "--split-from", str(bad)],
                 base + ["--out", str(tmp_path / "c"), "--split-from", str(changed)],
                 ["segment", "fit", "--resume", str(root / "seg"), "--split-from", str(root / "cls")],
                 ["segment", str(root / "patients" / "P0"), "--out", str(tmp_path / "d"),
                  "--split-from", str(root / "cls")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("mrparotid: error:"), err
