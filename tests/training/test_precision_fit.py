"""A tiny fit in bf16-mixed (seconds each): the run says which precision it chose, two seeded fits
give identical predictions, and the checkpoint holds float32 weights that run on a CPU without
bf16 (the 32-true path, forced)."""

from __future__ import annotations

import pytest
import torch

import mrparotid.models.precision as precision
from mrparotid.config import load_config
from mrparotid.training.fit import fit
from patients import write_cohort

pytestmark = pytest.mark.slow

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = {"train": ["P00", "P01", "P02"], "val": ["P03"], "test": ["P04"]}
BF16 = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed",
        "--trainer.log_every_n_steps", "1", "--seed", "11"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two bf16-mixed fits of the same seeded run."""
    root = tmp_path_factory.mktemp("bf16")
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(5)]
    manifest = write_cohort(root, rows)
    summaries = [fit(load_config(None, BF16), manifest=manifest, out_dir=root / name, splits=SPLITS,
                     progress=False, evaluate=False) for name in ("a", "b")]
    return root, summaries


def test_the_run_records_its_precision(runs):
    _, (summary, _) = runs
    assert summary["precision"]["trainer"] == "bf16-mixed"
    assert summary["precision"]["reason"].startswith("set in trainer.precision")
    assert summary["precision"]["memory_format"] == "channels_last"


def test_two_seeded_bf16_fits_give_identical_predictions(runs):
    root, _ = runs
    for split in ("val", "test"):
        a = (root / "a" / f"predictions_{split}.csv").read_text(encoding="utf-8")
        assert a == (root / "b" / f"predictions_{split}.csv").read_text(encoding="utf-8")


def test_a_bf16_checkpoint_is_float32_and_runs_without_bf16(runs, monkeypatch):
    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.inference.predict import predict_probs
    from mrparotid.models.checkpoint import load_checkpoint

    root, (summary, _) = runs
    state = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    floats = {k: v.dtype for k, v in state.items() if v.is_floating_point()}
    assert floats and set(floats.values()) == {torch.float32}
    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: (False, "the CPU has no native bf16"))
    assert precision.inference_autocast("auto", "cpu").__class__.__name__ == "nullcontext"
    loaded = load_checkpoint(summary["best_checkpoint"])
    dm = ParotidDataModule(load_config(None, BF16), summary["manifest"], splits=SPLITS, progress=False)
    dm.setup()
    probs = predict_probs(loaded.model, dm.data["test"].x)             # auto -> 32-true here
    assert probs.dtype.name == "float64" and probs.shape[1] == 4
    assert abs(probs.sum(1) - 1).max() < 1e-6
    test = summary["test"]
    assert test["slices"] == len(probs)
