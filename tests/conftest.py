"""Fixtures shared by every test. Helpers that build patients live in ``tests/support`` (on the
import path through ``pythonpath`` in pyproject.toml): ``patients`` (hand-made patient folders),
``dicom_fixtures`` (the real vendor series in ../shared), ``shared_dir``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Never touch the user's default phantom cohort (``$MRPAROTID_HOME``)."""
    monkeypatch.setenv("MRPAROTID_HOME", str(tmp_path_factory.getbasetemp() / "mrparotid_home"))


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory) -> Path:
    """Three SYNTHETIC phantom patients (one per diagnosis); the manifest path. Read only."""
    from mrparotid.data.phantom import make_cohort

    return make_cohort(tmp_path_factory.mktemp("phantom"), 3, seed=0, progress=False)
