"""``mrparotid segment``: train the segmenter (``segment fit``) or write automatic masks.

``segment fit`` takes config overrides (``--trainer.max_epochs 5``) on top of
``configs/segment.yaml``; ``segment PATIENT_DIR...`` writes ``OUT/<patient_id>/parotid_auto.nii.gz``,
``tumour_auto.nii.gz`` and ``overlay_auto.png`` per patient.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SEGMENT_HELP = """\
Automatic parotid gland and tumour masks from the MR series alone (a 2-D MONAI UNet on axial
slices of the T1 grid). Two forms:

  mrparotid segment fit [-m cohort.csv] [--out runs/seg1] [--split-from RUN_DIR] [-c segment] [overrides]
      train it on a cohort's contours (config configs/segment.yaml; the patient split is the one
      'fit' draws with the same data keys, or with --split-from the classifier run's own
      split.json); writes checkpoints/best.ckpt, last.ckpt, split.json, scores_*.csv, summary.json
      with gland/tumour Dice, HD95 (mm; n/a with the count when a tumour was missed) and side-level
      tumour detection (found, false alarms) of the val and test patients.

  mrparotid segment fit --resume runs/seg1
      continue a killed or failed 'segment fit' from checkpoints/last.ckpt with its own config
      and split (no other options); a complete run (summary.json) is left as it is.

  mrparotid segment PATIENT_DIR... --out DIR [--checkpoint CKPT]
      per patient, DIR/<patient_id>/parotid_auto.nii.gz (1 right, 2 left gland),
      tumour_auto.nii.gz and overlay_auto.png, on the original T1 geometry (they overlay the T1
      series in 3D Slicer / ITK-SNAP). A folder needs only the series the segmenter was trained on.
      With --dicom-out DIR2 also DIR2/<patient_id>/SEG.dcm, a DICOM SEG referencing the T1 DICOM
      series (it carries the study's patient identity; a NIfTI T1 is refused).

examples:
  mrparotid segment fit --out runs/seg1                  # embedded SYNTHETIC phantom cohort
  mrparotid segment fit -m cohort.csv --out runs/seg1 --trainer.max_epochs 20
  mrparotid segment fit -m cohort.csv --out runs/seg1 --split-from runs/cls1   # the classifier's split
  mrparotid segment patients/P001 --out auto/ --checkpoint runs/seg1/checkpoints/best.ckpt

Any segment.yaml key can be overridden with 'segment fit', e.g. --data.spacing_mm 1.5
--trainer.max_epochs 10. The default checkpoint is the newest runs/*/checkpoints/best.ckpt of a
segmenter run.
"""


def add_parsers(subparsers) -> None:
    """Register the ``segment`` sub-command on an argparse subparsers object."""
    from mrparotid.cli.privacy import add_arguments as add_privacy_arguments

    p = subparsers.add_parser("segment", description=SEGMENT_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              help="automatic gland and tumour masks (segment fit: train it)")
    p.add_argument("targets", nargs="+", metavar="fit | PATIENT_DIR",
                   help="'fit' to train, else patient folder(s) to segment")
    p.add_argument("--checkpoint", metavar="CKPT", help="segmenter checkpoint (default: the newest "
                   "runs/*/checkpoints/best.ckpt of a segmenter run)")
    p.add_argument("--out", "-o", metavar="DIR", help="fit: run folder (default runs/<timestamp>); "
                   "patients: output folder (required)")
    p.add_argument("--manifest", "-m", metavar="M", help="fit: cohort CSV (default: the embedded "
                   "SYNTHETIC phantom cohort)")
    p.add_argument("--config", "-c", metavar="C", help="fit: YAML config over configs/segment.yaml")
    p.add_argument("--overwrite", action="store_true", help="fit: replace a finished run in --out")
    p.add_argument("--split-from", metavar="RUN_DIR", help="fit: take the patient split from this "
                   "classifier run's split.json (data.split_from), so the segmenter never trains or "
                   "validates on the classifier's test patients")
    p.add_argument("--resume", metavar="RUN_DIR", help="fit: continue the interrupted run in RUN_DIR "
                   "from its last checkpoint, with its own config and split (no other options)")
    p.add_argument("--skip-bad", action="store_true", help="go on past bad patients")
    p.add_argument("--roles", metavar="FILE", help="DICOM study folders: series-role mapping YAML")
    p.add_argument("--dicom-out", metavar="DIR", help="patients: also write DIR/<patient>/SEG.dcm, a "
                   "DICOM SEG referencing the T1 DICOM series, with the study's patient identity")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_privacy_arguments(p)
    p.set_defaults(func=cmd_segment)


cmd_takes_extra = True   # the CLI passes unparsed arguments (config overrides) to cmd_segment


def cmd_segment(args, extra: list[str]) -> int:
    from mrparotid.errors import ConfigError

    if args.targets[0] == "fit":
        if len(args.targets) > 1:
            raise ConfigError(f"'segment fit' takes no patient folders ({' '.join(args.targets[1:])})",
                              fix="write overrides as --section.key VALUE; to segment a folder "
                                  "named fit, write ./fit")
        return _fit(args, extra)
    if extra:
        raise ConfigError(f"unrecognised argument(s): {' '.join(extra)}",
                          fix="config overrides go with 'segment fit'; see mrparotid segment --help")
    for flag, value in (("--manifest", args.manifest), ("--config", args.config), ("--resume", args.resume),
                        ("--split-from", args.split_from)):
        if value:
            raise ConfigError(f"{flag} is for 'segment fit'", fix="leave it out when segmenting patients")
    if not args.out:
        raise ConfigError("segment needs --out DIR", fix="e.g. mrparotid segment P001 --out auto/")
    return _segment(args)


