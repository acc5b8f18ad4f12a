"""End to end: a short ``segment fit`` on a small phantom cohort, then ``diagnose`` of a patient
folder that holds only the three series, with masks from that segmenter."""

from __future__ import annotations

import json
import shutil

import pytest

from checkpoints import tiny_checkpoint
from mrparotid.cli.main import main
from mrparotid.io.files import role_of
from mrparotid.io.manifest import read_manifest


@pytest.mark.slow
def test_diagnose_a_series_only_folder_with_a_trained_segmenter(tmp_path, monkeypatch, capsys):
    from mrparotid.data.phantom import make_cohort

    monkeypatch.chdir(tmp_path)
    manifest = make_cohort(tmp_path / "cohort", 6, seed=0, progress=False)
    assert main(["segment", "fit", "-m", str(manifest), "--out", "runs/seg", "-q",
                 "--trainer.max_epochs", "2", "--model.channels", "[8,16,32]",
                 "--model.strides", "[2,2]"]) == 0
    tiny_checkpoint(tmp_path / "cls.ckpt")
    case = read_manifest(manifest).cases[-1]
    folder = tmp_path / "new" / case.patient_id
    folder.mkdir(parents=True)
    for entry in case.patient_dir.iterdir():
        if role_of(entry) in ("T1", "CE-T1", "T2"):
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, folder / entry.name)
    capsys.readouterr()
    code = main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "cls.ckpt"),   # default
                 "--json", str(tmp_path / "r.json")])                                    # segmenter
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["masks"] == {"gland": "auto", "tumour": "auto"}
    assert report["segmenter"]["checkpoint"].endswith("best.ckpt") and report["tumour_found"]
    assert "gland AUTOMATIC (segmenter), tumour AUTOMATIC (segmenter)" in out.out
    assert sum(report["counts"].values()) == len(report["slices"]) > 0
