"""`make demo`: SYNTHETIC phantom cohort → short fit → diagnose one held-out patient."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run(*args: str) -> None:
    print("+ mrparotid " + " ".join(args), flush=True)
    code = subprocess.call([sys.executable, "-m", "mrparotid", *args])
    if code:
        sys.exit(code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default="demo")
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=20)
    a = ap.parse_args()
    root = Path(a.dir)
    manifest = root / "cohort" / "manifest.csv"
    if not manifest.exists():
        run("phantom", str(root / "cohort"), "--patients", str(a.patients))
    run_dir = root / "run"
    run("fit", "--manifest", str(manifest), "--out", str(run_dir), "--overwrite",
        "--trainer.max_epochs", str(a.epochs))
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    patient = summary["splits"]["test"][0]
    run("diagnose", str(root / "cohort" / "patients" / patient), "--checkpoint",
        str(run_dir / "checkpoints" / "best.ckpt"), "--json", str(root / f"{patient}.json"))


if __name__ == "__main__":
    main()
