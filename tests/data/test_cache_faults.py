"""The crop cache survives faults: a prepare killed at a random moment and re-run gives the cache
of an uninterrupted run; a truncated entry is rebuilt, never loaded; a full disk stops with one
line naming the path and leaves no partial file; two prepares at once share the cache."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mrparotid.cli.main import main
from mrparotid.config import load_config
from mrparotid.data.cache import entry_complete, prepare_cohort
from mrparotid.io.manifest import read_manifest
from patients import write_cohort

ROWS = [(f"P{i:02d}", ("pleomorphic_adenoma", "warthin", "malignant")[i % 3],
         {"tumour_side": "LR"[i % 2]}) for i in range(6)]
SMALL = ["--data.image_size", "32"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("cachefault"), ROWS)


def _prepare_cmd(manifest: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mrparotid", "prepare", str(manifest), "-q", *SMALL,
            "--data.cache_dir", str(cache), *extra]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _contents(cache: Path) -> dict[str, dict]:
    """Entry name -> its arrays (the .npz bytes carry zip timestamps, so arrays are compared)."""
    out = {}
    for path in sorted(cache.glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            out[path.name] = {k: z[k] for k in z.files}
    return out


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[n].keys() == b[n].keys() and all(np.array_equal(a[n][k], b[n][k]) for k in a[n]) for n in a)


@pytest.fixture(scope="module")
def reference(manifest):
    """The cache of an uninterrupted prepare, and how long that subprocess ran (s)."""
    cache = manifest.parent / "reference_cache"
    start = time.monotonic()
    subprocess.run(_prepare_cmd(manifest, cache), check=True, env=_env(), capture_output=True)
    return _contents(cache), time.monotonic() - start


def test_prepare_killed_at_a_random_moment_then_rerun_gives_the_same_cache(manifest, reference):
    contents, seconds = reference
    cache = manifest.parent / "killed_cache"
    proc = subprocess.Popen(_prepare_cmd(manifest, cache), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(cache.glob("*.npz")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)                      # prepare has begun writing entries ...
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.5) * seconds / len(ROWS))
    proc.send_signal(signal.SIGKILL)           # ... then kill it at a random moment
    proc.wait()
    assert all(entry_complete(p) for p in cache.glob("*.npz"))   # never a truncated entry
    cfg = load_config(None, [*SMALL, "--data.cache_dir", str(cache)])
    prepare_cohort(read_manifest(manifest), cfg, progress=False)
    assert _same(_contents(cache), contents)
    assert not list(cache.glob(".*.tmp*"))                           # no temporary left


def test_truncated_entry_is_rebuilt_not_loaded(manifest, tmp_path):
    cfg = load_config(None, [*SMALL, "--data.cache_dir", str(tmp_path)])
    first = prepare_cohort(read_manifest(manifest), cfg, progress=False)
    entry = first.entries["P02"]
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])   # an old, cut-short write
    again = prepare_cohort(read_manifest(manifest), cfg, progress=False)
    assert again.built == 1 and entry_complete(entry)


def test_full_disk_gives_one_line_and_no_partial_file(manifest, tmp_path, monkeypatch, capsys):
    def full_disk(file, *args, **kwargs):
        Path(file).write_bytes(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    cache = tmp_path / "cache"
    assert main(["prepare", str(manifest), "-q", *SMALL, "--data.cache_dir", str(cache)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err and str(cache) in err
    assert [p.name for p in cache.iterdir() if p.name != ".lock"] == []   # nothing half-written


def test_two_prepares_at_once_share_the_cache(manifest, reference, tmp_path):
    cache = tmp_path / "shared"
    procs = [subprocess.Popen(_prepare_cmd(manifest, cache, "--json", str(tmp_path / f"{i}.json")),
                              env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    built = [json.loads((tmp_path / f"{i}.json").read_text(encoding="utf-8"))["built"] for i in range(2)]
    assert sorted(built) == [0, len(ROWS)]               # one prepared, the other waited and reused
    assert _same(_contents(cache), reference[0])
