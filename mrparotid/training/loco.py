"""``fit --cv --group centre``: leave-one-centre-out cross-validation, and beside it the in-centre
comparison on the same patients.

Out of centre: one fold per centre, its test the whole centre, its validation and training the
other centres' patients only (:func:`mrparotid.data.splits.centre_folds`), in ``loco/fold<i>``.
In centre: as many folds, grouped by patient and stratified by centre x diagnosis, in
``in_centre/fold<i>``. So every patient gets one prediction from a model that never saw its centre
and one from a model that saw its centre. Each scheme's pooled out-of-fold evaluation (with its
per-centre tables) is in ``<scheme>/pooled``; the comparison (each held-out centre's figures, the
in-centre figures and the paired gap) is ``report.md`` and ``cv_summary.json`` at the root.
``cv_plan.json`` holds the centres and both sets of folds, so ``--resume`` keeps them.
"""

from __future__ import annotations

from pathlib import Path

from mrparotid.data.splits import centre_folds, patient_folds, require_centres
from mrparotid.errors import ConfigError
from mrparotid.io.atomic import write_json, write_text
from mrparotid.training.folds import CV_PLAN, pool_folds, run_folds
from mrparotid.training.resume import write_plan

SCHEMES = (("out_of_centre", "loco", "folds"), ("in_centre", "in_centre", "in_centre_folds"))


def check_k(k: int | None, centres: list[str]) -> None:
    """``--cv K --group centre``: K must be the number of centres (or omitted)."""
    if k and int(k) != len(centres):
        raise ConfigError(f"--cv {k} --group centre, but the cohort has {len(centres)} centres "
                          f"({', '.join(centres)}): one fold per centre",
                          fix=f"omit K (--cv --group centre) or pass --cv {len(centres)}")


def check_manifest_centres(manifest: str | Path, k: int | None) -> None:
    """Refuse, before any patient is prepared, a manifest whose patients lack centres, with fewer
    than two centres, or whose centre count is not ``k``."""
    from mrparotid.io.manifest import read_manifest

    check_k(k, require_centres(read_manifest(manifest, check_dirs=False).cases))


def centre_plan(cfg: dict, k: int | None, cases) -> dict:
    """The plan saved in ``cv_plan.json``: ``k`` (= the number of centres), ``group``,
    ``centres``, ``folds`` (leave-one-centre-out, in the order of ``centres``) and
    ``in_centre_folds``."""
    seed, val_fraction = int(cfg["data"]["split_seed"]), float(cfg["data"]["val_fraction"])
    centres, folds = centre_folds(cases, seed=seed, val_fraction=val_fraction)
    check_k(k, centres)
    inner = patient_folds(cases, len(centres), seed=seed, val_fraction=val_fraction, by_centre=True)
    return {"k": len(centres), "group": "centre", "centres": centres, "folds": folds,
            "in_centre_folds": inner}


def centre_cross_validate(cfg: dict, k: int | None, manifest_path: Path, prepared, out_root: Path, *,
                          plan: dict | None = None, progress: bool = True, overwrite: bool = False,
                          resume: bool = False) -> dict:
    """Run both schemes (module docstring) on the prepared cohort and write the comparison.

    Returns
    -------
    dict
        cv_summary.json: ``k``, ``group``, ``centres``, ``synthetic``, ``folds`` (each held-out
        centre's test summary), ``fold_summary`` / ``in_centre_fold_summary`` (mean ± SD over
        folds), ``comparison`` (:func:`~mrparotid.evaluation.centre_gap.centre_comparison`),
        ``reports`` and ``pooled_report`` (the root ``report.md``).
    """
    from mrparotid.evaluation.centre_gap import centre_comparison
    from mrparotid.evaluation.centre_gap_report import centre_cv_markdown
    from mrparotid.evaluation.metrics import summarise_folds
    from mrparotid.evaluation.predictions import read_predictions

    mf = prepared.manifest
    if plan is None:
        plan = centre_plan(cfg, k, prepared.ok_cases())
        write_plan(out_root, CV_PLAN, dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path))), plan)
    runs, n = {}, plan["k"]
    for name, folder, key in SCHEMES:
        runs[name] = run_folds(cfg, plan[key], manifest_path, out_root / folder, progress=progress,
                               overwrite=overwrite, resume=resume)
        title = (f"leave-one-centre-out ({n} centres), pooled out-of-centre" if name == "out_of_centre"
                 else f"in-centre {n}-fold cross-validation (by patient, stratified by centre x diagnosis), pooled")
        pool_folds(cfg, runs[name], out_root / folder, synthetic=mf.synthetic, title=title)
    comparison = centre_comparison(read_predictions(out_root / "loco" / "predictions_oof.csv"),
                                   read_predictions(out_root / "in_centre" / "predictions_oof.csv"),
                                   out_records=runs["out_of_centre"]["records"],
                                   in_records=runs["in_centre"]["records"],
                                   malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]))
    result = {"k": n, "group": "centre", "centres": plan["centres"], "synthetic": mf.synthetic,
              "folds": {c: s.get("test") for c, s in zip(plan["centres"], runs["out_of_centre"]["summaries"])},
              "fold_summary": summarise_folds(runs["out_of_centre"]["fold_metrics"]),
              "in_centre_fold_summary": summarise_folds(runs["in_centre"]["fold_metrics"]),
              "comparison": comparison,
              "reports": {"out_of_centre": "loco/pooled/report.md", "in_centre": "in_centre/pooled/report.md"},
              "pooled_report": str(out_root / "report.md")}
    write_text(out_root / "report.md", centre_cv_markdown(result, comparison, synthetic=mf.synthetic))
    write_json(out_root / "cv_summary.json", result)
    return result


def summary_lines(result: dict) -> list[str]:
    """What ``fit --cv --group centre`` prints: per held-out centre, the rule's patient accuracy
    out of and in centre and the gap with its paired CI; then where the report is."""
    from mrparotid.evaluation.centre_gap_report import figure_cell, gap_cell

    lines = [f"leave-one-centre-out over {result['k']} centres, beside an in-centre {result['k']}-fold CV "
             "(patient accuracy of the rule; gap = out - in, paired bootstrap over patients):"]
    for name, g in result["comparison"]["groups"].items():
        lines.append(f"  {name:<16} out {figure_cell(g['out_of_centre']['rule_accuracy'])}  "
                     f"in {figure_cell(g['in_centre']['rule_accuracy'])}  gap {gap_cell(g['gap']['rule_accuracy'])}")
    lines.append(f"report: {result['pooled_report']}")
    return lines
