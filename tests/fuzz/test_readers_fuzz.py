"""Fuzzed readers: every mutated NIfTI/NRRD/MHA file, DICOM series, RTSTRUCT, manifest and config
gives a correct read or one typed error line; never a traceback, a hang (> 30 s) or a silently
wrong array. A few examples per mutation here; ``tools/fuzz.py`` runs many."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_readers import MUTATIONS, make_seeds, run_case

EXAMPLES = 10


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("fuzz_seeds"))


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutated_input_reads_or_fails_in_one_line(seeds, mutation):
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case_seed=st.integers(0, 2 ** 32 - 1))
    def check(case_seed):
        with tempfile.TemporaryDirectory() as tmp:
            outcome, detail = run_case(mutation, seeds, Path(tmp) / "case", random.Random(case_seed))
        assert outcome in ("read", "error"), f"{mutation} (case seed {case_seed}): {detail}"

    check()
