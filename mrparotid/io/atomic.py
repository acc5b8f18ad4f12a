"""Atomic file output: write to a temporary name in the target's folder, then rename into place.

A reader never sees a half-written file: a kill, a full disk or an exception leaves either the old
file (or none) and no temporary behind (the temporary is removed on error; one left by SIGKILL is
named ``.<name>.tmp<pid>…`` and is never read as a result). The temporary's data is flushed to disk
(``fsync``) before the rename and the folder after it where the platform allows, so a power cut
leaves the old file or the whole new one. The temporary is created with mode 0o666, so the
process umask gives it the permissions of a plain write; the umask itself is never changed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrparotid.errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that choose the format by
    suffix still work); fsync it and rename it onto ``path`` when the block ends without error.

    Raises
    ------
    OutputError
        The folder cannot be written or the disk is full; nothing is left behind.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    try:
        tmp = new_file(path.parent, f".{path.name}.tmp{os.getpid()}", suffix)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=path,
                          fix="choose a folder you can write to") from None
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=path,
                          fix="free disk space or choose a folder you can write to") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def new_file(folder: Path, prefix: str, suffix: str) -> Path:
    """A new empty file ``folder/<prefix><random><suffix>``, created exclusively with mode 0o666
    less the process umask (the permissions of a plain ``open(..., "w")``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        candidate = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(candidate, flags, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name in {folder}")


def fsync_path(path: Path) -> None:
    """Flush a written file's data and size to disk."""
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)   # Windows syncs writable handles
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the platform can (POSIX; not
    Windows, where a folder cannot be opened, nor file systems that refuse it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def json_ready(obj: Any) -> Any:
    """``obj`` as strict JSON values: non-finite floats become ``null`` (JSON has no NaN), numpy
    scalars and arrays plain numbers and lists, tuples lists, mapping keys strings."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):        # numpy scalar or array
        return json_ready(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON atomically (:func:`json_ready`; ``str`` of paths and other
    plain objects)."""
    write_text(path, json.dumps(json_ready(obj), indent=indent, default=str, allow_nan=False) + "\n")