def _fit(args, extra: list[str]) -> int:
    from mrparotid.cli.verbs import print_run, resume_only
    from mrparotid.segmentation.config import load_segment_config
    from mrparotid.segmentation.fit import fit_segmenter, resume_segmenter

    if args.resume:
        resume_only(args, extra + (["--split-from"] if args.split_from else []), command="segment fit")
        s = resume_segmenter(args.resume, progress=not args.quiet)
    else:
        cfg = load_segment_config(args.config, list(extra))
        if args.manifest:
            cfg["data"]["manifest"] = str(args.manifest)
        if args.split_from:
            cfg["data"]["split_from"] = str(args.split_from)
        if args.skip_bad:
            cfg["data"]["skip_bad"] = True
        s = fit_segmenter(cfg, cfg["data"]["manifest"], args.out, progress=not args.quiet,
                          overwrite=args.overwrite)
    print_run(s, _dice_line)
    return 0


def _dice_line(m: dict) -> str:
    det = m.get("detection") or {}
    found = (f"; tumour sides found {det['found']}/{det['tumour_sides']}, false alarms on "
             f"{det['false_alarm_sides']} of {det['sides']} sides" if det else "")
    return (f"gland Dice {_f(m['gland_dice'])}, tumour Dice {_f(m['tumour_dice'])}, "
            f"HD95 gland {_hd95(m, 'gland')}, tumour {_hd95(m, 'tumour')}{found} ({m['patients']} patients)")


def _hd95(m: dict, name: str) -> str:
    """``2.4 mm``, or ``n/a (1 missed, 0 false alarms; 2.4 mm over the 5 others)``."""
    missed, alarms = m.get(f"{name}_hd95_missed", 0), m.get(f"{name}_hd95_false_alarms", 0)
    if not (missed or alarms):
        return f"{_f(m[f'{name}_hd95_mm'], 1)} mm"
    return (f"n/a ({missed} missed, {alarms} false alarm(s); {_f(m.get(f'{name}_hd95_mm_defined'), 1)} mm "
            f"over the {m.get(f'{name}_hd95_n', 0)} others)")


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _segment(args) -> int:
    from mrparotid.cli.privacy import pseudonymiser
    from mrparotid.dicom_out.write import check_dicom_out
    from mrparotid.io.patient_ids import check_unique
    from mrparotid.segmentation.infer import latest_segmenter, load_segmenter
    from mrparotid.training.run_dir import require_complete_run

    targets = [Path(folder).resolve() for folder in args.targets]
    check_unique([(p.name, p) for p in targets], what="output folders")   # before any work
    check_dicom_out(args.dicom_out, getattr(args, "pseudonymise", False))
    if args.checkpoint:
        require_complete_run(args.checkpoint)   # an interrupted segment fit's model is not final
    loaded = load_segmenter(args.checkpoint or latest_segmenter())
    pseudo = pseudonymiser(args, [(p.name, p.name) for p in targets], args.out)
    with pseudo.scrubbing():              # --pseudonymise: folder names replaced everywhere
        return _segment_each(args, loaded, targets, pseudo)


def _segment_each(args, loaded, targets: list[Path], pseudo) -> int:
    """Segment each folder into ``--out/<patient>`` (the pseudonym with ``--pseudonymise``)."""
    from dataclasses import replace

    from mrparotid.cli.verbs import skip_or_raise
    from mrparotid.dicom_out.write import patient_source, write_dicom_results
    from mrparotid.errors import MrParotidError
    from mrparotid.io.manifest import PatientCase
    from mrparotid.segmentation.infer import read_series_study, segment_study
    from mrparotid.segmentation.write import write_auto_masks

    out, bad = Path(args.out), []
    for path in targets:
        case = PatientCase(pseudo.id(path.name), None, path)
        try:
            source = (patient_source(case, roles_file=args.roles) if args.dicom_out
                      else None)                    # a NIfTI T1 is refused before inference
            study, t1 = read_series_study(case, loaded, roles_file=args.roles, hint="folder")
            auto = segment_study(loaded, study)
            auto = replace(auto, synthetic=auto.synthetic or _synthetic_dir(path))
            paths = write_auto_masks(auto, t1, out / case.patient_id, study.series["T1"])
            if source is not None:
                paths["dicom"] = write_dicom_results(
                    Path(args.dicom_out) / case.patient_id, auto.apply(study), source,
                    {"gland": "auto", "tumour": "auto"}, segmenter=loaded.path,
                    synthetic=auto.synthetic).seg
        except MrParotidError as err:
            if len(targets) == 1:
                raise
            bad.append(pseudo.error(err))
            continue
        if not args.quiet:
            print(_summary(auto, paths))
    skip_or_raise(bad, args.skip_bad)
    return 0


def _synthetic_dir(patient_dir: Path) -> bool:
    """A phantom patient: a SYNTHETIC.txt in the folder or up to two levels above."""
    return any((p / "SYNTHETIC.txt").exists() for p in [patient_dir, *list(patient_dir.parents)[:2]])


def _summary(auto, paths: dict) -> str:
    sides = "; ".join(f"{'left' if s == 'L' else 'right'} gland {f.gland_ml:.1f} ml, "
                      + (f"tumour {f.tumour_ml:.1f} ml" if f.tumour_found else "no tumour")
                      for s, f in sorted(auto.sides.items()))
    missing = [n for s, n in (("R", "right"), ("L", "left")) if s not in auto.sides]
    warn = f" WARNING: no {missing[0]} gland found" if missing else ""
    tag = "[SYNTHETIC] " if auto.synthetic else ""
    return f"{tag}{auto.patient_id}: {sides}.{warn}\n  " + "\n  ".join(str(p) for p in paths.values())
