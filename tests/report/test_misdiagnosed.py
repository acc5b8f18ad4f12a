"""``evaluate``: a montage per misdiagnosed test patient beside report.md, made from the very slices
(and probabilities) the evaluation scored; with ``--predictions`` only, report.md says why not."""

from __future__ import annotations

import json

import numpy as np

from checkpoints import split_cohort
from mrparotid.cli.main import main
from mrparotid.evaluation.predictions import read_predictions
from mrparotid.report import montage
from mrparotid.report.misdiagnosed import NEEDS_CHECKPOINT, SOURCE_NOTE, montage_name


def test_evaluate_checkpoint_writes_a_montage_per_misdiagnosed_patient(tmp_path, monkeypatch):
    manifest = split_cohort(tmp_path)
    seen = {}
    real = montage.montage_png

    def spy(slices, probs, cams, **kw):
        seen[slices.patient_id] = (slices, probs, kw)
        return real(slices, probs, cams, **kw)

    monkeypatch.setattr(montage, "montage_png", spy)
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "m.ckpt"), "--manifest", str(manifest),
                 "--out", str(out), "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    wrong = metrics["patient"]["rule"]["misdiagnosed"]
    assert wrong, "an untrained model misdiagnoses some of three different diagnoses"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Misdiagnosed test patients: pictures" in report and SOURCE_NOTE in report
    preds = read_predictions(out / "predictions_test.csv")
    for d in wrong:
        pid = d["patient_id"]
        png = out / montage_name(pid)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png.name})" in report
        slices, probs, kw = seen[pid]
        assert kw["diagnosis"] == d["diagnosis"] and kw["synthetic"] is True
        scored = preds[preds["patient_id"] == pid].set_index(["side", "index"])
        assert len(scored) == len(slices)          # exactly the slices that were scored
        for side, k, p in zip(slices.sides, slices.slice_index, probs):
            want = scored.loc[(str(side), int(k)), [f"p_{c}" for c in
                              ("no_tumour", "pleomorphic_adenoma", "warthin", "malignant")]]
            np.testing.assert_allclose(p, want.to_numpy(float), atol=1e-4)
    assert set(seen) == {d["patient_id"] for d in wrong}

    again = tmp_path / "eval2"
    assert main(["evaluate", "--predictions", str(out / "predictions_test.csv"), "--out", str(again),
                 "-q"]) == 0
    text = (again / "report.md").read_text(encoding="utf-8")
    assert NEEDS_CHECKPOINT in text and not list(again.glob("misdiagnosed_*.png"))
