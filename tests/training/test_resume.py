"""Kill a fit with SIGKILL mid-epoch, resume it, and get the weights of an uninterrupted run; two
fits with the same seed give identical predictions; an unfinished run is refused by evaluate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from mrparotid.cli.main import main
from mrparotid.config import load_config
from mrparotid.training.fit import fit
from mrparotid.training.resume import capture_rng, restore_rng, resume_point
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = {"train": ["P00", "P01", "P02", "P03"], "val": ["P04"], "test": ["P05"]}
EPOCHS, KILL_EPOCH = 3, 1
TINY = ["--data.image_size", "32", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", str(EPOCHS), "--trainer.accelerator", "cpu",
        "--trainer.deterministic", "true", "--trainer.precision", "32-true",
        "--trainer.log_every_n_steps", "1", "--seed", "7"]

# The child trains the same run and SIGKILLs itself on the second batch of epoch KILL_EPOCH.
CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from mrparotid.config import load_config
    from mrparotid.models.lit_module import SliceClassifier
    from mrparotid.training.fit import fit

    step = SliceClassifier.training_step
    def killing_step(self, batch, batch_idx):
        if self.current_epoch == {kill_epoch} and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self, batch, batch_idx)
    SliceClassifier.training_step = killing_step
    manifest, out, splits, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
    fit(load_config(None, overrides), manifest=manifest, out_dir=out, splits=splits, progress=False,
        evaluate=False)
""").replace("{kill_epoch}", str(KILL_EPOCH))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(6)]
    return root, write_cohort(root, rows)


@pytest.fixture(scope="module")
def uninterrupted(cohort):
    root, manifest = cohort
    return fit(load_config(None, TINY), manifest=manifest, out_dir=root / "whole", splits=SPLITS,
               progress=False, evaluate=False)


@pytest.fixture(scope="module")
def killed(cohort):
    """The run folder of a fit killed with SIGKILL in the middle of epoch KILL_EPOCH."""
    root, manifest = cohort
    out = root / "killed"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(manifest), str(out), json.dumps(SPLITS),
                           *TINY], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return out


def _weights(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"], ckpt


def test_killed_run_is_incomplete_and_refused(killed, cohort, capsys):
    point = resume_point(killed)
    assert not point.complete and point.checkpoint is not None and point.splits == SPLITS
    assert _weights(killed)[1]["epoch"] == KILL_EPOCH - 1          # the last finished epoch
    for argv in (["evaluate", "--checkpoint", str(killed / "checkpoints" / "last.ckpt"),
                  "--manifest", str(cohort[1]), "--out", str(killed / "eval")],
                 ["diagnose", str(cohort[0] / "patients" / "P05"),
                  "--checkpoint", str(killed / "checkpoints" / "last.ckpt")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"mrparotid fit --resume {killed}" in err


def test_resume_gives_the_uninterrupted_weights(killed, uninterrupted, cohort, capsys):
    root = cohort[0]
    assert main(["fit", "--resume", str(killed), "-q"]) == 0
    assert "resuming from" in capsys.readouterr().out
    resumed, ckpt = _weights(killed)
    whole, whole_ckpt = _weights(root / "whole")
    assert ckpt["epoch"] == whole_ckpt["epoch"] and ckpt["global_step"] == whole_ckpt["global_step"]
    diff = max(float((resumed[k].double() - whole[k].double()).abs().max()) for k in whole)
    print(f"resume equality: max abs weight difference {diff:.3g}")
    assert diff <= 1e-6, f"resumed weights differ from the uninterrupted run by {diff:.3g}"
    summary = json.loads((killed / "summary.json").read_text(encoding="utf-8"))
    assert summary["test"] == uninterrupted["test"]
    for split in ("val", "test"):
        assert ((killed / f"predictions_{split}.csv").read_bytes()
                == (root / "whole" / f"predictions_{split}.csv").read_bytes())
    assert main(["fit", "--resume", str(killed), "-q"]) == 0       # complete: nothing to do
    assert "nothing to resume" in capsys.readouterr().out


def test_same_seed_same_predictions(cohort, uninterrupted):
    root, manifest = cohort
    again = fit(load_config(None, TINY), manifest=manifest, out_dir=root / "again", splits=SPLITS,
                progress=False, evaluate=False)
    assert again["test"] == uninterrupted["test"]
    for split in ("val", "test"):
        assert ((root / "again" / f"predictions_{split}.csv").read_bytes()
                == (root / "whole" / f"predictions_{split}.csv").read_bytes())


def test_resume_refuses_other_options(cohort, capsys):
    root = cohort[0]
    assert main(["fit", "--resume", str(root / "whole"), "--trainer.max_epochs", "9"]) == 2
    assert "--trainer.max_epochs" in capsys.readouterr().err
    assert main(["fit", "--resume", str(root / "nowhere")]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3)
    state = capture_rng()
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
