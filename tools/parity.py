"""Accuracy parity of mixed precision (never run by the tests at full size):
``python tools/parity.py [--patients 60] [--image-size 224] [--epochs 40] [--out DIR]``.

Trains the default recipe twice on the same SYNTHETIC phantom cohort, seed and split: once with
``trainer.precision: 32-true`` and once with ``--compare`` (default ``auto``, which is
``bf16-mixed`` where the hardware runs bf16 natively). Prints slice and patient (rule) accuracy of
each on the test and validation patients, and the difference (compare - 32-true) with a paired
patient-clustered bootstrap CI (:func:`mrparotid.evaluation.bootstrap.bootstrap_paired_difference`):
parity holds when the slice difference lies within +-0.01 or its CI includes 0. Writes
``parity.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def run_fit(manifest: Path, out: Path, overrides: list[str]) -> tuple[dict, float]:
    """One ``fit`` of the default recipe with ``overrides``; (summary, wall seconds)."""
    from mrparotid.config import load_config
    from mrparotid.training.fit import fit

    t0 = time.perf_counter()
    summary = fit(load_config(None, overrides), manifest=manifest, out_dir=out, progress=False,
                  evaluate=False, overwrite=True)
    return summary, time.perf_counter() - t0


def paired(run_a: Path, run_b: Path, split: str, n_boot: int, rule_n: int) -> dict | None:
    """Slice and patient accuracy of two runs on one split and their paired differences (a - b)."""
    from mrparotid.evaluation.bootstrap import bootstrap_paired_difference
    from mrparotid.evaluation.metrics import patient_metrics
    from mrparotid.evaluation.predictions import read_predictions

    paths = [run / f"predictions_{split}.csv" for run in (run_a, run_b)]
    if not all(p.exists() for p in paths):
        return None
    a, b = (read_predictions(p) for p in paths)
    key = ["patient_id", "side", "index"]
    both = a.merge(b, on=key, suffixes=("_a", "_b"), validate="one_to_one")
    if len(both) != len(a) or len(both) != len(b) or not (both["true_a"] == both["true_b"]).all():
        raise SystemExit(f"{split}: the two runs did not predict the same slices (different splits?)")
    ok_a = (both["true_a"] == both["pred_a"]).to_numpy(float)
    ok_b = (both["true_b"] == both["pred_b"]).to_numpy(float)
    ids = both["patient_id"].to_numpy(str)
    tables = [patient_metrics(df, malignant_min_slices=rule_n)[1].set_index("patient_id")
              for df in (a, b)]
    pids = sorted(tables[0].index)
    pat_a, pat_b = (t.loc[pids, "rule_correct"].to_numpy(float) for t in tables)
    return {"slices": len(both), "patients": len(pids),
            "slice_accuracy": [float(ok_a.mean()), float(ok_b.mean())],
            "patient_accuracy": [float(pat_a.mean()), float(pat_b.mean())],
            "patients_correct": [int(pat_a.sum()), int(pat_b.sum())],
            "slice_difference": bootstrap_paired_difference(ids, np.mean, (ok_a,), (ok_b,), n_boot=n_boot),
            "patient_difference": bootstrap_paired_difference(np.array(pids), np.mean, (pat_a,), (pat_b,),
                                                              n_boot=n_boot)}


def verdict(diff: dict) -> str:
    """Which parity criterion holds for a slice-accuracy difference."""
    within = abs(diff["estimate"]) <= 0.01
    covers = diff["lo"] <= 0 <= diff["hi"]
    if within and covers:
        return "parity: the difference is within +-0.01 and its CI includes 0"
    if within or covers:
        return f"parity: {'the difference is within +-0.01' if within else 'its CI includes 0'}"
    return "NO parity: the difference is outside +-0.01 and its CI excludes 0"


def main() -> None:
    from mrparotid.runtime import tune_malloc

    tune_malloc()            # as the CLI does: the same speed as `mrparotid fit` (results unchanged)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=60, help="phantom cohort size (default 60)")
    ap.add_argument("--image-size", type=int, default=None, help="crop size (default: the recipe's, 224)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's, 40)")
    ap.add_argument("--compare", default="auto", help="the precision compared with 32-true (default auto)")
    ap.add_argument("--seed", type=int, default=42, help="training seed of both runs")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap replicates")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mrparotid-parity")
    a = ap.parse_args()

    from mrparotid.data.phantom import make_cohort
    from mrparotid.io.atomic import write_json

    manifest = a.out / f"cohort-{a.patients}" / "manifest.csv"
    if not manifest.exists():
        make_cohort(manifest.parent, a.patients, seed=0, progress=False)
    common = ["--seed", str(a.seed)]
    common += ["--data.image_size", str(a.image_size)] if a.image_size else []
    common += ["--trainer.max_epochs", str(a.epochs)] if a.epochs else []
    runs, result = {}, {"synthetic": True, "patients": a.patients, "overrides": common, "runs": {}}
    for name, prec in (("compare", a.compare), ("32-true", "32-true")):
        out = a.out / f"run-{prec}"
        summary, seconds = run_fit(manifest, out, common + ["--trainer.precision", prec])
        runs[name] = out
        result["runs"][name] = {"requested": prec, "precision": summary["precision"],
                                "wall_s": round(seconds, 1), "run_dir": str(out)}
    chosen = result["runs"]["compare"]["precision"]["trainer"]
    print(f"SYNTHETIC phantom cohort, {a.patients} patients, overrides {' '.join(common) or '(none)'}")
    for name, r in result["runs"].items():
        print(f"  {name:>8}: trained at {r['precision']['trainer']} ({r['precision']['reason']}), "
              f"{r['wall_s']:.0f} s")
    if chosen == "32-true":
        print(f"note: {a.compare} chose 32-true on this machine, so both runs are 32-true; "
              "use --compare bf16-mixed to measure bf16 anyway")
    print("\n| split | precision | slices | slice accuracy | patients correct (rule) |\n|---|---|---|---|---|")
    for split in ("test", "val"):
        res = paired(runs["compare"], runs["32-true"], split, a.boot, 2)
        result[split] = res
        if res is None:
            continue
        for i, label in enumerate((chosen, "32-true")):
            print(f"| {split} | {label} | {res['slices']} | {res['slice_accuracy'][i]:.3f} | "
                  f"{res['patients_correct'][i]}/{res['patients']} ({res['patient_accuracy'][i]:.2f}) |")
    for split in ("test", "val"):
        res = result.get(split)
        if res:
            s, p = res["slice_difference"], res["patient_difference"]
            print(f"\n{split}: {chosen} - 32-true, slice accuracy {s['estimate']:+.4f} "
                  f"[95% CI {s['lo']:+.4f}, {s['hi']:+.4f}] (patient bootstrap, B={s['n_boot']}, "
                  f"{s['n_patients']} patients); patient accuracy {p['estimate']:+.3f} "
                  f"[{p['lo']:+.3f}, {p['hi']:+.3f}]\n{split}: {verdict(s)}")
    write_json(a.out / "parity.json", result)
    print(f"\nwritten: {a.out / 'parity.json'}")


if __name__ == "__main__":
    main()
