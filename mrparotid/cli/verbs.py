"""The verbs of ``mrparotid``: each parses nothing, takes the parsed arguments (plus config overrides
where a verb accepts them) and calls one library function. Heavy imports happen inside."""

from __future__ import annotations

import sys
from pathlib import Path

from mrparotid.cli.centres import centres_from_dicom, check_group, print_centre_cv
from mrparotid.errors import ConfigError, MrParotidError
from mrparotid.io.atomic import write_json


def _config(args, extra: list[str]) -> dict:
    from mrparotid.config import load_config

    overrides = list(extra)
    cfg = load_config(args.config, overrides)
    if getattr(args, "manifest", None):
        cfg["data"]["manifest"] = str(args.manifest)
    if getattr(args, "skip_bad", False):
        cfg["data"]["skip_bad"] = True
    return cfg


def cmd_prepare(args, extra) -> int:
    from mrparotid.data.cache import cohort_table, format_table, prepare_cohort
    from mrparotid.errors import CohortError
    from mrparotid.io.manifest import read_manifest

    centres_from_dicom(args)
    cfg = _config(args, extra)
    manifest = read_manifest(args.manifest, check_dirs=False)
    prepared = prepare_cohort(manifest, cfg, skip_bad=True, progress=not args.quiet)
    summary = cohort_table(prepared, cfg)
    summary["cache_dir"] = str(prepared.cache_dir)
    summary["built"] = prepared.built
    print(format_table(summary))
    print(f"cache: {prepared.cache_dir} ({prepared.built} patient(s) prepared, "
          f"{len(prepared.entries) - prepared.built} reused)")
    if args.json:
        write_json(args.json, summary)
    if prepared.bad and not cfg["data"]["skip_bad"]:
        raise CohortError(prepared.bad)
    return 0


def cmd_fit(args, extra) -> int:
    from mrparotid.training.cv import CV_PLAN, cross_validate
    from mrparotid.training.fit import fit

    is_cv = check_group(args)          # --cv given (--group needs it)
    if getattr(args, "segmenter", None) and (is_cv or args.resume):
        raise ConfigError("--segmenter adds the clinic path to a single fit's evaluation, not to "
                          "--cv or --resume", fix="score a finished run with: mrparotid evaluate "
                          "--checkpoint RUN/checkpoints/best.ckpt --manifest M --segmenter SEG --out DIR")
    segmenter = _segmenter(args.segmenter) if getattr(args, "segmenter", None) else None
    if args.resume:
        resume_only(args, extra)
        is_cv = (Path(args.resume) / f"{CV_PLAN}.json").is_file()
        if args.cv is not None and not is_cv:
            raise ConfigError(f"--cv {args.cv}, but no cross-validation was started here "
                              f"(no {CV_PLAN}.json)", path=args.resume, fix="resume it without --cv")
        if not is_cv:
            from mrparotid.training.resume import resume_fit

            summary = resume_fit(args.resume, progress=not args.quiet)
            if summary:
                _print_run(summary)
            return 0
    centres_from_dicom(args)             # (--resume refused it above)
    cfg = _config(args, extra) if not args.resume else {}
    if is_cv:
        result = cross_validate(cfg, args.cv, manifest=cfg.get("data", {}).get("manifest"),
                                out_dir=args.resume or args.out, progress=not args.quiet,
                                overwrite=args.overwrite, resume=bool(args.resume), group=args.group)
        if result.get("synthetic"):
            print("[SYNTHETIC phantom cohort - figures say nothing about clinical accuracy]")
        if print_centre_cv(result):      # --group centre: out of centre, in centre and the gap
            return 0
        print(f"{result['k']}-fold cross-validation by patient (mean ± SD over folds):")
        for name, v in result["fold_summary"].items():
            print(f"  {name:<28} {v['mean']:.3f} ± {v['sd']:.3f}  (n={v['n']})")
        print(f"pooled out-of-fold report: {result['pooled_report']}")
        return 0
    summary = fit(cfg, manifest=cfg["data"]["manifest"], out_dir=args.out, progress=not args.quiet,
                  overwrite=args.overwrite, segmenter=segmenter,
                  allow_overlap=bool(getattr(args, "allow_overlap", False)))
    if summary:
        _print_run(summary)
    return 0


