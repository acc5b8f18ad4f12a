"""Kill a fit with SIGKILL mid-epoch, resume it, and get the weights of an uninterrupted run; two
fits with the same seed give identical predictions; an unfinished run is refused by evaluate.
Each in both precisions, ``32-true`` and ``bf16-mixed`` (emulated, and slower, on a CPU without
native bf16, but it must resume and repeat all the same)."""

from __future__ import annotations

import json

import pytest
import torch

from mrparotid.cli.main import main
from mrparotid.config import load_config
from mrparotid.training.fit import fit
from mrparotid.training.resume import capture_rng, restore_rng, resume_point
from killed_runs import run_killed
from patients import write_cohort

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = {"train": ["P00", "P01", "P02", "P03"], "val": ["P04"], "test": ["P05"]}
EPOCHS, KILL_EPOCH = 3, 1
PRECISIONS = ["32-true", pytest.param("bf16-mixed", marks=pytest.mark.slow)]


def tiny(precision: str) -> list[str]:
    return ["--data.image_size", "32", "--data.batch_size", "8", "--model.name", "tiny_resnet",
            "--trainer.max_epochs", str(EPOCHS), "--trainer.accelerator", "cpu",
            "--trainer.deterministic", "true", "--trainer.precision", precision,
            "--trainer.log_every_n_steps", "1", "--seed", "7"]

# The child trains the same run (and SIGKILLs itself on the second batch of epoch KILL_EPOCH).
CHILD = """
    import json, sys
    from mrparotid.config import load_config
    from mrparotid.training.fit import fit

    manifest, out, splits, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
    fit(load_config(None, overrides), manifest=manifest, out_dir=out, splits=splits, progress=False,
        evaluate=False)
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}) for i in range(6)]
    return root, write_cohort(root, rows)


@pytest.fixture(scope="module", params=PRECISIONS)
def precision(request) -> str:
    """``trainer.precision`` of the runs below (the uninterrupted, killed and repeated runs)."""
    return request.param


@pytest.fixture(scope="module")
def uninterrupted(cohort, precision):
    root, manifest = cohort
    return fit(load_config(None, tiny(precision)), manifest=manifest, out_dir=root / f"whole-{precision}",
               splits=SPLITS, progress=False, evaluate=False)


@pytest.fixture(scope="module")
def killed(cohort, precision):
    """The run folder of a fit killed with SIGKILL in the middle of epoch KILL_EPOCH."""
    root, manifest = cohort
    out = root / f"killed-{precision}"
    run_killed("mrparotid.models.lit_module:SliceClassifier", KILL_EPOCH, CHILD, str(manifest),
               str(out), json.dumps(SPLITS), *tiny(precision))
    return out


def _weights(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"], ckpt


def test_killed_run_is_incomplete_and_refused(killed, cohort, precision, capsys):
    point = resume_point(killed)
    assert not point.complete and point.checkpoint is not None and point.splits == SPLITS
    assert point.kind == "classifier" and point.cfg["trainer"]["precision"] == precision
    assert _weights(killed)[1]["epoch"] == KILL_EPOCH - 1          # the last finished epoch
    for argv in (["evaluate", "--checkpoint", str(killed / "checkpoints" / "last.ckpt"),
                  "--manifest", str(cohort[1]), "--out", str(killed / "eval")],
                 ["diagnose", str(cohort[0] / "patients" / "P05"),
                  "--checkpoint", str(killed / "checkpoints" / "last.ckpt")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"mrparotid fit --resume {killed}" in err


def test_resume_gives_the_uninterrupted_weights(killed, uninterrupted, cohort, precision, capsys):
    root = cohort[0]
    assert main(["fit", "--resume", str(killed), "-q"]) == 0
    assert "resuming from" in capsys.readouterr().out
    resumed, ckpt = _weights(killed)
    whole, whole_ckpt = _weights(root / f"whole-{precision}")
    assert ckpt["epoch"] == whole_ckpt["epoch"] and ckpt["global_step"] == whole_ckpt["global_step"]
    assert all(v.dtype != torch.bfloat16 for v in resumed.values())     # float32 weights in bf16 too
    diff = max(float((resumed[k].double() - whole[k].double()).abs().max()) for k in whole)
    print(f"resume equality ({precision}): max abs weight difference {diff:.3g}")
    assert diff <= 1e-6, f"resumed weights differ from the uninterrupted run by {diff:.3g}"
    summary = json.loads((killed / "summary.json").read_text(encoding="utf-8"))
    assert summary["test"] == uninterrupted["test"]
    for split in ("val", "test"):
        assert ((killed / f"predictions_{split}.csv").read_bytes()
                == (root / f"whole-{precision}" / f"predictions_{split}.csv").read_bytes())
    assert main(["fit", "--resume", str(killed), "-q"]) == 0       # complete: nothing to do
    assert "nothing to resume" in capsys.readouterr().out


def test_a_resumed_run_keeps_the_validation_curve_of_its_first_epochs(killed, uninterrupted, cohort, precision):
    """The patient-level validation figure of the epochs before the kill travels in the checkpoint:
    the resumed run's curve (and so its chosen epoch) is the uninterrupted run's. Runs after
    test_resume_gives_the_uninterrupted_weights, which resumes ``killed``."""
    if not (killed / "summary.json").is_file():
        assert main(["fit", "--resume", str(killed), "-q"]) == 0
    resumed = json.loads((killed / "summary.json").read_text(encoding="utf-8"))
    whole = json.loads((cohort[0] / f"whole-{precision}" / "summary.json").read_text(encoding="utf-8"))
    curve = resumed["validation_curve"]["val/patient_log_loss"]
    assert None not in curve
    assert curve == pytest.approx(whole["validation_curve"]["val/patient_log_loss"], abs=1e-6)


def test_same_seed_same_predictions(cohort, uninterrupted, precision):
    root, manifest = cohort
    again = fit(load_config(None, tiny(precision)), manifest=manifest, out_dir=root / f"again-{precision}",
                splits=SPLITS, progress=False, evaluate=False)
    assert again["test"] == uninterrupted["test"]
    for split in ("val", "test"):
        assert ((root / f"again-{precision}" / f"predictions_{split}.csv").read_bytes()
                == (root / f"whole-{precision}" / f"predictions_{split}.csv").read_bytes())


def test_resume_refuses_other_options(cohort, capsys):
    root = cohort[0]
    assert main(["fit", "--resume", str(root / "whole-32-true"), "--trainer.max_epochs", "9"]) == 2
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
