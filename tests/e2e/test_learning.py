"""The model learns: on a SYNTHETIC phantom cohort, a model trained on the true diagnoses beats one
trained on diagnoses shuffled between patients, on the same held-out patients.

Shuffling the diagnoses keeps every slice, mask and split; only the tumour classes lose their link
to the images. Setting: 40 patients, 64 px, 20 epochs, seed 0; see MARGIN below. The comparison is of tumour-slice accuracy, where shuffled labels can only guess.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from mrparotid.cli.main import main
from mrparotid.data.phantom import make_cohort

pytestmark = pytest.mark.slow

#: Required lead of the true-label model in tumour-slice accuracy. Measured once at these settings
#: (seed 0, 2 loaded CPU cores, 4.5 min for both fits): 0.458 vs 0.254, a lead of 0.20; its spread
#: over seeds was not measured, so the margin is half the measured lead.
MARGIN = 0.10
SETTINGS = ["--data.image_size", "64", "--data.batch_size", "32", "--trainer.accelerator", "cpu",
            "--trainer.max_epochs", "20", "--data.test_fraction", "0.3", "--seed", "0", "-q"]


def tumour_slice_accuracy(predictions: Path) -> float:
    rows = [r for r in csv.DictReader(l for l in predictions.open(encoding="utf-8") if not l.startswith("#"))
            if r["true"] not in ("", "no_tumour")]
    return sum(r["true"] == r["pred"] for r in rows) / len(rows)


def shuffled_manifest(manifest: Path, seed: int = 0) -> Path:
    lines = manifest.read_text(encoding="utf-8").splitlines()
    comments = [l for l in lines if l.startswith("#")]
    rows = list(csv.DictReader(l for l in lines if not l.startswith("#")))
    diagnoses = [r["diagnosis"] for r in rows]
    random.Random(seed).shuffle(diagnoses)
    out = manifest.with_name("manifest_shuffled.csv")
    with out.open("w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(comments) + "\n")
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row, diagnosis in zip(rows, diagnoses):
            writer.writerow(dict(row, diagnosis=diagnosis))
    return out


def test_true_labels_beat_shuffled_labels(tmp_path):
    manifest = make_cohort(tmp_path / "cohort", 40, seed=0, progress=False)
    shuffled = shuffled_manifest(manifest)
    assert main(["fit", "-m", str(manifest), "--out", str(tmp_path / "true"), *SETTINGS]) == 0
    assert main(["fit", "-m", str(shuffled), "--out", str(tmp_path / "shuffled"), *SETTINGS]) == 0
    true_acc = tumour_slice_accuracy(tmp_path / "true" / "predictions_test.csv")
    shuffled_acc = tumour_slice_accuracy(tmp_path / "shuffled" / "predictions_test.csv")
    assert true_acc - shuffled_acc >= MARGIN, (true_acc, shuffled_acc)
