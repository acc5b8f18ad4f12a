"""The clinic path scored: Table 5 with manifest vs automatic masks, changed diagnoses, Dice and
HD95 (mm), side-level tumour detection; on hand-made arrays and a stand-in segmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from checkpoints import split_cohort, tiny_checkpoint
from patients import patient_arrays, write_cohort
from segmenters import FakeSegmenter
from mrparotid.cli.main import main
from mrparotid.evaluation import clinic
from mrparotid.evaluation.clinic import (NO_GLAND, detection_summary, mean_ci, patient_table,
                                         score_clinic, score_patient, write_clinic)
from mrparotid.evaluation.stats import proportion_ci
from mrparotid.io.manifest import PatientCase, read_manifest


def test_patient_table_counts_and_misses():
    truth = {"a": "pleomorphic_adenoma", "b": "warthin", "c": "malignant", "d": "malignant",
             "e": "warthin"}
    called = {"a": "pleomorphic_adenoma", "b": "pleomorphic_adenoma", "c": "malignant",
              "d": "no_tumour_found", "e": NO_GLAND}
    t = patient_table(called, truth)
    assert t["table5"] == {"pleomorphic_adenoma": {"patients": 1, "correct": 1},
                           "warthin": {"patients": 2, "correct": 0},
                           "benign": {"patients": 3, "correct": 2},
                           "malignant": {"patients": 2, "correct": 1}}
    assert (t["accuracy"]["k"], t["accuracy"]["n"]) == (2, 5)
    assert t["misdiagnosed"] == ["b", "d", "e"]
    bvm = t["benign_vs_malignant"]
    assert (bvm["sensitivity"]["k"], bvm["sensitivity"]["n"]) == (1, 2)       # d is a miss
    assert (bvm["specificity"]["k"], bvm["specificity"]["n"]) == (2, 3)       # e is a miss


def _side(tumour: bool, found: bool, false_alarm: bool = False) -> dict:
    return {"tumour": tumour, "auto": found or false_alarm, "found": found, "false_alarm": false_alarm}


def test_detection_counts_sides_with_wilson_intervals():
    rows = [{"patient_id": f"P{i}", "sides": {"L": _side(True, i != 0), "R": _side(False, False, i == 1)}}
            for i in range(10)]
    det = detection_summary(rows)
    assert det["sides"] == 20 and det["missed"] == ["P0 L"] and det["false_alarms"] == ["P1 R"]
    assert (det["false_alarm_rate"]["k"], det["false_alarm_rate"]["n"]) == (1, 20)
    sens = det["sensitivity"]
    assert (sens["k"], sens["n"]) == (9, 10)
    assert (sens["estimate"], sens["lo"], sens["hi"]) == pytest.approx(proportion_ci(9, 10, method="wilson"))
    assert (det["specificity"]["k"], det["accuracy"]["k"], det["accuracy"]["n"]) == (9, 18, 20)


def test_mean_ci_leaves_out_undefined_values():
    out = mean_ci(["a", "b", "c", "d"], [0.8, None, 1.0, float("nan")])
    assert out["n"] == 2 and out["undefined"] == 2 and out["mean"] == pytest.approx(0.9)
    assert 0.8 <= out["lo"] <= out["hi"] <= 1.0
    assert mean_ci(["a"], [None])["mean"] is None


def test_score_patient_dice_and_hd95_in_mm(tmp_path):
    arrays = patient_arrays(tumour_side="L")               # tumour on slices 4..6, 3 mm apart
    manifest = write_cohort(tmp_path, [("P1", "warthin", {"arrays": arrays})])
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    shifted = np.roll(arrays["tumour"], 1, axis=0)         # one slice up: slices 5..7
    row = score_patient(read_manifest(manifest).cases[0], loaded,
                        FakeSegmenter(arrays["gland"], shifted))
    assert row["gland_dice"] == 1.0 and row["gland_hd95_mm"] == 0.0
    assert row["tumour_dice"] == pytest.approx(2 / 3)       # 2 of 3 slices overlap
    assert row["tumour_hd95_mm"] == pytest.approx(3.0)     # the z spacing, not 1 voxel or 2 mm
    assert row["sides"] == {"L": {"tumour": True, "auto": True, "found": True, "false_alarm": False},
                            "R": {"tumour": False, "auto": False, "found": False, "false_alarm": False}}
    assert row["given_slices"] == row["auto_slices"] == 3 + 8


def _by_patient(study):
    """Exact masks for A1, no gland for A2, no tumour for A3."""
    arrays = patient_arrays(tumour_side="L")
    if study.patient_id == "A2":
        return np.zeros_like(arrays["gland"]), np.zeros_like(arrays["tumour"])
    if study.patient_id == "A3":
        return study.gland, np.zeros_like(study.tumour)
    return study.gland, study.tumour


def test_score_clinic_reports_both_settings_and_the_changes(tmp_path):
    manifest = split_cohort(tmp_path)
    result = score_clinic(tmp_path / "m.ckpt", FakeSegmenter(fn=_by_patient), manifest, progress=False)
    assert result["n_patients"] == 3 and result["synthetic"]
    rows = {r["patient_id"]: r for r in result["patients"]}
    assert rows["A1"]["auto_diagnosis"] == rows["A1"]["given_diagnosis"]      # the same masks
    assert rows["A2"]["auto_diagnosis"] == NO_GLAND and rows["A2"]["gland_dice"] == 0.0
    assert rows["A3"]["auto_diagnosis"] == "no_tumour_found" and rows["A3"]["tumour_hd95_mm"] is None
    changed = {c["patient_id"] for c in result["changed"]}
    assert "A1" not in changed and "A2" in changed
    assert ("A3" in changed) == (rows["A3"]["given_diagnosis"] != "no_tumour_found")
    assert result["settings"]["auto"]["accuracy"]["k"] <= 1
    det = result["detection"]
    assert (det["sensitivity"]["k"], det["sensitivity"]["n"]) == (1, 3)       # A1 only
    assert (det["specificity"]["k"], det["specificity"]["n"]) == (3, 3)
    seg = result["segmentation"]
    assert seg["tumour_hd95_mm"]["undefined"] == 2 and seg["gland_dice"]["n"] == 3
    paths = write_clinic(result, tmp_path / "eval")
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("> **SYNTHETIC") and "Table 5" in md and "A2" in md and "no gland found" in md
    saved = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert saved["detection"]["sides"] == 6
    assert paths["csv"].read_text(encoding="utf-8").startswith("# SYNTHETIC")


def test_evaluate_segmenter_needs_a_checkpoint(tmp_path, capfd):
    assert main(["evaluate", "--predictions", str(tmp_path / "p.csv"), "--segmenter",
                 str(tmp_path / "s.ckpt"), "--out", str(tmp_path / "e")]) == 2
    assert "--checkpoint" in capfd.readouterr().err


class _WithSplit(FakeSegmenter):
    """A stand-in segmenter trained on the classifier's own split (split_cohort: A1-A3 test)."""

    train = ("T1",)

    def loaded(self):
        from types import SimpleNamespace

        split = {"splits": {"train": list(self.train), "val": [], "test": ["A1", "A2", "A3"]}}
        return SimpleNamespace(synthetic=True, series=("T1", "CE-T1", "T2"), meta={"split": split})


