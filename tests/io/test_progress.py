"""Progress without a terminal: one plain line per stage on stderr, never ``\\r`` fragments; a
live tqdm bar on a terminal."""

from __future__ import annotations

import io

from mrparotid.cli.main import main


def test_phantom_without_a_terminal_writes_one_line_and_no_carriage_return(tmp_path, capfd):
    assert main(["phantom", str(tmp_path / "c"), "--patients", "2"]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("phantom patients (SYNTHETIC): 2 patient(s) in ")


def test_stage_line_counts_and_says_how_many_of_how_many(capsys):
    from mrparotid.io import progress

    bar = progress.progress_bar(range(3), desc="cache", unit="patient")
    assert isinstance(bar, progress.StageLine)         # stderr is captured: not a terminal
    seen = []
    for i in bar:
        bar.set_postfix_str(f"P{i}")                   # live detail: not in the log
        seen.append(i)
    assert seen == [0, 1, 2]
    err = capsys.readouterr().err
    assert err.startswith("cache: 3 patient(s) in ") and err.count("\n") == 1 and "P1" not in err
    with progress.StageLine(desc="convert", unit="patient", total=5) as manual:
        manual.update(2)                               # stopped early: says how far it got
    assert capsys.readouterr().err.startswith("convert: 2 of 5 patient(s) in ")
    list(progress.progress_bar(range(3), desc="quiet", enabled=False))
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_tqdm(monkeypatch):
    from tqdm.auto import tqdm

    from mrparotid.io import progress

    assert progress.on_terminal(io.StringIO()) is False
    monkeypatch.setattr(progress, "on_terminal", lambda stream=None: True)
    bar = progress.progress_bar(range(2), desc="x", enabled=True)
    assert isinstance(bar, tqdm)
    bar.close()
