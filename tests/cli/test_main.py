"""The command line answers --help at once and maps errors to one line and exit code 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from mrparotid.cli.main import build_parser, main

VERBS = ["phantom", "prepare", "fit", "ablate", "diagnose", "evaluate"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"mrparotid {verb}" in out
    assert "example" in out.lower()


def test_help_does_not_import_torch():
    code = "import sys; from mrparotid.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True)
    assert out.stdout.strip() == "False"


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "mrparotid", "--version"], capture_output=True, text=True, encoding="utf-8")
    assert out.returncode == 0 and "mrparotid" in out.stdout


def test_ablate_needs_channels(capsys):
    assert main(["ablate", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--channels" in err[0]


def test_unknown_channel_is_one_line(capsys, tmp_path):
    assert main(["ablate", "--channels", "T1,FLAIR", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FLAIR" in err[0]


def test_evaluate_needs_predictions_or_checkpoint(capsys, tmp_path):
    assert main(["evaluate", "--out", str(tmp_path)]) == 2
    assert "--predictions" in capsys.readouterr().err


def test_parser_lists_all_verbs():
    text = build_parser().format_help()
    for verb in VERBS:
        assert verb in text


def test_console_script_on_path():
    """The installed ``mrparotid`` entry point itself, not only ``python -m mrparotid``."""
    exe = shutil.which("mrparotid")
    if exe is None:
        pytest.skip("the mrparotid console script is not on PATH (pip install -e . puts it there)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("mrparotid ")


@pytest.mark.parametrize("target", ["afile/out", "/proc/mrparotid-x"])
def test_unwritable_output_is_one_line_exit_2(target, tmp_path, capsys):
    (tmp_path / "afile").write_text("a regular file\n", encoding="utf-8")
    out = target if target.startswith("/") else str(tmp_path / target)
    assert main(["phantom", out, "-n", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mrparotid: error: cannot write {out}")
    assert "choose a folder you can write to" in err[0]


def test_bad_override_type_is_one_line_before_any_work(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["fit", "--trainer.max_epochs", "two", "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trainer.max_epochs" in err[0] and "'two'" in err[0]
    assert time.perf_counter() - start < 1.0 and not (tmp_path / "r").exists()


def test_unknown_override_is_one_line(capsys):
    assert main(["fit", "--trainer.max_epochz", "1", "-q", "--out", "/nonexistent/never"]) == 2
    assert "max_epochz" in capsys.readouterr().err
    assert main(["fit", "--data.imagesize", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.imagesize" in err[0]
