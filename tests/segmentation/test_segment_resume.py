"""Kill ``segment fit`` with SIGKILL mid-epoch, resume it with ``segment fit --resume``, and get the
weights and scores of an uninterrupted run; the killed run's checkpoints are refused until then."""

from __future__ import annotations

import json

import pytest
import torch
from checkpoints import tiny_checkpoint
from killed_runs import run_killed
from patients import write_cohort

from mrparotid.cli.main import main
from mrparotid.segmentation.config import load_segment_config
from mrparotid.segmentation.fit import fit_segmenter
from mrparotid.training.resume import resume_point

EPOCHS, KILL_EPOCH = 3, 1
# 4 training patients x ~10 slices = 5 batches of 8 an epoch, on a 32 px canvas at 3 mm
TINY = ["--trainer.max_epochs", str(EPOCHS), "--data.image_size", "32", "--data.spacing_mm", "3.0",
        "--model.channels", "[4,8]", "--model.strides", "[2]", "--model.num_res_units", "0",
        "--data.batch_size", "8", "--trainer.accelerator", "cpu", "--trainer.precision", "32-true",
        "--trainer.deterministic", "true", "--trainer.log_every_n_steps", "1", "--seed", "7"]

# The child trains the same run (and SIGKILLs itself on the second batch of epoch KILL_EPOCH).
CHILD = """
    import sys
    from mrparotid.segmentation.config import load_segment_config
    from mrparotid.segmentation.fit import fit_segmenter

    manifest, out, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    fit_segmenter(load_segment_config(None, overrides), manifest, out, progress=False)
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_resume")
    splits = ["train", "train", "train", "train", "val", "test"]
    rows = [(f"P{i}", "warthin", {"tumour_side": "LR"[i % 2], "gland_labels": i % 2 == 0}, splits[i])
            for i in range(6)]
    return root, write_cohort(root, rows)


@pytest.fixture(scope="module")
def uninterrupted(cohort):
    root, manifest = cohort
    return fit_segmenter(load_segment_config(None, TINY), manifest, root / "whole", progress=False)


@pytest.fixture(scope="module")
def killed(cohort):
    """The run folder of a segment fit killed with SIGKILL in the middle of epoch KILL_EPOCH."""
    root, manifest = cohort
    out = root / "killed"
    run_killed("mrparotid.segmentation.lit_module:SegmenterModule", KILL_EPOCH, CHILD, str(manifest),
               str(out), *TINY)
    return out


def _last(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_killed_segmenter_run_is_incomplete_and_refused(killed, cohort, tmp_path, capsys):
    point = resume_point(killed)
    assert point.kind == "segmenter" and not point.complete and point.checkpoint is not None
    assert point.splits["test"] == ["P5"] and point.cfg["data"]["spacing_mm"] == 3.0
    assert _last(killed)["epoch"] == KILL_EPOCH - 1                   # the last finished epoch
    patient = str(cohort[0] / "patients" / "P5")
    fix = f"mrparotid segment fit --resume {killed}"
    tiny_checkpoint(tmp_path / "classifier.ckpt")
    for argv in (["segment", patient, "--checkpoint", str(killed / "checkpoints" / "last.ckpt"),
                  "--out", str(killed / "auto")],
                 ["diagnose", patient, "--checkpoint", str(tmp_path / "classifier.ckpt"),
                  "--segmenter", str(killed / "checkpoints" / "best.ckpt")],
                 ["fit", "--resume", str(killed)],                          # the classifier's verb
                 ["segment", "fit", "--resume", str(killed), "--trainer.max_epochs", "9"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fix in err, err
    assert not (killed / "summary.json").exists()


def test_segment_fit_resume_gives_the_uninterrupted_weights(killed, uninterrupted, cohort, capsys):
    root = cohort[0]
    assert main(["segment", "fit", "--resume", str(killed), "-q"]) == 0
    assert f"resuming from {killed / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().out
    resumed, whole = _last(killed), _last(root / "whole")
    assert (resumed["epoch"], resumed["global_step"]) == (whole["epoch"], whole["global_step"])
    diff = max(float((resumed["state_dict"][k].double() - v.double()).abs().max())
               for k, v in whole["state_dict"].items())
    print(f"segment fit resume equality: max abs weight difference {diff:.3g}")
    assert diff <= 1e-6, f"resumed weights differ from the uninterrupted run by {diff:.3g}"
    summary = json.loads((killed / "summary.json").read_text(encoding="utf-8"))
    assert summary["epochs"] == uninterrupted["epochs"] == EPOCHS
    assert summary["test"] == uninterrupted["test"] and summary["val"] == uninterrupted["val"]
    for split in ("val", "test"):
        assert ((killed / f"scores_{split}.csv").read_bytes()
                == (root / "whole" / f"scores_{split}.csv").read_bytes())
    assert main(["segment", "fit", "--resume", str(killed), "-q"]) == 0    # complete: nothing to do
    assert "nothing to resume" in capsys.readouterr().out


def test_fit_resume_of_nothing_or_of_a_classifier_run(cohort, capsys):
    root = cohort[0]
    assert main(["segment", "fit", "--resume", str(root / "nowhere")]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    classifier = root / "classifier"
    classifier.mkdir()
    (classifier / "config.yaml").write_text("seed: 1\n", encoding="utf-8")
    assert main(["segment", "fit", "--resume", str(classifier)]) == 2
    assert f"mrparotid fit --resume {classifier}" in capsys.readouterr().err
    assert main(["segment", str(root / "patients" / "P5"), "--resume", str(classifier),
                 "--out", str(root / "auto")]) == 2
    assert "--resume is for 'segment fit'" in capsys.readouterr().err