def resume_only(args, extra: list[str], command: str | None = None) -> None:
    """With ``--resume`` the run's own config, split and folder are used: refuse anything else.
    ``command``: the command the fix names (default the verb, e.g. ``segment fit``)."""
    given = [f"--{name.replace('_', '-')}" for name in
             ("config", "manifest", "out", "overwrite", "skip_bad", "channels", "all", "no_mask",
              "centre_from_dicom")
             if getattr(args, name, None)] + [e for e in extra if e.startswith("--")]
    if given:
        raise ConfigError(f"--resume continues a run with its own config and split, so "
                          f"{', '.join(given)} cannot be given with it",
                          fix=f"run: mrparotid {command or args.verb} --resume {args.resume}")


def print_run(summary: dict, split_line) -> None:
    """A finished run in a few lines: the SYNTHETIC banner (phantom data), the run folder, the best
    checkpoint and, per scored split (val, test), ``split_line(metrics)``."""
    if summary.get("synthetic"):
        print("[SYNTHETIC phantom cohort - figures say nothing about clinical accuracy]")
    print(f"run folder: {summary['run_dir']}")
    print(f"best checkpoint: {summary['best_checkpoint']}")
    for split in ("val", "test"):
        if summary.get(split):
            print(f"{split}: {split_line(summary[split])}")


def _accuracy_line(m: dict) -> str:
    pa = m["patient_accuracy"]
    return (f"slice accuracy {m['slice_accuracy']:.3f} ({m['slices']} slices), patient "
            f"accuracy {'n/a' if pa is None else f'{pa:.3f}'} ({m['patients']} patients)")


def _print_run(summary: dict) -> None:
    print_run(summary, _accuracy_line)
    if summary.get("evaluation"):
        print(f"evaluation report: {summary['evaluation']}")


def cmd_ablate(args, extra) -> int:
    from mrparotid.constants import parse_channels
    from mrparotid.training.ablate import ablate, config_series, series_combinations, with_mask

    if getattr(args, "missing", False):
        return _ablate_missing(args, extra)
    if args.resume:
        resume_only(args, extra)
        cfg, sets = {}, []          # the folder's own (ablate_plan.json)
    else:
        cfg = _config(args, extra)
        if args.all:
            sets = with_mask(series_combinations(config_series(cfg)), not args.no_mask)
        elif args.channels:
            sets = [parse_channels(c) for c in args.channels]
        else:
            raise ConfigError("nothing to ablate", fix="pass --channels T1,T2 (repeatable) or --all")
    table = ablate(cfg, sets, manifest=cfg.get("data", {}).get("manifest"),
                   out_dir=args.resume or args.out, progress=not args.quiet,
                   overwrite=args.overwrite, resume=bool(args.resume))
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


def _ablate_missing(args, extra) -> int:
    """``ablate --missing``: the series-dropout model against the dedicated subset models."""
    from mrparotid.training.missing import ablate_missing

    if args.channels or getattr(args, "resume", None):
        raise ConfigError("--missing compares every series subset with its own models; it takes no "
                          "--channels or --resume", fix="run it again with --missing --out DIR "
                          "(finished runs in DIR are reused)")
    cfg = _config(args, extra)
    result = ablate_missing(cfg, manifest=cfg["data"]["manifest"], out_dir=args.out,
                            mask=not args.no_mask, progress=not args.quiet, overwrite=args.overwrite)
    if not result:
        return 0
    if result.get("synthetic"):
        print("[SYNTHETIC phantom cohort - figures say nothing about clinical accuracy]")
    print(f"series dropout {result['series_dropout']:g}: {result['dropout_run']}; test slice "
          "accuracy with patient-bootstrap 95% CIs, difference = dropout - dedicated (paired)")
    print(result["text"])
    print(f"comparison: {result['report']}")
    return 0


def _latest_checkpoint() -> Path:
    """The newest finished classifier run's checkpoint under runs/ (by its format, not its name)."""
    from mrparotid.inference.runs import default_classifier

    return default_classifier("runs")


