"""Report-stage fixtures: one diagnosed, explained tiny patient (module scope)."""

from __future__ import annotations

import pytest

from explained import Explained, explained_patient


@pytest.fixture(scope="module")
def explained(tmp_path_factory) -> Explained:
    return explained_patient(tmp_path_factory.mktemp("explained"), bilateral=True)
