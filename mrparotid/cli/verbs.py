"""The verbs of ``mrparotid``: each parses nothing, takes the parsed arguments (plus config overrides
where a verb accepts them) and calls one library function. Heavy imports happen inside."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mrparotid.errors import ConfigError, MrParotidError


def _config(args, extra: list[str]) -> dict:
    from mrparotid.config import load_config

    overrides = list(extra)
    cfg = load_config(args.config, overrides)
    if getattr(args, "manifest", None):
        cfg["data"]["manifest"] = str(args.manifest)
    if getattr(args, "skip_bad", False):
        cfg["data"]["skip_bad"] = True
    return cfg


def cmd_phantom(args, extra) -> int:
    no_extra(extra)
    from mrparotid.data.phantom import make_cohort

    if args.patients < 1:
        raise ConfigError(f"--patients is {args.patients}", fix="write at least one patient, e.g. -n 40")
    manifest = make_cohort(args.out_dir, args.patients, seed=args.seed, progress=not args.quiet)
    print(f"wrote a SYNTHETIC phantom cohort of {args.patients} patients: {manifest}")
    return 0


def cmd_prepare(args, extra) -> int:
    from mrparotid.data.cache import cohort_table, format_table, prepare_cohort
    from mrparotid.errors import CohortError
    from mrparotid.io.manifest import read_manifest

    cfg = _config(args, extra)
    manifest = read_manifest(args.manifest, check_dirs=False)
    try:
        prepared = prepare_cohort(manifest, cfg, skip_bad=True, progress=not args.quiet)
    except CohortError:  # pragma: no cover - skip_bad=True never raises
        raise
    summary = cohort_table(prepared, cfg)
    summary["cache_dir"] = str(prepared.cache_dir)
    summary["built"] = prepared.built
    print(format_table(summary))
    print(f"cache: {prepared.cache_dir} ({prepared.built} patient(s) prepared, "
          f"{len(prepared.entries) - prepared.built} reused)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if prepared.bad and not cfg["data"]["skip_bad"]:
        raise CohortError(prepared.bad)
    return 0


def cmd_fit(args, extra) -> int:
    from mrparotid.training.cv import cross_validate
    from mrparotid.training.fit import fit

    cfg = _config(args, extra)
    if args.cv:
        result = cross_validate(cfg, args.cv, manifest=cfg["data"]["manifest"], out_dir=args.out,
                                progress=not args.quiet, overwrite=args.overwrite)
        if result.get("synthetic"):
            print("[SYNTHETIC phantom cohort - figures say nothing about clinical accuracy]")
        print(f"{args.cv}-fold cross-validation by patient (mean ± SD over folds):")
        for name, v in result["fold_summary"].items():
            print(f"  {name:<28} {v['mean']:.3f} ± {v['sd']:.3f}  (n={v['n']})")
        print(f"pooled out-of-fold report: {result['pooled_report']}")
        return 0
    summary = fit(cfg, manifest=cfg["data"]["manifest"], out_dir=args.out, progress=not args.quiet,
                  overwrite=args.overwrite)
    if summary:
        _print_run(summary)
    return 0


def _print_run(summary: dict) -> None:
    if summary.get("synthetic"):
        print("[SYNTHETIC phantom cohort - figures say nothing about clinical accuracy]")
    print(f"run folder: {summary['run_dir']}")
    print(f"best checkpoint: {summary['best_checkpoint']}")
    for split in ("val", "test"):
        m = summary.get(split)
        if m:
            pa = m["patient_accuracy"]
            print(f"{split}: slice accuracy {m['slice_accuracy']:.3f} ({m['slices']} slices), patient "
                  f"accuracy {'n/a' if pa is None else f'{pa:.3f}'} ({m['patients']} patients)")
    if summary.get("evaluation"):
        print(f"evaluation report: {summary['evaluation']}")


def cmd_ablate(args, extra) -> int:
    from mrparotid.constants import parse_channels
    from mrparotid.training.ablate import SERIES_COMBINATIONS, ablate, with_mask

    cfg = _config(args, extra)
    if args.all:
        sets = with_mask(SERIES_COMBINATIONS, not args.no_mask)
    elif args.channels:
        sets = [parse_channels(c) for c in args.channels]
    else:
        raise ConfigError("nothing to ablate", fix="pass --channels T1,T2 (repeatable) or --all")
    table = ablate(cfg, sets, manifest=cfg["data"]["manifest"], out_dir=args.out,
                   progress=not args.quiet, overwrite=args.overwrite)
    if table.get("synthetic"):
        print("[SYNTHETIC phantom cohort - figures say nothing about clinical accuracy]")
    for run in table["runs"]:
        t = run["test"] or {}
        acc = t.get("slice_accuracy")
        print(f"{run['name']:<24} test slice accuracy {'n/a' if acc is None else f'{acc:.3f}'}  "
              f"({run['run_dir']})")
    if table.get("report"):
        print(f"comparison: {table['report']}")
    return 0


def _latest_checkpoint() -> Path:
    found = sorted(Path("runs").glob("*/checkpoints/best.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError("no --checkpoint given and no runs/*/checkpoints/best.ckpt here",
                          fix="train one with 'mrparotid fit' or pass --checkpoint PATH")
    return found[-1]


def _cases(paths: list[str]):
    from mrparotid.io.manifest import PatientCase, read_manifest

    cases = []
    for p in paths:
        path = Path(p)
        if path.is_file() and path.suffix.lower() == ".csv":
            cases += list(read_manifest(path, check_dirs=False).cases)
        else:
            cases.append(PatientCase(path.resolve().name, None, path.resolve()))
    return cases


def cmd_diagnose(args, extra) -> int:
    no_extra(extra)
    from mrparotid.inference.diagnose import diagnose_case, format_report
    from mrparotid.errors import CohortError
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint or _latest_checkpoint())
    reports, bad = [], []
    cases = _cases(args.patients)
    folders = {Path(p).resolve() for p in args.patients if not str(p).lower().endswith(".csv")}
    for case in cases:
        try:
            report = diagnose_case(case, loaded, roles_file=args.roles,
                                   hint="folder" if case.patient_dir in folders else "manifest")
        except MrParotidError as err:
            if len(cases) == 1:
                raise
            bad.append(err)
            continue
        reports.append(report)
        if not args.quiet:
            print(format_report(report) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(reports[0] if len(cases) == 1 else reports, indent=2), encoding="utf-8")
    if args.csv:
        _write_slice_csv(reports, Path(args.csv))
    if bad:
        if not args.skip_bad:
            raise CohortError(bad)
        for err in bad:
            print(f"skipped: {err}", file=sys.stderr)
    return 0


def _write_slice_csv(reports: list[dict], path: Path) -> None:
    """Every predicted slice of ``reports`` as a predictions-CSV row, ``true`` empty where unknown;
    synthetic when any report is."""
    from mrparotid.evaluation.predictions import write_predictions

    write_predictions([{"patient_id": r["patient_id"], "side": s["side"], "index": s["index"],
                        "true": s.get("true", ""), "pred": s["pred"],
                        **{f"p_{c}": p for c, p in s["probs"].items()}}
                       for r in reports for s in r["slices"]], path,
                      synthetic=any(r.get("synthetic") for r in reports), keep_unlabelled=True)


def cmd_evaluate(args, extra) -> int:
    from mrparotid.evaluation.evaluate import evaluate_predictions
    from mrparotid.evaluation.predictions import read_predictions

    out = Path(args.out)
    if args.predictions:
        no_extra(extra)
        preds = read_predictions(args.predictions)
        val_path = getattr(args, "val_predictions", None)
        metrics = evaluate_predictions(preds, out, synthetic=args.synthetic,
                                       val_preds=read_predictions(val_path) if val_path else None,
                                       title=Path(args.predictions).name)
    else:
        if not (args.checkpoint and args.manifest):
            raise ConfigError("evaluate needs --predictions CSV, or --checkpoint and --manifest",
                              fix="e.g. mrparotid evaluate --checkpoint runs/X/checkpoints/best.ckpt "
                                  "--manifest cohort.csv --out eval/")
        from mrparotid.training.fit import predict_split

        cfg = _config(args, extra)
        paths = predict_split(args.checkpoint, cfg, args.split, out, progress=not args.quiet)
        metrics = evaluate_predictions(read_predictions(paths["preds"]), out,
                                       val_preds=read_predictions(paths["val"]) if paths.get("val") else None,
                                       malignant_min_slices=paths["rule_n"],
                                       synthetic=paths["synthetic"], title=f"{args.split} split")
    if metrics.get("synthetic"):
        print("[SYNTHETIC data - figures say nothing about clinical accuracy]")
    for warning in metrics.get("warnings", []):
        print(f"WARNING: {warning}")
    acc = metrics["slice"]["accuracy"]
    ind = acc["independent"]
    print(f"slice accuracy {acc['estimate']:.3f} [{acc['lo']:.3f}, {acc['hi']:.3f}] ({acc['k']}/{acc['n']}, "
          f"patient-clustered bootstrap; Wilson [{ind['lo']:.3f}, {ind['hi']:.3f}] assumes independent slices)")
    soft = metrics["patient"]["soft_vote"]
    print(f"soft-vote threshold {soft['threshold']:.3f} ({soft['threshold_source']})")
    pacc = metrics["patient"]["rule"]["accuracy"]
    if pacc.get("n"):
        print(f"patient accuracy (rule) {pacc['estimate']:.3f} [{pacc['lo']:.3f}, {pacc['hi']:.3f}] "
              f"({pacc['k']}/{pacc['n']})")
    print(f"report: {out / 'report.md'}")
    return 0


def no_extra(extra: list[str]) -> None:
    if extra:
        raise ConfigError(f"unrecognised argument(s): {' '.join(extra)}", fix="see --help")