def _segmenter(path: str | None):
    """The segmenter of ``--segmenter`` (loaded now, so a bad checkpoint fails before any patient),
    or the newest segmenter run under runs/, loaded only if a patient lacks a mask."""
    from mrparotid.inference.masks import Segmenter
    from mrparotid.training.run_dir import require_complete_run

    segmenter = Segmenter(path)
    if path is not None:
        require_complete_run(path)        # an interrupted segment fit's model is not final
        segmenter.loaded()
    return segmenter


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
    from mrparotid.cli.privacy import case_names, diagnose_out_dir, pseudonymiser
    from mrparotid.dicom_out.write import check_dicom_out
    from mrparotid.io.patient_ids import check_unique
    from mrparotid.models.checkpoint import load_checkpoint
    from mrparotid.training.run_dir import require_complete_run

    cases = _cases(args.patients)
    check_unique([(c.patient_id, c.patient_dir) for c in cases], what="reports")  # before any work
    check_dicom_out(getattr(args, "dicom_out", None), getattr(args, "pseudonymise", False))
    checkpoint = args.checkpoint or _latest_checkpoint()
    require_complete_run(checkpoint)      # an interrupted run's model is not final
    loaded = load_checkpoint(checkpoint)
    from mrparotid.decision.record import record_of

    record_of(loaded.meta, loaded.path)     # a malformed decision record is refused before any patient
    explain = _explainer(args, loaded)     # --explain / --html: checked before any patient
    segmenter = _segmenter(args.segmenter)
    if args.segmenter:                     # trained on the classifier's test patients: refused
        from mrparotid.cli.overlap import check_overlap
        check_overlap(args, segmenter, loaded.meta, checkpoint)
    pseudo = pseudonymiser(args, case_names(cases), diagnose_out_dir(args))
    with pseudo.scrubbing():              # --pseudonymise: no id or folder name in any output
        return _diagnose(args, cases, loaded, explain, segmenter, pseudo)


def _diagnose(args, cases, loaded, explain, segmenter, pseudo) -> int:
    from dataclasses import replace

    from mrparotid.dicom_out.write import patient_source, write_evidence
    from mrparotid.evaluation.predictions import write_report_slices
    from mrparotid.inference.diagnose import build_report, format_report, predict_patient
    from mrparotid.io.paths import relative_paths

    reports, bad = [], []
    folders = {Path(p).resolve() for p in args.patients if not str(p).lower().endswith(".csv")}
    for case in cases:
        try:
            hint = "folder" if case.patient_dir in folders else "manifest"
            source = (patient_source(case, roles_file=args.roles, hint=hint)
                      if getattr(args, "dicom_out", None) else None)
            evidence = predict_patient(replace(case, patient_id=pseudo.id(case.patient_id)), loaded,
                                       roles_file=args.roles, hint=hint,
                                       segmenter=segmenter, all_slices=args.all_slices)
            report = pseudo.scrub(build_report(evidence, loaded))
            if explain:
                explain(evidence, report)
            if source:                             # --dicom-out: SEG + SR (a NIfTI T1: refused above)
                write_evidence(args.dicom_out, evidence, report, source, quiet=args.quiet)
        except MrParotidError as err:
            if len(cases) == 1:
                raise
            bad.append(pseudo.error(err))
            continue
        reports.append(report)
        if not args.quiet:
            print(format_report(relative_paths(report, Path.cwd())) + "\n")
            if explain:
                print(explain.text(report) + "\n")
    if explain and args.html:
        explain.finish(reports, bad, quiet=args.quiet)
    if args.json:                          # paths relative to the JSON file's folder
        write_json(args.json, relative_paths(reports[0] if len(cases) == 1 else reports,
                                             Path(args.json).absolute().parent))
    if args.csv:
        write_report_slices(reports, Path(args.csv))
    skip_or_raise(bad, args.skip_bad)
    return 0


def skip_or_raise(bad: list[MrParotidError], skip_bad: bool) -> None:
    """The patients a multi-patient command could not do: one CohortError naming them all, or with
    ``skip_bad`` a ``skipped:`` line each on stderr."""
    from mrparotid.errors import CohortError

    if bad and not skip_bad:
        raise CohortError(bad)
    for err in bad:
        print(f"skipped: {err}", file=sys.stderr)


