"""A fit without a terminal logs one line per epoch (and per test stage), never Lightning's
``\\r``-redrawn bars."""

from __future__ import annotations

import re

from mrparotid.config import load_config
from mrparotid.training.fit import fit
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = {"train": ["P00", "P01", "P02"], "val": ["P03"], "test": ["P04"]}
TINY = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1"]


def test_fit_without_a_terminal_writes_one_line_per_epoch(tmp_path, capfd):
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(5)]
    manifest = write_cohort(tmp_path, rows)
    fit(load_config(None, TINY), manifest=manifest, out_dir=tmp_path / "run", splits=SPLITS,
        progress=True, evaluate=False)
    err = capfd.readouterr().err
    assert "\r" not in err
    epochs = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all(re.search(r"train/loss [0-9.e+-]+, val/acc [0-9.e+-]+, .*\([0-9.]+ s\)$", ln)
               for ln in epochs), epochs
    assert sum(ln.startswith("test: ") for ln in err.splitlines()) == 1
