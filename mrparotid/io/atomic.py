"""Atomic file output: write to a temporary name in the target's folder, then rename into place.

A reader never sees a half-written file: a kill, a full disk or an exception leaves either the old
file (or none) and no temporary behind (the temporary is removed on error; one left by SIGKILL is
named ``.<name>.tmp<pid>…`` and is never read as a result).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mrparotid.errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that choose the format by
    suffix still work); rename it onto ``path`` when the block ends without error.

    Raises
    ------
    OutputError
        The folder cannot be written or the disk is full; nothing is left behind.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp{os.getpid()}", suffix=suffix,
                                        dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=path,
                          fix="choose a folder you can write to") from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=path,
                          fix="free disk space or choose a folder you can write to") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
