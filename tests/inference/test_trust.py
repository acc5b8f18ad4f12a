"""A segmenter below its Dice floor, or an implausible gland, makes the answer refer; a patient of
the model's own training split gets a note."""

from __future__ import annotations

import json

import numpy as np

from mrparotid.inference.trust import segmenter_reasons, training_note


def seg_run(tmp_path, gland: float, tumour: float):
    (tmp_path / "checkpoints").mkdir(parents=True)
    (tmp_path / "summary.json").write_text(json.dumps({"val": {"gland_dice": gland, "tumour_dice": tumour}}))
    return tmp_path / "checkpoints" / "best.ckpt"


def test_a_segmenter_below_its_floor_is_not_trusted_and_the_figure_is_named(tmp_path):
    why = segmenter_reasons(seg_run(tmp_path, 0.0, 0.0), {"gland": 0.7, "tumour": 0.5}, None, (1, 1, 1))
    assert any("gland Dice 0.000 is below the floor 0.70" in w for w in why)
    assert any("tumour Dice 0.000" in w for w in why)


def test_a_good_segmenter_with_a_plausible_gland_is_trusted(tmp_path):
    gland = np.zeros((30, 30, 60), np.uint8)
    gland[:, :, :25], gland[:, :, 35:] = 1, 2                    # 22.5 cm³ each at 1 mm³ voxels
    assert segmenter_reasons(seg_run(tmp_path, 0.9, 0.8), {"gland": 0.7, "tumour": 0.5}, gland, (1.0, 1.0, 1.0)) == []
    tiny = np.zeros_like(gland)
    tiny[0, 0, :3] = 1
    assert "outside the plausible" in segmenter_reasons(seg_run(tmp_path / "b", 0.9, 0.8),
                                                        {"gland": 0.7, "tumour": 0.5}, tiny, (1, 1, 1))[0]


def test_a_segmenter_without_validation_figures_is_not_trusted(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    assert "never validated" in segmenter_reasons(tmp_path / "checkpoints" / "x.ckpt", {"gland": 0.7, "tumour": 0.5},
                                                  None, (1, 1, 1))[0]


def test_a_training_patient_gets_a_note():
    meta = {"split": {"splits": {"train": ["P1"], "val": ["P2"], "test": ["P3"]}}}
    assert "trained this model" in training_note("P1", meta)
    assert "validated this model" in training_note("P2", meta)
    assert training_note("P3", meta) is None
