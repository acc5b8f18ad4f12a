"""``mrparotid segment fit`` (a tiny run through the CLI) and ``mrparotid segment`` on a folder
that holds only the three series; bad checkpoints and missing series give one line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk
from patients import write_cohort

from mrparotid.cli.main import main

TINY = ["--trainer.max_epochs", "15", "--data.image_size", "48", "--model.channels", "[8,16]",
        "--model.strides", "[2]", "--trainer.precision", "32-true", "--data.batch_size", "8",
        "--optim.lr", "0.01", "--model.num_res_units", "0"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, cohort root) of a 15-epoch segmenter (about 75 steps on 48 px slices) on six
    hand-made patients."""
    root = tmp_path_factory.mktemp("seg_cohort")
    splits = ["train", "train", "train", "train", "val", "test"]
    rows = [(f"P{i}", "warthin", {"tumour_side": "LR"[i % 2], "gland_labels": i % 2 == 0}, splits[i])
            for i in range(6)]
    manifest = write_cohort(root, rows)
    run = root / "run"
    assert main(["segment", "fit", "-m", str(manifest), "--out", str(run), "-q", *TINY]) == 0
    return run, root


def test_fit_writes_a_run(tiny_run):
    run, _ = tiny_run
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["kind"] == "segmenter" and summary["epochs"] == 15
    assert summary["splits"]["test"] == ["P5"] and summary["splits"]["val"] == ["P4"]
    for split in ("val", "test"):
        for key in ("gland_dice", "tumour_dice"):
            assert 0.0 <= summary[split][key] <= 1.0
        assert (run / f"scores_{split}.csv").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run / "split.json").read_text(encoding="utf-8"))["splits"]["test"] == ["P5"]


def test_fit_refuses_a_finished_run_and_bad_overrides(tiny_run, capsys):
    run, root = tiny_run
    assert main(["segment", "fit", "-m", str(root / "manifest.csv"), "--out", str(run), "-q"]) == 2
    assert main(["segment", "fit", "--out", str(root / "r2"), "--data.spacing_mm", "fine"]) == 2
    assert main(["segment", "fit", "--out", str(root / "r2"), "--model.depth", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("mrparotid: error:") for line in err)


def _series_only(root: Path, tmp_path: Path, omit: tuple[str, ...] = ()) -> Path:
    folder = tmp_path / "NEW1"
    folder.mkdir()
    for name in ("T1", "CE-T1", "T2"):
        if name not in omit:
            shutil.copy(root / "patients" / "P5" / f"{name}.nii.gz", folder / f"{name}.nii.gz")
    return folder


def test_segment_a_folder_with_only_the_series(tiny_run, tmp_path, capsys):
    run, root = tiny_run
    folder = _series_only(root, tmp_path)
    assert main(["segment", str(folder), "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
                 "--out", str(tmp_path / "auto")]) == 0
    assert "right gland" in capsys.readouterr().out
    t1 = sitk.ReadImage(str(folder / "T1.nii.gz"))
    for name in ("parotid_auto.nii.gz", "tumour_auto.nii.gz"):
        image = sitk.ReadImage(str(tmp_path / "auto" / "NEW1" / name))
        assert image.GetSize() == t1.GetSize() and image.GetOrigin() == pytest.approx(t1.GetOrigin())
    assert (tmp_path / "auto" / "NEW1" / "overlay_auto.png").is_file()


def test_segment_uses_the_newest_segmenter_run(tiny_run, tmp_path, monkeypatch, capsys):
    run, root = tiny_run
    folder = _series_only(root, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["segment", str(folder), "--out", "auto"]) == 2           # no runs/ here
    assert "segment fit" in capsys.readouterr().err
    shutil.copytree(run, tmp_path / "runs" / "seg")
    assert main(["segment", str(folder), "--out", "auto", "-q"]) == 0
    assert (tmp_path / "auto" / "NEW1" / "parotid_auto.nii.gz").is_file()


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04 truncated zip"])
def test_bad_checkpoint_is_one_line_exit_2(content, tiny_run, tmp_path, capsys):
    _, root = tiny_run
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    assert main(["segment", str(_series_only(root, tmp_path)), "--checkpoint", str(bad),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an mrparotid segmenter checkpoint" in err[0]


def test_a_classifier_checkpoint_is_refused(tmp_path, capsys):
    import torch

    path = tmp_path / "classifier.ckpt"
    torch.save({"state_dict": {}, "mrparotid": {"format": "mrparotid-checkpoint-1", "classes": []}}, path)
    assert main(["segment", str(tmp_path), "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "classifier checkpoint" in capsys.readouterr().err


def test_missing_series_the_segmenter_needs(tiny_run, tmp_path, capsys):
    run, root = tiny_run
    folder = _series_only(root, tmp_path, omit=("T2",))
    assert main(["segment", str(folder), "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on T1, CE-T1, T2" in err[0] and "no T2" in err[0]
    assert "--data.series [T1,CE-T1]" in err[0]


def test_help_has_examples_and_imports_no_torch(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit) as exc:
        main(["segment", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "mrparotid segment fit" in out and "examples" in out
    code = ("import sys; from mrparotid.cli.main import main\n"
            "try:\n    main(['segment', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'monai' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True)
    assert res.stdout.strip().splitlines()[-1] == "False False"
