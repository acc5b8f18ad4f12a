"""Packaging: what the package imports is what pyproject.toml declares (checked by deptry)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_imports_match_declared_dependencies():
    deptry = shutil.which("deptry")
    if deptry is None:
        pytest.skip("deptry is not installed (pip install -e '.[test]' installs it)")
    proc = subprocess.run([deptry, "."], cwd=REPO, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

