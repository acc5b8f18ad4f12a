"""Paths as outputs show them: relative to the output folder they are written into (a page's
folder, a JSON file's folder), ``/``-separated, so that outputs carry no absolute local paths and
still lead to their files when the output and run folders are moved together.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path, PurePosixPath

from mrparotid.errors import MrParotidError


def display_path(path: str | Path, base: str | Path) -> str:
    """``path`` relative to the folder ``base`` (both taken from the working folder when
    relative), ``/``-separated; the file name alone where no relative path exists (another
    drive on Windows)."""
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    except ValueError:
        return Path(path).name
    return PurePosixPath(*Path(rel).parts).as_posix()


def is_absolute_path(text: str) -> bool:
    """A string that is a whole absolute path (one line, starts at a root)."""
    return bool(text) and "\n" not in text and os.path.isabs(text)


#: Keys whose string values are paths (as given: absolute, or relative to the working folder).
PATH_KEYS = frozenset({"checkpoint", "segmenter", "sources"})


def relative_paths(obj, base: str | Path, *, path_keys: frozenset[str] = PATH_KEYS):
    """A copy of a JSON-like value in which the strings under ``path_keys`` (and lists of them)
    and every other string that is an absolute path are made relative to ``base``
    (:func:`display_path`)."""
    def walk(value, is_path: bool):
        if isinstance(value, str):
            return display_path(value, base) if is_path or is_absolute_path(value) else value
        if isinstance(value, dict):
            return {k: walk(v, k in path_keys) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v, is_path) for v in value)
        return value

    return walk(obj, False)


def error_line(err: BaseException, base: str | Path) -> str:
    """``str(err)``, with the file of an mrparotid error relative to ``base``."""
    if not isinstance(err, MrParotidError) or err.path is None:
        return str(err)
    shown = copy.copy(err)
    shown.path = display_path(err.path, base)
    return shown.format()