def test_evaluate_with_segmenter_writes_the_clinic_section(tmp_path, monkeypatch, capsys):
    from mrparotid.cli import verbs

    manifest = split_cohort(tmp_path)
    monkeypatch.setattr(verbs, "_segmenter", lambda path: _WithSplit(fn=_by_patient))
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "m.ckpt"), "--manifest", str(manifest),
                 "--segmenter", "seg.ckpt", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "clinic path (3 test patients)" in text and "side-level tumour detection" in text
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Clinic path" in report and (out / "clinic.md").is_file()
    given = json.loads((out / "clinic.json").read_text(encoding="utf-8"))["patients"]
    paper = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["patient"]["rule"]
    # the paper column of the clinic section is the evaluation's own (the cache's crops)
    wrong = {d["patient_id"] for d in paper["misdiagnosed"]}
    assert {r["patient_id"] for r in given if r["given_diagnosis"] != r["true"]} == wrong
    assert clinic.SETTINGS["auto"].startswith("automatic")


def test_a_patient_case_is_enough(tmp_path):
    arrays = patient_arrays()
    manifest = write_cohort(tmp_path, [("Q", "malignant", {"arrays": arrays})])
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    case = read_manifest(manifest).cases[0]
    assert isinstance(case, PatientCase)
    row = score_patient(case, loaded, FakeSegmenter(arrays["gland"], arrays["tumour"]))
    assert row["tumour_dice"] == 1.0 and row["auto_diagnosis"] == row["given_diagnosis"]


