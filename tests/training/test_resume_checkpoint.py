"""``fit --resume`` and ``segment fit --resume`` on a run whose ``last.ckpt`` holds pickled code:
one CheckpointError line and exit 2 before any data is read, and the code never runs; Lightning's
own reads (cv and ablation folds resume through ``trainer.fit``) are refused the same way."""

from __future__ import annotations

import pytest
import torch
from patients import write_cohort

from mrparotid import __version__
from mrparotid.cli.main import main
from mrparotid.config import dump_config, load_config
from mrparotid.errors import CheckpointError
from mrparotid.training.resume import AtomicCheckpointIO

CLASSIFIER = ["--model.name", "tiny_resnet", "--data.image_size", "32", "--trainer.max_epochs", "1",
              "--trainer.accelerator", "cpu", "--data.batch_size", "8"]
SEGMENTER = ["--model.channels", "[4,8]", "--model.strides", "[2]", "--data.image_size", "32",
             "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu"]


class Payload:
    """Unpickling this creates ``marker``: the code a hostile checkpoint would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def manifest(tmp_path):
    rows = [("P0", "warthin", {}, "train"), ("P1", "malignant", {"tumour_side": "R"}, "train"),
            ("P2", "warthin", {}, "val"), ("P3", "malignant", {"tumour_side": "R"}, "test")]
    return write_cohort(tmp_path / "cohort", rows)


def interrupted_run(run, cfg: dict, marker, **record) -> None:
    """A run folder killed after its first epoch, whose last.ckpt holds pickled code."""
    (run / "checkpoints").mkdir(parents=True)
    dump_config(dict(cfg, git="test", version=__version__, **record), run / "config.yaml")
    torch.save({"epoch": 0, "state_dict": {}, "payload": Payload(marker)}, run / "checkpoints" / "last.ckpt")


def refused_in_one_line(argv, capsys, marker, monkeypatch) -> str:
    monkeypatch.delenv("MRPAROTID_DEBUG", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "internal error" not in err and "last.ckpt" in err
    assert not marker.exists()
    return err


def test_fit_resume_refuses_a_checkpoint_with_pickled_code(tmp_path, manifest, capsys, monkeypatch):
    run, marker = tmp_path / "run", tmp_path / "ran"
    interrupted_run(run, load_config(None, [*CLASSIFIER, "--data.manifest", str(manifest)]), marker)
    err = refused_in_one_line(["fit", "--resume", str(run)], capsys, marker, monkeypatch)
    assert "torch cannot load it safely" in err and "without --resume" in err


def test_segment_fit_resume_refuses_a_checkpoint_with_pickled_code(tmp_path, manifest, capsys, monkeypatch):
    from mrparotid.segmentation.config import load_segment_config

    run, marker = tmp_path / "seg", tmp_path / "ran"
    cfg = load_segment_config(None, [*SEGMENTER, "--data.manifest", str(manifest)])
    interrupted_run(run, cfg, marker, kind="segmenter")
    err = refused_in_one_line(["segment", "fit", "--resume", str(run)], capsys, marker, monkeypatch)
    assert "torch cannot load it safely" in err


def test_lightning_reads_checkpoints_through_the_same_checks(tmp_path):
    """cv and ablation folds resume inside trainer.fit, which reads through AtomicCheckpointIO."""
    marker, path = tmp_path / "ran", tmp_path / "last.ckpt"
    torch.save({"payload": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="torch cannot load it safely"):
        AtomicCheckpointIO().load_checkpoint(path)
    torch.save({"epoch": 0, "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not the checkpoint of an mrparotid training run"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not marker.exists()
