"""Seed-to-seed spread of the patient answer, in each precision (never run by the tests):

    python tools/stability.py -m c160/manifest.csv --out stab --seeds 1 2 3 \\
        --precisions bf16-mixed 32-true -- --data.image_size 112 --trainer.max_epochs 20 ...

Trains the default recipe once per (seed, precision) on the same cohort and split (``seed`` only
changes the initial weights and the augmentation draws), each run choosing its checkpoint and its
decision record on its validation patients, and scores it on the test patients. Prints and writes
(``stability.json``) per run: the rule's patient accuracy and malignant sensitivity, the answer's
coverage, refer rate, accuracy and malignant sensitivity among the answered, and the largest
epoch-to-epoch move of the validation figure that chose the checkpoint in the second half of
training; then per precision the mean and range over seeds. Runs that exist (``summary.json``)
are read, not retrained.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def run_one(manifest: Path, out: Path, seed: int, precision: str, overrides: list[str]) -> dict:
    """One fit (or the finished one in ``out``) → its figures."""
    from mrparotid.config import load_config
    from mrparotid.training.fit import fit

    t0 = time.perf_counter()
    if not (out / "summary.json").is_file():
        fit(load_config(None, ["--seed", str(seed), "--trainer.precision", precision, *overrides]),
            manifest=manifest, out_dir=out, progress=False, overwrite=True)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text(encoding="utf-8"))
    rates = metrics["answer"]["patient"]["rates"]
    curve = [v for v in next(iter(summary.get("validation_curve", {}).values()), []) if v is not None]
    half = curve[len(curve) // 2:]
    swing = max((abs(b - a) for a, b in zip(half, half[1:])), default=float("nan"))
    rule = metrics["patient"]["rule"]

    def kn(r: dict) -> list:
        return [r.get("k"), r.get("n"), r.get("estimate")]

    return {"seed": seed, "precision": precision, "wall_s": round(time.perf_counter() - t0, 1),
            "rule_accuracy": kn(rule["accuracy"]),
            "rule_sensitivity": kn(rule["benign_vs_malignant"]["sensitivity"]),
            **{f"answer_{k}": kn(rates[k]) for k in ("coverage", "refer", "accuracy", "sensitivity", "specificity")},
            "operating_point": metrics["answer"]["operating_point"],
            "val_curve": curve, "second_half_max_move": swing, "chosen_by": summary.get("model_checkpoint")}


def spread(rows: list[dict], key: str) -> str:
    vals = [r[key][2] for r in rows if r[key][2] is not None]
    if not vals:
        return "n/a"
    return f"{sum(vals) / len(vals):.3f} (range {min(vals):.3f}-{max(vals):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--manifest", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--precisions", nargs="+", default=["bf16-mixed", "32-true"])
    args, overrides = parser.parse_known_args()
    overrides = [o for o in overrides if o != "--"]
    from mrparotid.runtime import tune_malloc

    tune_malloc()
    rows = []
    for precision in args.precisions:
        for seed in args.seeds:
            row = run_one(args.manifest, args.out / f"{precision}-seed{seed}", seed, precision, overrides)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "val_curve"}), flush=True)
    table = {}
    for precision in args.precisions:
        sub = [r for r in rows if r["precision"] == precision]
        table[precision] = {k: spread(sub, k) for k in ("rule_accuracy", "rule_sensitivity", "answer_coverage",
                                                        "answer_refer", "answer_accuracy", "answer_sensitivity",
                                                        "answer_specificity")}
        table[precision]["second_half_max_move"] = max(r["second_half_max_move"] for r in sub)
        print(precision, json.dumps(table[precision]))
    (args.out / "stability.json").write_text(json.dumps({"runs": rows, "summary": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
