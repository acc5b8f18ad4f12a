"""``fit --segmenter``: a tiny fit whose evaluation gains the clinic path (automatic masks)."""

from __future__ import annotations

import json

from segmenters import FakeSegmenter
from mrparotid.config import load_config
from mrparotid.training.fit import fit
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = {"train": ["P00", "P01", "P02"], "val": ["P03"], "test": ["P04", "P05"]}
TINY = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1"]


def test_fit_with_a_segmenter_adds_the_automatic_column(tmp_path):
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(6)]
    manifest = write_cohort(tmp_path, rows)
    exact = FakeSegmenter(fn=lambda study: (study.gland, study.tumour))   # the manifest's masks
    summary = fit(load_config(None, TINY), manifest=manifest, out_dir=tmp_path / "run", splits=SPLITS,
                  progress=False, segmenter=exact)
    assert exact.calls == 3          # the validation patient (the decision's) and the two test patients
    assert summary["decision"]["masks"] == "auto"                       # chosen as diagnose sees them
    assert "automatic masks" in summary["decision"]["source"]
    clinic = summary["clinic"]
    assert clinic["accuracy_difference"] == 0.0 and clinic["changed"] == []   # same masks, same calls
    assert clinic["segmentation"]["gland_dice"]["mean"] == 1.0
    assert clinic["detection"]["accuracy"]["k"] == clinic["detection"]["accuracy"]["n"] == 4
    evaluation = tmp_path / "run" / "evaluation"
    assert "## Clinic path" in (evaluation / "report.md").read_text(encoding="utf-8")
    assert (evaluation / "clinic.md").is_file() and (evaluation / "clinic.json").is_file()
    saved = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert saved["clinic"]["files"]["md"].endswith("clinic.md")


def test_fit_refuses_a_segmenter_that_trained_on_its_test_patients(tmp_path):
    import pytest

    from mrparotid.errors import ConfigError

    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(6)]
    manifest = write_cohort(tmp_path, rows)
    seen = FakeSegmenter(fn=lambda study: (study.gland, study.tumour), trained_on=("P04",))
    with pytest.raises(ConfigError, match="allow-overlap"):
        fit(load_config(None, TINY), manifest=manifest, out_dir=tmp_path / "run", splits=SPLITS,
            progress=False, segmenter=seen)
    assert seen.calls == 0                                               # refused before any work
