"""The command line answers --help at once and maps errors to one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "mrparotid", "--version"], capture_output=True, text=True)
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
