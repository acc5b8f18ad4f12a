"""Pages and JSON name files relative to the folder they are written into: no absolute local path
(the "Read from:" line, the checkpoint, a skipped patient's file)."""

from __future__ import annotations

import json

from checkpoints import tiny_checkpoint
from patients import write_patient
from mrparotid.cli.main import main


def _run_folder(root):
    """A finished run folder holding a tiny checkpoint, its summary and evaluation metrics."""
    run = root / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "evaluation").mkdir()
    tiny_checkpoint(run / "checkpoints" / "best.ckpt")
    (run / "summary.json").write_text(json.dumps({"synthetic": True, "test": {}}), encoding="utf-8")
    rate = {"estimate": 0.8, "lo": 0.5, "hi": 0.9, "k": 8, "n": 10, "method": "Wilson"}
    (run / "evaluation" / "metrics.json").write_text(
        json.dumps({"patient": {"rule": {"accuracy": rate}}, "slice": {"accuracy": rate}}), encoding="utf-8")
    return run


def test_pages_and_json_hold_no_absolute_path(tmp_path, monkeypatch, capsys):
    run = _run_folder(tmp_path)
    a, b = write_patient(tmp_path / "in" / "A"), write_patient(tmp_path / "in" / "B", omit=("T2",))
    monkeypatch.chdir(tmp_path)
    argv = ["diagnose", str(a), str(b), "--checkpoint", str(run / "checkpoints" / "best.ckpt"),
            "--html", "out/pages", "--json", str(tmp_path / "out" / "r.json"), "--skip-bad", "-q"]
    assert main(argv) == 0
    for page in ("A.html", "index.html"):
        text = (tmp_path / "out" / "pages" / page).read_text(encoding="utf-8")
        assert str(tmp_path) not in text, page
        assert "Read from: ../../runs/r1/evaluation/metrics.json; ../../runs/r1/summary.json." in text
        assert "../../runs/r1/checkpoints/best.ckpt" in text
    index = (tmp_path / "out" / "pages" / "index.html").read_text(encoding="utf-8")
    assert "file ../../in/B" in index                      # the skipped patient's file
    saved = (tmp_path / "out" / "r.json").read_text(encoding="utf-8")
    assert str(tmp_path) not in saved
    assert json.loads(saved)[0]["model"]["checkpoint"] == "../runs/r1/checkpoints/best.ckpt"


def test_relative_paths_rewrites_path_keys_and_absolute_strings(tmp_path, monkeypatch):
    from mrparotid.io.paths import display_path, relative_paths

    monkeypatch.chdir(tmp_path)
    obj = {"model": {"checkpoint": "runs/x/best.ckpt"}, "note": "an absolute path inside text /x",
           "file": str(tmp_path / "out" / "a.png"), "sources": [str(tmp_path / "s.json")], "n": 3}
    assert relative_paths(obj, tmp_path / "out") == {
        "model": {"checkpoint": "../runs/x/best.ckpt"}, "note": "an absolute path inside text /x",
        "file": "a.png", "sources": ["../s.json"], "n": 3}
    assert display_path(tmp_path / "a" / "b.txt", tmp_path / "a") == "b.txt"
