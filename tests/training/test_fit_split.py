"""A tiny fit (seconds): no-validation runs keep last.ckpt, and evaluate --checkpoint scores
exactly the run's saved test patients or refuses."""

from __future__ import annotations

import json

import pytest
import torch

from mrparotid.config import load_config
from mrparotid.errors import CheckpointError, ManifestError
from mrparotid.training.fit import fit, predict_split
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = {"train": ["P00", "P01", "P02"], "val": [], "test": ["P03", "P04"]}
TINY = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Five patients; trained one epoch on P00-P02 without validation patients, tested on P03-P04."""
    root = tmp_path_factory.mktemp("fitsplit")
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(5)]
    manifest = write_cohort(root, rows)
    cfg = load_config(None, TINY)
    summary = fit(cfg, manifest=manifest, out_dir=root / "run", splits=SPLITS, progress=False,
                  evaluate=False)
    return root, manifest, summary


def test_no_validation_patients_keep_last_ckpt(run, capsys):
    root, _, summary = run
    assert summary["model_checkpoint"].startswith("last")
    assert summary["best_checkpoint"].endswith("last.ckpt")
    assert not (root / "run" / "checkpoints" / "best.ckpt").exists()     # never chosen on train
    saved = json.loads((root / "run" / "summary.json").read_text(encoding="utf-8"))
    assert saved["model_checkpoint"] == summary["model_checkpoint"]
    metrics = (root / "run" / "metrics.csv").read_text(encoding="utf-8")
    assert "val/" not in metrics                                       # no validation on train


def _manifest(root, manifest, edit) -> str:
    lines = manifest.read_text(encoding="utf-8").splitlines()
    out = root / "edited.csv"
    out.write_text("\n".join([lines[0]] + [e for ln in lines[1:] if (e := edit(ln)) is not None]) + "\n",
                   encoding="utf-8")
    return str(out)


def _predict(root, manifest_path, tmp_path, ckpt=None):
    cfg = load_config(None, ["--data.manifest", manifest_path])
    return predict_split(ckpt or root / "run" / "checkpoints" / "last.ckpt", cfg, "test", tmp_path,
                         progress=False)


def test_evaluate_scores_the_saved_test_patients(run, tmp_path):
    root, manifest, _ = run
    fewer = _manifest(root, manifest, lambda ln: None if ln.startswith("P01") else ln)   # train gone
    paths = _predict(root, fewer, tmp_path)
    text = paths["preds"].read_text(encoding="utf-8")
    assert {ln.split(",")[0] for ln in text.splitlines()[1:] if ln and not ln.startswith("#")} == {
        "P03", "P04"}


@pytest.mark.parametrize("edit, named", [
    (lambda ln: None if ln.startswith("P04") else ln, "P04"),                    # test patient gone
    (lambda ln: ln + "test" if ln.startswith("P00") else ln, "P00"),             # train -> test
    (lambda ln: ln.replace("warthin", "malignant") if ln.startswith("P04") else ln, "P04"),
])
def test_evaluate_refuses_a_manifest_that_no_longer_fits(run, tmp_path, edit, named):
    root, manifest, _ = run
    with pytest.raises(ManifestError, match=named) as exc:
        _predict(root, _manifest(root, manifest, edit), tmp_path)
    assert "\n" not in str(exc.value)


def test_old_checkpoint_without_a_split_is_refused(run, tmp_path):
    root, manifest, _ = run
    ckpt = torch.load(root / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    del ckpt["mrparotid"]["split"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(CheckpointError, match="re-run 'mrparotid fit'"):
        _predict(root, str(manifest), tmp_path, ckpt=old)
