"""Tests for the process-wide allocator setting (mrparotid.runtime)."""

from __future__ import annotations

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
