"""Atomic outputs reach the disk: the new file's data is fsynced before the rename, and its
folder after it (POSIX), so a power cut leaves the old file or the whole new one, never an
empty or partial file under the final name."""

from __future__ import annotations

import os
import stat

import pytest

from mrparotid.io.atomic import atomic_path, write_text


@pytest.fixture
def events(monkeypatch):
    """(what, detail) of every fsync (of a file: its size; of a folder) and rename, in order."""
    seen: list[tuple[str, object]] = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd):
        info = os.fstat(fd)
        seen.append(("fsync folder", None) if stat.S_ISDIR(info.st_mode) else ("fsync file", info.st_size))
        return fsync(fd)

    def spy_replace(src, dst):
        seen.append(("rename", os.path.basename(dst)))
        return replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    return seen


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, events):
    write_text(tmp_path / "summary.json", "{}\n")
    assert events[:2] == [("fsync file", 3), ("rename", "summary.json")]
    if os.name == "posix":
        assert events[2:] == [("fsync folder", None)]


def test_a_failed_write_syncs_and_renames_nothing(tmp_path, events):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "page.html") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert events == [] and list(tmp_path.iterdir()) == []
