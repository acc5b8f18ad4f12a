"""``mrparotid serve`` on the command line: bad settings and a missing folder give one line and
exit 2 before any model is loaded; ``--help`` shows a full example; ``--status`` reads a folder."""

from __future__ import annotations

import json

from mrparotid.cli.main import main
from mrparotid.serve.queue import StudyQueue


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrparotid: error:"), err
    return err[0]


def test_bad_settings_are_one_line_exit_2(tmp_path, capsys):
    base = ["serve", "--out", str(tmp_path / "o"), "--checkpoint", str(tmp_path / "missing.ckpt")]
    cases = [([], "node.allow is empty"),
             (["--allow", "MOD"], "no destination"),
             (["--allow", "MOD", "--send-to", "PACS@host"], "not AE@host:port"),
             (["--allow", "MOD", "--send-to", "P@h:104", "--port", "70000"], "node.port"),
             (["--allow", "MOD", "--send-to", "P@h:104", "--node.idle", "3"], "unknown config key"),
             (["--allow", "MOD", "--send-to", "P@h:104", "--tls.enabled", "true"], "tls.cert"),
             (["--allow", "MOD", "--send-to", "P@h:104"], "missing.ckpt")]
    for extra, words in cases:
        assert main([*base, *extra]) == 2
        assert words in one_error_line(capsys)
    assert not (tmp_path / "o").exists()           # refused before the node made its folder


def test_help_has_a_full_example(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--allow MODALITY1 --send-to PACS@" in out and "storescu" in out and "--status" in out


def test_status_of_a_folder(tmp_path, capsys):
    assert main(["serve", "--status", "--out", str(tmp_path)]) == 2
    assert "not a serve folder" in one_error_line(capsys)
    queue = StudyQueue(tmp_path)
    queue.store("1.2.3", "1.2.3.4", b"x")
    job = queue.fail(queue.claim(queue.idle(0.0)[0], 0.0), "inference", "no T2 series")
    done = tmp_path / "done" / "abc-1"
    done.mkdir()
    (done / "summary.json").write_text(json.dumps({
        "key": "abc", "instances": 60, "answer": "refer", "diagnosis": "warthin", "p_malignant": 0.31,
        "sent": ["SEG.dcm", "SR.dcm"], "destination": "PACS@h:104", "done_at": 0,
        "seconds_after_last_instance": 2.5}))
    assert main(["serve", "--status", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no node running" in out and "done: 1" in out and "answer refer" in out
    assert f"failed: 1\n  {job.name} (inference): no T2 series" in out
