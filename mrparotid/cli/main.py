"""``mrparotid`` command line: each verb parses its arguments and calls one library function.

Heavy imports (torch, Lightning, SimpleITK) happen inside the verbs so ``--help`` answers at once.
Every problem the user can fix prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mrparotid.errors import ConfigError, MrParotidError

EPILOG_OVERRIDES = ("Any config key can be overridden LightningCLI-style, e.g. --trainer.max_epochs 5 "
                    "--data.image_size 64 --optim.lr 3e-4 (see configs/default.yaml).")


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
    _no_extra(extra)
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
    _no_extra(extra)
    from mrparotid.inference.diagnose import diagnose_case, format_report
    from mrparotid.errors import CohortError
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint or _latest_checkpoint())
    reports, bad = [], []
    cases = _cases(args.patients)
    for case in cases:
        try:
            report = diagnose_case(case, loaded, roles_file=args.roles)
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
        from mrparotid.evaluation.predictions import write_predictions

        write_predictions([{"patient_id": r["patient_id"], "side": s["side"], "index": s["index"],
                    "true": s.get("true", ""), "pred": s["pred"],
                    **{f"p_{c}": p for c, p in s["probs"].items()}}
                   for r in reports for s in r["slices"]], Path(args.csv))
    if bad:
        if not args.skip_bad:
            raise CohortError(bad)
        for err in bad:
            print(f"skipped: {err}", file=sys.stderr)
    return 0


def cmd_evaluate(args, extra) -> int:
    from mrparotid.evaluation.evaluate import evaluate_predictions
    from mrparotid.evaluation.predictions import read_predictions

    out = Path(args.out)
    if args.predictions:
        _no_extra(extra)
        preds = read_predictions(args.predictions)
        metrics = evaluate_predictions(preds, out, synthetic=args.synthetic,
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
    acc = metrics["slice"]["accuracy"]
    if metrics.get("synthetic"):
        print("[SYNTHETIC data - figures say nothing about clinical accuracy]")
    print(f"slice accuracy {acc['estimate']:.3f} [{acc['lo']:.3f}, {acc['hi']:.3f}] ({acc['k']}/{acc['n']}, "
          f"{acc['method']})")
    pacc = metrics["patient"]["rule"]["accuracy"]
    if pacc.get("n"):
        print(f"patient accuracy (rule) {pacc['estimate']:.3f} [{pacc['lo']:.3f}, {pacc['hi']:.3f}] "
              f"({pacc['k']}/{pacc['n']})")
    print(f"report: {out / 'report.md'}")
    return 0


def _no_extra(extra: list[str]) -> None:
    if extra:
        raise ConfigError(f"unrecognised argument(s): {' '.join(extra)}", fix="see --help")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="mrparotid", formatter_class=fmt,
        description="Benign vs malignant parotid tumours on MRI (after Xia et al., Front. Oncol. 2021). "
                    "Research software, not a medical device.",
        epilog="Typical use:\n  mrparotid phantom demo/ --patients 40\n  mrparotid prepare demo/manifest.csv\n"
               "  mrparotid fit --manifest demo/manifest.csv --out runs/demo\n"
               "  mrparotid diagnose demo/patients/SYN001 --checkpoint runs/demo/checkpoints/best.ckpt")
    parser.add_argument("--version", action="version", version=f"mrparotid {_version()}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def common(p, manifest=True, config=True):
        if config:
            p.add_argument("--config", "-c", metavar="C", help="YAML config (path or name in configs/, "
                           "e.g. paper); default configs/default.yaml")
        if manifest:
            p.add_argument("--manifest", "-m", metavar="M", help="cohort CSV "
                           "(patient_id,diagnosis,patient_dir[,split][,center]); default: the "
                           "embedded SYNTHETIC phantom cohort")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    p = sub.add_parser("phantom", help="write a SYNTHETIC phantom cohort + manifest", formatter_class=fmt,
                       description="Write a SYNTHETIC phantom cohort in the documented patient-folder "
                                   "layout, with its manifest.csv.\n\nexample: mrparotid phantom demo/ --patients 40")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--patients", "-n", type=int, default=40, help="number of patients (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("prepare", help="build the slice-crop cache of a cohort", formatter_class=fmt,
                       description="Read every patient of MANIFEST, bring the series onto the T1 grid, "
                                   "cut the labelled 4-channel gland-slice crops and cache them; print "
                                   "slices per class and patients per diagnosis per split.\n\n"
                                   "example: mrparotid prepare demo/manifest.csv --json counts.json\n\n"
                                   + EPILOG_OVERRIDES)
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--config", "-c", metavar="C", help="YAML config (default configs/default.yaml)")
    p.add_argument("--json", metavar="PATH", help="also write the counts as JSON")
    p.add_argument("--skip-bad", action="store_true", help="exit 0 even when some patients are bad")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("fit", help="train a slice classifier", formatter_class=fmt,
                       description="Train the reduced ResNet18 on a cohort's slice crops and write a run "
                                   "folder: config.yaml, checkpoints/best.ckpt + last.ckpt, metrics.csv, "
                                   "predictions_*.csv, summary.json, evaluation/report.md.\n\n"
                                   "examples:\n  mrparotid fit                       # embedded phantom cohort\n"
                                   "  mrparotid fit -m cohort.csv --out runs/r1 --trainer.max_epochs 30\n"
                                   "  mrparotid fit -c paper -m cohort.csv   # the paper's recipe\n"
                                   "  mrparotid fit -m cohort.csv --cv 5     # 5-fold CV by patient\n\n"
                                   + EPILOG_OVERRIDES)
    common(p)
    p.add_argument("--out", "-o", metavar="RUN_DIR", help="run folder (default runs/<timestamp>)")
    p.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation grouped by patient")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in RUN_DIR")
    p.add_argument("--skip-bad", action="store_true", help="train without bad patients instead of failing")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("ablate", help="compare channel subsets (the paper's Table 3)", formatter_class=fmt,
                       description="Train and test one model per channel subset of {T1, CE-T1, T2, mask} "
                                   "on the same patient split and compare them.\n\nexamples:\n"
                                   "  mrparotid ablate --channels T1,T2\n"
                                   "  mrparotid ablate --channels T1 --channels CE-T1,T2,mask\n"
                                   "  mrparotid ablate --all      # the 7 series combinations (+ mask)\n\n"
                                   + EPILOG_OVERRIDES)
    common(p)
    p.add_argument("--channels", action="append", metavar="LIST",
                   help="comma-separated channels, repeatable (T1, CE-T1, T2, mask)")
    p.add_argument("--all", action="store_true", help="the seven series combinations of Table 3")
    p.add_argument("--no-mask", action="store_true", help="with --all: leave the mask channel out")
    p.add_argument("--out", "-o", metavar="DIR", help="output folder (default runs/ablate-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in DIR")
    p.add_argument("--skip-bad", action="store_true", help="go on without bad patients")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("diagnose", help="per-patient diagnosis with per-slice evidence", formatter_class=fmt,
                       description="Preprocess each patient, predict every gland slice, apply the rule "
                                   "(> 2 malignant slices -> malignant, else PA vs Warthin by majority) and "
                                   "print a summary. A tumour mask is optional.\n\nexamples:\n"
                                   "  mrparotid diagnose patients/P001 --checkpoint runs/r1/checkpoints/best.ckpt\n"
                                   "  mrparotid diagnose cohort.csv --json out.json --csv slices.csv")
    p.add_argument("patients", nargs="+", metavar="PATIENT_DIR", help="patient folder(s) or a manifest CSV")
    p.add_argument("--checkpoint", metavar="CKPT", help="default: the newest runs/*/checkpoints/best.ckpt")
    p.add_argument("--json", metavar="OUT", help="write the report(s) as JSON")
    p.add_argument("--csv", metavar="OUT", help="write slice predictions in the evaluation CSV format")
    p.add_argument("--roles", metavar="FILE", help="DICOM study folders: series-role mapping YAML")
    p.add_argument("--skip-bad", action="store_true", help="with several patients: go on past bad ones")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("evaluate", help="tables, figures and CIs for slice predictions", formatter_class=fmt,
                       description="Score slice predictions like the paper (Tables 4-5, Figs 6-7) with "
                                   "confidence intervals.\n\nexamples:\n"
                                   "  mrparotid evaluate --predictions preds.csv --out eval/\n"
                                   "  mrparotid evaluate --checkpoint runs/r1/checkpoints/best.ckpt "
                                   "--manifest cohort.csv --split test --out eval/")
    common(p)
    p.add_argument("--predictions", metavar="PRED.csv", help="patient_id,side,index,true,pred,p_* rows")
    p.add_argument("--checkpoint", metavar="CKPT")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", "-o", required=True, metavar="DIR")
    p.add_argument("--synthetic", action="store_true", help="label the report as synthetic data")
    p.set_defaults(func=cmd_evaluate)

    try:
        from mrparotid.cli.dicom import add_parsers
    except ImportError:
        pass
    else:
        add_parsers(sub)
    return parser


def _version() -> str:
    from mrparotid import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        code = args.func(args, extra) if _takes_extra(args.func) else _call_strict(parser, args, extra)
    except MrParotidError as err:
        print(f"mrparotid: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("mrparotid: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("MRPAROTID_DEBUG"):
            raise
        print(f"mrparotid: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(set MRPAROTID_DEBUG=1 for the traceback and please report it)", file=sys.stderr)
        return 1
    return int(code or 0)


def _takes_extra(func) -> bool:
    return func.__module__ == __name__


def _call_strict(parser, args, extra) -> int:
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
