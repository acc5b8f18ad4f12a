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
