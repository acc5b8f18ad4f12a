"""``diagnose`` reports the calibrated p(malignant) and the refer answer of the checkpoint's
calibration, beside the rule's diagnosis (tiny model, hand-made patient, no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from patients import write_patient
from mrparotid.cli.main import main
from mrparotid.config import load_config
from mrparotid.constants import CLASSES
from mrparotid.inference.calibrate import apply_temperature
from mrparotid.inference.diagnose import diagnose_case, format_report
from mrparotid.io.manifest import PatientCase
from mrparotid.models.checkpoint import checkpoint_meta, load_checkpoint
from mrparotid.models.factory import build_classifier


def calibrated_checkpoint(path, calibration: dict | None):
    cfg = load_config(None, ["--model.name", "tiny_resnet", "--data.image_size", "32"])
    torch.manual_seed(0)
    model = build_classifier(cfg["model"], len(cfg["data"]["channels"]), pretrained=False)
    meta = checkpoint_meta(cfg, synthetic=True)
    if calibration is not None:
        meta["calibration"] = calibration
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()}, "mrparotid": meta}, path)
    return load_checkpoint(path)


def cal(band, t=0.2):
    return {"temperature": t, "aggregation": "mean", "threshold": 0.5, "refer_band": band, "refer_note": "test"}


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    return PatientCase("P001", None, write_patient(tmp_path_factory.mktemp("p") / "P001"))


def test_report_has_p_malignant_answer_and_band_applied_once(tmp_path, patient):
    loaded = calibrated_checkpoint(tmp_path / "m.ckpt", cal(None))
    report = diagnose_case(patient, loaded)
    tumour = [s for s in report["slices"] if s.get("tumour_in_mask")]
    assert tumour and report["calibration"]["n_tumour_slices"] == len(tumour)
    raw = np.array([[s["probs"][c] for c in CLASSES] for s in tumour])      # the table keeps raw probs
    once = apply_temperature(raw, 0.2)[:, CLASSES.index("malignant")].mean()
    twice = apply_temperature(apply_temperature(raw, 0.2), 0.2)[:, CLASSES.index("malignant")].mean()
    assert report["p_malignant"] == pytest.approx(once, abs=2e-3)
    assert abs(once - twice) > 0.01 and abs(once - raw[:, 3].mean()) > 0.01
    assert report["aggregation"] == "mean" and report["refer_band"] is None
    benign = report["answer"] in ("pleomorphic_adenoma", "warthin")
    assert report["answer"] == "malignant" if report["p_malignant"] >= 0.5 else benign
    assert report["diagnosis"] in (*CLASSES, "no_tumour_found")             # the rule's, unchanged
    text = format_report(report)
    assert "answer: " in text and f"p(malignant) {report['p_malignant']:.3f}" in text
    assert f"the rule (paper) says {report['diagnosis'].replace('_', ' ')}" in text


def test_inside_the_band_the_answer_is_refer(tmp_path, patient):
    report = diagnose_case(patient, calibrated_checkpoint(tmp_path / "m.ckpt", cal([0.0, 1.0])))
    assert report["answer"] == "refer" and report["refer_band"] == [0.0, 1.0]
    assert "REFER" in format_report(report)


def test_rule_diagnosis_is_the_same_with_and_without_calibration(tmp_path, patient):
    plain = diagnose_case(patient, calibrated_checkpoint(tmp_path / "a.ckpt", None))
    calibrated = diagnose_case(patient, calibrated_checkpoint(tmp_path / "b.ckpt", cal([0.0, 1.0])))
    assert plain["diagnosis"] == calibrated["diagnosis"] and plain["slices"] == calibrated["slices"]
    assert plain["calibration"]["temperature"] == 1.0 and plain["refer_band"] is None


def test_json_on_the_command_line(tmp_path, patient):
    calibrated_checkpoint(tmp_path / "m.ckpt", cal([0.0, 1.0]))
    out = tmp_path / "r.json"
    assert main(["diagnose", str(patient.patient_dir), "--checkpoint", str(tmp_path / "m.ckpt"),
                 "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert {"p_malignant", "aggregation", "answer", "refer_band", "diagnosis"} <= set(report)
    assert report["answer"] == "refer"
