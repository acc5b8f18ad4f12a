"""``fit --cv K``: grouped (by patient), diagnosis-stratified K-fold cross-validation with per-fold
and pooled out-of-fold reports."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mrparotid.data.splits import patient_folds
from mrparotid.errors import ConfigError
from mrparotid.io.atomic import write_json
from mrparotid.training.fit import fit
from mrparotid.training.resume import read_plan, write_plan
from mrparotid.training.run_dir import prepared_cohort

CV_PLAN = "cv_plan"   # cv_plan.json: k and the folds, saved before the first fold trains


def cross_validate(cfg: dict, k: int, *, manifest: str | Path | None = None,
                   out_dir: str | Path | None = None, progress: bool = True,
                   overwrite: bool = False, resume: bool = False) -> dict:
    """Grouped (by patient), diagnosis-stratified K-fold: per-fold and pooled out-of-fold metrics.

    ``resume``: continue the interrupted cross-validation in ``out_dir`` fold by fold, with its
    saved config and folds (``cfg``, ``k`` and ``manifest`` are then ignored): finished folds are
    kept, an interrupted fold resumes from its last checkpoint, the rest train.
    """
    import pandas as pd

    from mrparotid.config import check_trainer_args
    from mrparotid.evaluation.evaluate import evaluate_predictions
    from mrparotid.evaluation.metrics import summarise_folds
    from mrparotid.evaluation.predictions import read_predictions, write_predictions

    if resume:
        cfg, plan = read_plan(out_dir, CV_PLAN)
        if k and int(k) != int(plan["k"]):
            raise ConfigError(f"--cv {k}, but this cross-validation has {plan['k']} folds",
                              path=out_dir, fix="resume it without --cv")
        k, manifest = int(plan["k"]), cfg["data"]["manifest"]
    check_trainer_args(cfg["trainer"])   # a bad override fails before any work
    manifest_path, prepared = prepared_cohort(cfg, manifest, progress=progress)
    mf = prepared.manifest
    out_root = Path(out_dir) if out_dir else Path("runs") / ("cv-" + time.strftime("%Y%m%d-%H%M%S"))
    if resume:
        folds = plan["folds"]
    else:
        folds = patient_folds(prepared.ok_cases(), k, seed=int(cfg["data"]["split_seed"]),
                              val_fraction=float(cfg["data"]["val_fraction"]))
        write_plan(out_root, CV_PLAN, dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path))),
                   {"k": k, "folds": folds})
    from mrparotid.decision.record import record_of
    from mrparotid.models.checkpoint import load_checkpoint

    fold_summaries, pooled, records = [], [], {}
    for i, splits in enumerate(folds):
        s = fit(cfg, manifest=manifest_path, out_dir=out_root / f"fold{i + 1}", splits=splits,
                progress=progress, evaluate=True, overwrite=overwrite, resume=resume)
        fold_summaries.append(s)
        pooled.append(read_predictions(out_root / f"fold{i + 1}" / "predictions_test.csv"))
        best = Path(s["best_checkpoint"])
        record = record_of(load_checkpoint(best).meta, best)   # chosen on this fold's validation only
        records.update({pid: record for pid in splits["test"]})
    write_predictions(pd.concat(pooled, ignore_index=True), out_root / "predictions_oof.csv",
                      synthetic=mf.synthetic)
    result = {"k": k, "folds": [s.get("test") for s in fold_summaries], "synthetic": mf.synthetic}
    fold_metrics = [json.loads((out_root / f"fold{i + 1}" / "evaluation" / "metrics.json")
                               .read_text(encoding="utf-8")) for i in range(k)]
    result["fold_summary"] = summarise_folds(fold_metrics)
    evaluate_predictions(out_root / "predictions_oof.csv", out_root / "pooled", decision=records,
                         decision_source=f"each of the {k} folds' own record, chosen on that fold's "
                                         "validation patients, answers that fold's test patients",
                         malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]),
                         synthetic=mf.synthetic, title=f"{k}-fold cross-validation, pooled out-of-fold")
    result["pooled_report"] = str(out_root / "pooled" / "report.md")
    write_json(out_root / "cv_summary.json", result)
    return result
