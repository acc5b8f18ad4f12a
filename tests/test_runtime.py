"""Tests for the process-wide allocator setting (mrparotid.runtime)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from mrparotid import runtime


class FakeLibc:
    def __init__(self, answer: int = 1):
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.answer


@pytest.fixture
def fresh(monkeypatch):
    """A process where tune_malloc has not run yet, with a fake glibc."""
    monkeypatch.setattr(runtime, "_state", {})
    libc = FakeLibc()
    monkeypatch.setattr(runtime, "_glibc", lambda: libc)
    return libc


def test_glibc_gets_no_mmap_and_a_high_trim_threshold(fresh):
    said = runtime.tune_malloc({})
    assert fresh.calls == [(runtime.M_MMAP_MAX, 0), (runtime.M_TRIM_THRESHOLD, runtime.TRIM_THRESHOLD)]
    assert "kept in the heap" in said
    assert runtime.tune_malloc({}) == said and len(fresh.calls) == 2     # once per process


@pytest.mark.parametrize("environ", [{"MRPAROTID_MALLOC": "default"}, {"MALLOC_ARENA_MAX": "2"},
                                     {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"},
                                     {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}])
def test_left_alone_when_the_user_chose_an_allocator(fresh, environ):
    assert runtime.tune_malloc(environ).startswith("allocator left alone")
    assert fresh.calls == []


def test_a_refusal_keeps_the_defaults_and_says_so(monkeypatch):
    monkeypatch.setattr(runtime, "_state", {})
    monkeypatch.setattr(runtime, "_glibc", lambda: FakeLibc(answer=0))
    assert "refused" in runtime.tune_malloc({})


def test_not_glibc(monkeypatch):
    monkeypatch.setattr(runtime, "_state", {})
    monkeypatch.setattr(runtime, "_glibc", lambda: None)
    assert runtime.tune_malloc({}) == "allocator left alone: not glibc"


def test_the_cli_tunes_before_anything_else(monkeypatch):
    import importlib

    cli = importlib.import_module("mrparotid.cli.main")

    called = []
    monkeypatch.setattr(cli, "tune_malloc", lambda: called.append(True))
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert called == [True]


def test_the_trim_threshold_fits_a_c_int_and_the_log_names_it(fresh):
    int_max = 2 ** (8 * ctypes.sizeof(ctypes.c_int) - 1) - 1
    said = runtime.tune_malloc({})
    value = dict(fresh.calls)[runtime.M_TRIM_THRESHOLD]
    assert 2 ** 30 <= value <= int_max            # at least 1 GiB, and what mallopt's int holds
    assert f"M_TRIM_THRESHOLD {value} bytes" in said and "4 GiB" not in said
    with pytest.raises(ValueError, match="does not fit a C int"):
        runtime.c_int(4 * 1024 ** 3)


# What glibc then does: a freed 64 MiB block at the top of the heap stays there (mallinfo2's
# keepcost, the releasable top), where a trim threshold of 0 hands it back at once.
PROBE = """
import ctypes
from mrparotid import runtime

print(runtime.tune_malloc({}))
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
mapped = libc.mallinfo2().hblkhd
block = libc.malloc(64 << 20)
mapped = libc.mallinfo2().hblkhd - mapped
libc.free(block)
print(mapped, libc.mallinfo2().keepcost)
"""


def test_glibc_keeps_a_freed_large_block_in_the_heap():
    libc = runtime._glibc() if sys.platform.startswith("linux") else None
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    chosen = ("MALLOC_", "GLIBC_TUNABLES", "MRPAROTID_")     # what would leave glibc alone
    env = {k: v for k, v in os.environ.items() if not k.startswith(chosen)}
    env["LD_PRELOAD"] = ""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, encoding="utf-8", env=env,
                         check=True).stdout.splitlines()
    assert out[0].startswith("glibc malloc: large blocks kept in the heap")
    mmapped, keepcost = map(int, out[1].split())
    assert mmapped == 0                       # M_MMAP_MAX 0: from the heap, not a fresh mmap
    assert keepcost >= 64 << 20               # M_TRIM_THRESHOLD high: kept after free
