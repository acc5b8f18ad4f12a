"""Atomic outputs get the permissions of a plain write (mkstemp alone would give 0600, so
colleagues and a web server could not read a report page)."""

from __future__ import annotations

import os

from mrparotid.io.atomic import write_text


def test_atomic_files_have_the_modes_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "page.html", "<p>x</p>")
        (tmp_path / "plain.html").write_text("<p>x</p>")
    finally:
        os.umask(old)
    mode = (tmp_path / "page.html").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.html").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_umask_is_never_changed(tmp_path, monkeypatch):
    """Another thread creating a file meanwhile must not get mode 0666 from a umask of 0."""
    def no_umask(mask):
        raise AssertionError(f"os.umask({mask:#o}) changes the umask of every thread")

    monkeypatch.setattr(os, "umask", no_umask)
    write_text(tmp_path / "page.html", "<p>x</p>")
    assert (tmp_path / "page.html").read_text() == "<p>x</p>"


def test_a_private_umask_gives_private_outputs(tmp_path):
    old = os.umask(0o077)
    try:
        write_text(tmp_path / "page.html", "<p>x</p>")
    finally:
        os.umask(old)
    assert (tmp_path / "page.html").stat().st_mode & 0o777 == 0o600