def _explainer(args, loaded):
    """None without ``--explain``/``--html``; else the report writer (heat maps into each report,
    and with ``--html`` each patient's page and an index), after checking the model and folder."""
    if not (getattr(args, "explain", False) or getattr(args, "html", None)):
        return None
    from mrparotid.report.writer import ReportWriter

    return ReportWriter(loaded, html_dir=args.html, overwrite=args.overwrite)


def cmd_evaluate(args, extra) -> int:
    from mrparotid.cli.privacy import evaluate_pseudonymiser

    centres_from_dicom(args)                  # before anything reads the manifest
    pseudo = evaluate_pseudonymiser(args)     # colliding ids refused; --pseudonymise
    with pseudo.scrubbing():
        return _evaluate(args, extra, pseudo)


def _evaluate(args, extra, pseudo) -> int:
    from mrparotid.cli import privacy
    from mrparotid.evaluation.evaluate import evaluate_predictions

    out = Path(args.out)
    if getattr(args, "segmenter", None) and (args.predictions or not (args.checkpoint and args.manifest)):
        raise ConfigError("--segmenter scores the clinic path of a run: it needs --checkpoint and "
                          "--manifest", fix="e.g. mrparotid evaluate --checkpoint runs/X/checkpoints/"
                          "best.ckpt --manifest cohort.csv --segmenter runs/S/checkpoints/best.ckpt --out eval/")
    if args.predictions:
        no_extra(extra)
        metrics = evaluate_predictions(privacy.pseudonymise_predictions(Path(args.predictions), pseudo),
                                       out, synthetic=args.synthetic, val_preds=privacy.pseudonymise_predictions(
                                           getattr(args, "val_predictions", None) or None, pseudo),
                                       title=pseudo.text(Path(args.predictions).name))
    else:
        if not (args.checkpoint and args.manifest):
            raise ConfigError("evaluate needs --predictions CSV, or --checkpoint and --manifest",
                              fix="e.g. mrparotid evaluate --checkpoint runs/X/checkpoints/best.ckpt "
                                  "--manifest cohort.csv --out eval/")
        from mrparotid.training.fit import predict_split
        from mrparotid.training.run_dir import require_complete_run

        require_complete_run(args.checkpoint)   # an interrupted run's model is not final
        if getattr(args, "segmenter", None):   # before any prediction
            from mrparotid.cli.overlap import check_overlap
            from mrparotid.models.checkpoint import load_checkpoint
            check_overlap(args, _segmenter(args.segmenter), load_checkpoint(args.checkpoint).meta,
                          args.checkpoint)
        from mrparotid.cli.evaluate_checkpoint import check_evaluate_overrides, evaluation_decision

        refit = check_evaluate_overrides(extra)   # what a trained checkpoint cannot honour: refused
        cfg = _config(args, extra)
        paths = predict_split(args.checkpoint, cfg, args.split, out, progress=not args.quiet)
        privacy.pseudonymise_csvs(paths, pseudo)     # the written predictions too
        record, source = evaluation_decision(args.checkpoint, paths, cfg, refit)
        metrics = evaluate_predictions(paths["preds"], out, malignant_min_slices=paths["rule_n"],
                                       synthetic=paths["synthetic"], title=f"{args.split} split",
                                       decision=record, decision_source=source)
    from mrparotid.evaluation.evaluate import add_error_pictures

    add_error_pictures(out, metrics, **({} if args.predictions else {"checkpoint": args.checkpoint,
                                                                      "cfg": cfg, "ids": pseudo.ids}))
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
    from mrparotid.evaluation.answers import answer_lines
    print("\n".join(answer_lines(metrics.get("answer"))))
    if getattr(args, "segmenter", None):
        print(privacy.run_clinic(args.checkpoint, _segmenter(args.segmenter), cfg["data"]["manifest"],
                                 out, pseudo, split=args.split, roles_file=cfg["data"].get("dicom_roles"),
                                 progress=not args.quiet))
    print(f"report: {out / 'report.md'}")
    return 0


def no_extra(extra: list[str]) -> None:
    if extra:
        raise ConfigError(f"unrecognised argument(s): {' '.join(extra)}", fix="see --help")
