"""Fuzz the readers for longer than the test suite does: every mutation of
``tests/support/fuzz_readers.py`` many times, for ``--seconds`` (default 120).

    python tools/fuzz.py --seconds 120

Prints the cases tried and the cases that were not a clean read or one error line, with their
details (exit 1 when there are any).
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_fuzz = importlib.import_module("fuzz_readers")    # tests/support, a test helper, not a dependency
MUTATIONS, make_seeds, run_case = _fuzz.MUTATIONS, _fuzz.make_seeds, _fuzz.run_case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tried, outcomes, bad = 0, Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        seeds = make_seeds(Path(tmp) / "seeds")
        end = time.monotonic() + args.seconds
        names = sorted(MUTATIONS)
        while time.monotonic() < end:
            name = names[tried % len(names)]
            case_seed = rng.randrange(2 ** 32)
            outcome, detail = run_case(name, seeds, Path(tmp) / f"case{tried}", random.Random(case_seed))
            outcomes[(name, outcome)] += 1
            if outcome == "BAD":
                bad.append((name, case_seed, detail))
            tried += 1
    print(f"cases tried: {tried}")
    print(f"cases not a clean read or one error line: {len(bad)}")
    for name in sorted(MUTATIONS):
        print(f"  {name:<28} read {outcomes[(name, 'read')]:>4}  error {outcomes[(name, 'error')]:>4}  "
              f"bad {outcomes[(name, 'BAD')]:>3}")
    for name, case_seed, detail in bad[:40]:
        print(f"  BAD {name} (case seed {case_seed}): {detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
