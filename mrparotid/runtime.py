"""Process-wide runtime settings for fast CPU tensors: large blocks stay in glibc's heap.

PyTorch allocates CPU tensors with ``malloc``. glibc serves a block above its mmap threshold
(128 KiB at start, raised dynamically up to at most 32 MiB) with a fresh ``mmap`` and unmaps it
on free, and returns free memory at the top of its heap to the system above its trim threshold.
A training step at 224 px allocates and frees many 10–100 MB tensors (augmented batch, sampling
grids, activations, gradients), so every step page-faults and zeroes them again: on the 2-core
machines here that costs about a fifth of the step. Serving every block from the heap
(``M_MMAP_MAX`` 0) and a high trim threshold (``M_TRIM_THRESHOLD`` :data:`TRIM_THRESHOLD`, the
largest value ``mallopt``'s C ``int`` holds: 2 GiB less one byte) keep such blocks for reuse.
PyTorch's CPU performance guide gets the same effect by preloading jemalloc or tcmalloc;
``mallopt`` does it from inside the process, with no extra library. (With ``M_MMAP_MAX`` 0 glibc
still falls back to ``mmap`` when the heap cannot grow.)

The resident size stays near the peak the process already reached instead of shrinking between
steps. ``MRPAROTID_MALLOC=default`` (or any ``MALLOC_*`` tunable, or a preloaded allocator)
leaves glibc's defaults alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``mallopt`` parameters (glibc ``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: Largest value of a C ``int``, the type of mallopt's value (a larger Python int is silently
#: truncated by ctypes: 4 GiB became a trim threshold of 0).
INT_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_int) - 1) - 1
#: Free memory at the top of the heap kept before it is returned to the system, bytes
#: (2 147 483 647: just under 2 GiB).
TRIM_THRESHOLD = INT_MAX

_state: dict[str, str] = {}


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]    # int mallopt(int param, int value)
        libc.mallopt.restype = ctypes.c_int
        return libc
    except (OSError, AttributeError):       # musl, or no libc found
        return None


def _left_alone(environ) -> str | None:
    """Why the allocator is left as it is, or None to tune it."""
    if environ.get("MRPAROTID_MALLOC", "").strip().lower() in {"default", "off", "0", "no"}:
        return "MRPAROTID_MALLOC asks for glibc's defaults"
    if any(k.startswith("MALLOC_") or k.startswith("GLIBC_TUNABLES") for k in environ):
        return "the environment sets glibc malloc tunables"
    if any(name in environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return "another allocator is preloaded"
    return None


def c_int(value: int) -> int:
    """``value`` unchanged if a C ``int`` holds it; a ValueError otherwise (ctypes would truncate it)."""
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise ValueError(f"{value} does not fit a C int (at most {INT_MAX})")
    return value


def tune_malloc(environ=None) -> str:
    """Raise glibc's mmap and trim thresholds once per process; returns what was done, in words
    (also when nothing was: not glibc, or left alone on request)."""
    if "done" in _state:
        return _state["done"]
    why = _left_alone(os.environ if environ is None else environ)
    libc = None if why else _glibc()
    if why is None and libc is None:
        why = "not glibc"
    if why is None:
        ok = (libc.mallopt(M_MMAP_MAX, 0) == 1
              and libc.mallopt(M_TRIM_THRESHOLD, c_int(TRIM_THRESHOLD)) == 1)
        why = (f"glibc malloc: large blocks kept in the heap for reuse (M_MMAP_MAX 0: no mmap; "
               f"M_TRIM_THRESHOLD {TRIM_THRESHOLD} bytes: free heap top returned to the system "
               "only above that)" if ok else "glibc refused the mallopt settings; defaults kept")
    else:
        why = f"allocator left alone: {why}"
    _state["done"] = why
    return why
