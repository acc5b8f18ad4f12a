"""``fit --cv K``: grouped (by patient), diagnosis-stratified K-fold cross-validation with per-fold
and pooled out-of-fold reports; ``fit --cv --group centre`` hands over to
:mod:`mrparotid.training.loco` (leave-one-centre-out beside an in-centre CV)."""

from __future__ import annotations

import time
from pathlib import Path

from mrparotid.data.splits import patient_folds
from mrparotid.errors import ConfigError
from mrparotid.io.atomic import write_json
from mrparotid.training.folds import CV_PLAN, pool_folds, run_folds
from mrparotid.training.resume import read_plan, write_plan
from mrparotid.training.run_dir import prepared_cohort

GROUPS = ("patient", "centre")


def cross_validate(cfg: dict, k: int | None, *, manifest: str | Path | None = None,
                   out_dir: str | Path | None = None, progress: bool = True,
                   overwrite: bool = False, resume: bool = False, group: str | None = None) -> dict:
    """Grouped (by patient), diagnosis-stratified K-fold: per-fold and pooled out-of-fold metrics.

    ``group="centre"``: leave-one-centre-out (K = the number of centres, or None) plus the
    in-centre comparison (:func:`mrparotid.training.loco.centre_cross_validate`).
    ``resume``: continue the interrupted cross-validation in ``out_dir`` fold by fold, with its
    saved config, grouping and folds (``cfg``, ``k`` and ``manifest`` are then ignored): finished
    folds are kept, an interrupted fold resumes from its last checkpoint, the rest train.
    """
    from mrparotid.config import check_trainer_args
    from mrparotid.evaluation.metrics import summarise_folds

    plan = None
    if resume:
        cfg, plan = read_plan(out_dir, CV_PLAN)
        saved = plan.get("group", "patient")
        if group and group != saved:
            raise ConfigError(f"--group {group}, but this cross-validation is grouped by {saved}",
                              path=out_dir, fix="resume it without --group")
        if k and int(k) != int(plan["k"]):
            raise ConfigError(f"--cv {k}, but this cross-validation has {plan['k']} folds",
                              path=out_dir, fix="resume it without --cv")
        group, k, manifest = saved, int(plan["k"]), cfg["data"]["manifest"]
    group = group or "patient"
    if group not in GROUPS:
        raise ConfigError(f"unknown --group {group!r}", fix="use --group patient or --group centre")
    check_trainer_args(cfg["trainer"])   # a bad override fails before any work
    if group == "centre" and not resume and manifest:
        from mrparotid.training.loco import check_manifest_centres

        check_manifest_centres(manifest, k)          # before any patient is prepared
    if group == "patient" and not k:
        raise ConfigError("--cv needs K when grouped by patient", fix="e.g. --cv 5, or --cv --group centre")
    manifest_path, prepared = prepared_cohort(cfg, manifest, progress=progress)
    mf = prepared.manifest
    out_root = Path(out_dir) if out_dir else Path("runs") / ("cv-" + time.strftime("%Y%m%d-%H%M%S"))
    if group == "centre":
        from mrparotid.training.loco import centre_cross_validate

        return centre_cross_validate(cfg, k, manifest_path, prepared, out_root, plan=plan,
                                     progress=progress, overwrite=overwrite, resume=resume)
    if resume:
        folds = plan["folds"]
    else:
        folds = patient_folds(prepared.ok_cases(), k, seed=int(cfg["data"]["split_seed"]),
                              val_fraction=float(cfg["data"]["val_fraction"]))
        write_plan(out_root, CV_PLAN, dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path))),
                   {"k": k, "folds": folds})
    run = run_folds(cfg, folds, manifest_path, out_root, progress=progress, overwrite=overwrite,
                    resume=resume)
    result = {"k": k, "folds": [s.get("test") for s in run["summaries"]], "synthetic": mf.synthetic,
              "fold_summary": summarise_folds(run["fold_metrics"])}
    pool_folds(cfg, run, out_root, synthetic=mf.synthetic,
               title=f"{k}-fold cross-validation, pooled out-of-fold")
    result["pooled_report"] = str(out_root / "pooled" / "report.md")
    write_json(out_root / "cv_summary.json", result)
    return result
