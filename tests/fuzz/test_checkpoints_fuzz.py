"""Fuzzed checkpoints: every single mutation (delete, retype, out of range, extra key) of every
place of a real tiny classifier's and segmenter's record, and of their weights, gives a clean load
(whose network then answers with finite numbers) or one CheckpointError line; never a traceback.
The model loaders see every case, the resume reader every fourth. ``tools/fuzz.py`` stacks them."""

from __future__ import annotations

import pytest
from fuzz_checkpoints import KINDS, all_cases, make_seeds, run_case


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("fuzz_checkpoints"))


@pytest.mark.parametrize("loader", ["load", "resume"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_checkpoints_written_today_load(seeds, tmp_path, kind, loader):
    assert run_case(kind, [], seeds, tmp_path, loader) == ("read", "")


def test_every_mutated_record_loads_or_fails_in_one_line(seeds, tmp_path):
    cases = all_cases(seeds)
    assert len(cases) >= 200
    outcomes, bad = {"read": 0, "error": 0, "BAD": 0}, []
    for n, case in enumerate(cases):
        for loader in ("load", "resume") if n % 4 == 0 else ("load",):
            outcome, detail = run_case(case.kind, [case], seeds, tmp_path / "case", loader)
            outcomes[outcome] += 1
            if outcome == "BAD":
                bad.append(f"{loader} {case}: {detail}")
    assert not bad, f"{len(bad)} of {sum(outcomes.values())} cases:\n" + "\n".join(bad[:20])
    assert outcomes["error"] > 0.5 * len(cases)      # most mutations are refused, not read
