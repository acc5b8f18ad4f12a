"""The folds of a cross-validation, trained and pooled: one ``fit`` per fold, then the pooled
out-of-fold evaluation where each patient is answered by its own fold's decision record. Used by
``fit --cv K`` (:mod:`mrparotid.training.cv`) and by leave-one-centre-out
(:mod:`mrparotid.training.loco`)."""

from __future__ import annotations

import json
from pathlib import Path

from mrparotid.training.fit import fit

CV_PLAN = "cv_plan"   # cv_plan.json: k and the folds, saved before the first fold trains


def run_folds(cfg: dict, folds: list[dict], manifest_path: Path, root: Path, *, progress: bool,
              overwrite: bool, resume: bool) -> dict:
    """Train and evaluate each fold in ``root/fold<i>``: ``{"summaries", "predictions" (the
    folds' test predictions, concatenated), "records" (patient → its fold's decision record,
    chosen on that fold's validation only), "fold_metrics" (each fold's metrics.json)}``."""
    import pandas as pd

    from mrparotid.evaluation.predictions import read_predictions
    from mrparotid.training.decision import run_record

    summaries, frames, records, fold_metrics = [], [], {}, []
    for i, splits in enumerate(folds):
        fold_dir = root / f"fold{i + 1}"
        s = fit(cfg, manifest=manifest_path, out_dir=fold_dir, splits=splits,
                progress=progress, evaluate=True, overwrite=overwrite, resume=resume)
        summaries.append(s)
        frames.append(read_predictions(fold_dir / "predictions_test.csv"))
        record = run_record(s)             # chosen on this fold's validation only
        records.update({pid: record for pid in splits["test"]})
        fold_metrics.append(json.loads((fold_dir / "evaluation" / "metrics.json").read_text(encoding="utf-8")))
    return {"summaries": summaries, "predictions": pd.concat(frames, ignore_index=True),
            "records": records, "fold_metrics": fold_metrics}


def pool_folds(cfg: dict, run: dict, root: Path, *, synthetic: bool, title: str) -> dict:
    """``root/predictions_oof.csv`` and its evaluation in ``root/pooled`` (each patient answered by
    its own fold's record); returns the metrics."""
    from mrparotid.evaluation.evaluate import evaluate_predictions
    from mrparotid.evaluation.predictions import write_predictions

    k = len(run["summaries"])
    write_predictions(run["predictions"], root / "predictions_oof.csv", synthetic=synthetic)
    return evaluate_predictions(root / "predictions_oof.csv", root / "pooled", decision=run["records"],
                                decision_source=f"each of the {k} folds' own record, chosen on that fold's "
                                                "validation patients, answers that fold's test patients",
                                malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]),
                                synthetic=synthetic, title=title)