def test_a_segmenter_trained_on_the_test_patients_is_flagged(tmp_path):
    from types import SimpleNamespace

    manifest = split_cohort(tmp_path)

    class Leaky(FakeSegmenter):
        def loaded(self):
            return SimpleNamespace(synthetic=True, meta={"split": {"splits": {"train": ["A1", "T1"]}}})

    result = score_clinic(tmp_path / "m.ckpt", Leaky(fn=_by_patient), manifest, progress=False)
    assert len(result["warnings"]) == 1 and "(A1)" in result["warnings"][0]
    assert "> **Warning:** the segmenter was trained on 1 of these patients" in \
        write_clinic(result, tmp_path / "e")["md"].read_text(encoding="utf-8")


def test_found_needs_overlap_and_a_misplaced_tumour_is_a_false_alarm(tmp_path):
    """The automatic tumour lies in the right gland (the true side) but not on the true tumour."""
    arrays = patient_arrays(tumour_side="R")
    manifest = write_cohort(tmp_path, [("P1", "warthin", {"arrays": arrays})])
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    misplaced = np.zeros_like(arrays["tumour"])
    misplaced[8:10, 13:16, 7:10] = 1                       # right gland, slices 8-9: no overlap
    row = score_patient(read_manifest(manifest).cases[0], loaded, FakeSegmenter(arrays["gland"], misplaced))
    assert row["sides"]["R"]["tumour"] and not row["sides"]["R"]["found"]
    assert row["sides"]["R"]["false_alarm"]
    det = clinic.detection_summary([row])
    assert (det["sensitivity"]["k"], det["sensitivity"]["n"]) == (0, 1)
    assert det["missed"] == ["P1 R"] and det["false_alarms"] == ["P1 R"]
    assert (det["false_alarm_rate"]["k"], det["accuracy"]["k"]) == (1, 1)     # the clear left side
    from mrparotid.evaluation.clinic_report import clinic_lines, clinic_markdown

    summary = clinic.summarise([row])
    assert "| false alarm (sides with one) | 0.500" in clinic_markdown(summary, banner=False)
    assert "found 0/1 tumour sides, false alarms on 1 of 2 sides" in "\n".join(clinic_lines(summary))


def test_evaluate_refuses_a_segmenter_that_trained_on_the_test_patients(tmp_path, monkeypatch, capsys):
    from mrparotid.cli import verbs

    class Leaky(_WithSplit):
        train = ("T1", "A2")

    manifest = split_cohort(tmp_path)
    monkeypatch.setattr(verbs, "_segmenter", lambda path: Leaky(fn=_by_patient))
    argv = ["evaluate", "--checkpoint", str(tmp_path / "m.ckpt"), "--manifest", str(manifest),
            "--segmenter", "seg.ckpt", "--out", str(tmp_path / "eval"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 of the classifier's 3 test patients (A2" in err
    assert "--allow-overlap" in err and not (tmp_path / "eval" / "report.md").exists()
    assert main(argv + ["--allow-overlap"]) == 0
    assert "WARNING: the segmenter trained or validated on 1" in capsys.readouterr().err


def test_the_automatic_answer_is_refer_where_diagnose_would_not_trust_the_segmenter(tmp_path, monkeypatch):
    """The clinic scores the answer ``diagnose`` gives: masks from a segmenter below its Dice
    floor make it ``refer``, while the same predictions on drawn contours are answered."""
    import json

    import mrparotid.inference.answer as answer
    from mrparotid.decision.apply import Answer

    monkeypatch.setattr(answer, "apply_decision", lambda probs, tumour, record, rule: Answer(
        "malignant", "", 0.9, "tumour mask", 3, rule))          # a record that answers every patient
    arrays = patient_arrays()
    manifest = write_cohort(tmp_path, [("Q", "malignant", {"arrays": arrays})])
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    run = tmp_path / "seg"
    (run / "checkpoints").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"val": {"gland_dice": 0.3, "tumour_dice": 0.2}}))
    weak = FakeSegmenter(arrays["gland"], arrays["tumour"], path=str(run / "checkpoints" / "best.ckpt"))
    row = score_patient(read_manifest(manifest).cases[0], loaded, weak)
    assert row["given_answer"] == "malignant" and row["auto_answer"] == "refer"
