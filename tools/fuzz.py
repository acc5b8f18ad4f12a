"""Fuzz the readers and the checkpoint loaders for longer than the test suite does, for ``--seconds``
(default 120) in all:

* readers (``tests/support/fuzz_readers.py``): NIfTI/NRRD/MHA files, DICOM series and headers,
  RTSTRUCTs, manifests and configs, every mutation in turn;
* checkpoints (``tests/support/fuzz_checkpoints.py``): real tiny classifier and segmenter
  checkpoints with 1 to 3 random record or weight mutations stacked, read by the model loaders
  and by the resume reader.

    python tools/fuzz.py --seconds 120 [--only checkpoints|readers] [--seed 0]

Prints how many inputs were tried, how many gave a traceback and how many another failure (not
a clean read or one typed error line: several lines, a hang, a wrong read or error type), per
mutation, with the details of the first 40; exit 1 when any input failed.
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

readers = importlib.import_module("fuzz_readers")        # tests/support: test helpers, not dependencies
checkpoints = importlib.import_module("fuzz_checkpoints")


def reader_input(seeds: dict, folder: Path, n: int, rng: random.Random) -> tuple[str, str, str, int]:
    """(mutation name, outcome, detail, case seed) of the ``n``-th reader input."""
    names = sorted(readers.MUTATIONS)
    name, case_seed = names[n % len(names)], rng.randrange(2 ** 32)
    outcome, detail = readers.run_case(name, seeds, folder, random.Random(case_seed))
    return name, outcome, detail, case_seed


def checkpoint_input(seeds: dict, folder: Path, n: int, rng: random.Random) -> tuple[str, str, str, int]:
    """(kind and loader, outcome, detail, case seed) of the ``n``-th checkpoint input."""
    case_seed = rng.randrange(2 ** 32)
    case_rng = random.Random(case_seed)
    kind = checkpoints.KINDS[n % len(checkpoints.KINDS)]
    loader = case_rng.choice(["load", "load", "resume"])
    stack = [checkpoints.random_case({kind: seeds[kind]}, case_rng) for _ in range(case_rng.randint(1, 3))]
    outcome, detail = checkpoints.run_case(kind, stack, seeds, folder, loader)
    return f"checkpoint {kind} ({loader})", outcome, detail + f" [{'; '.join(map(str, stack))}]", case_seed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("readers", "checkpoints"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    families = [f for f in ("readers", "checkpoints") if args.only in (None, f)]
    tried, outcomes, bad = 0, Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        makers = {"readers": readers.make_seeds, "checkpoints": checkpoints.make_seeds}
        seeds = {f: makers[f](Path(tmp) / f"{f}_seeds") for f in families}
        run = {"readers": reader_input, "checkpoints": checkpoint_input}
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            family = families[tried % len(families)]
            name, outcome, detail, case_seed = run[family](seeds[family], Path(tmp) / f"case{tried}",
                                                           tried // len(families), rng)
            if outcome == "BAD":
                outcome = "traceback" if detail.startswith("traceback:") else "other"
                bad.append((name, case_seed, outcome, detail))
            outcomes[(name, outcome)] += 1
            tried += 1
    tracebacks = sum(1 for b in bad if b[2] == "traceback")
    print(f"inputs tried: {tried}")
    print(f"inputs that gave a traceback: {tracebacks}")
    print(f"inputs that gave another failure (several lines, hang, wrong read or error type): "
          f"{len(bad) - tracebacks}")
    for name in sorted({n for n, _ in outcomes}):
        print(f"  {name:<36} read {outcomes[(name, 'read')]:>5}  error {outcomes[(name, 'error')]:>5}  "
              f"traceback {outcomes[(name, 'traceback')]:>3}  other {outcomes[(name, 'other')]:>3}")
    for name, case_seed, kind, detail in bad[:40]:
        print(f"  {kind.upper()} {name} (case seed {case_seed}): {detail}"[:400])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
