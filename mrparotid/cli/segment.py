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

  mrparotid segment fit [-m cohort.csv] [--out runs/seg1] [-c segment] [overrides]
      train it on a cohort's contours (config configs/segment.yaml; the patient split is the one
      'fit' uses); writes checkpoints/best.ckpt, last.ckpt, split.json, scores_*.csv, summary.json
      with gland/tumour Dice and HD95 (mm) of the val and test patients.

  mrparotid segment fit --resume runs/seg1
      continue a killed or failed 'segment fit' from checkpoints/last.ckpt with its own config
      and split (no other options); a complete run (summary.json) is left as it is.

  mrparotid segment PATIENT_DIR... --out DIR [--checkpoint CKPT]
      per patient, DIR/<patient_id>/parotid_auto.nii.gz (1 right, 2 left gland),
      tumour_auto.nii.gz and overlay_auto.png, on the original T1 geometry (they overlay the T1
      series in 3D Slicer / ITK-SNAP). A folder needs only the series the segmenter was trained on.

examples:
  mrparotid segment fit --out runs/seg1                  # embedded SYNTHETIC phantom cohort
  mrparotid segment fit -m cohort.csv --out runs/seg1 --trainer.max_epochs 20
  mrparotid segment patients/P001 --out auto/ --checkpoint runs/seg1/checkpoints/best.ckpt

Any segment.yaml key can be overridden with 'segment fit', e.g. --data.spacing_mm 1.5
--trainer.max_epochs 10. The default checkpoint is the newest runs/*/checkpoints/best.ckpt of a
segmenter run.
"""


def add_parsers(subparsers) -> None:
    """Register the ``segment`` sub-command on an argparse subparsers object."""
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
    p.add_argument("--resume", metavar="RUN_DIR", help="fit: continue the interrupted run in RUN_DIR "
                   "from its last checkpoint, with its own config and split (no other options)")
    p.add_argument("--skip-bad", action="store_true", help="go on past bad patients")
    p.add_argument("--roles", metavar="FILE", help="DICOM study folders: series-role mapping YAML")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
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
    for flag, value in (("--manifest", args.manifest), ("--config", args.config), ("--resume", args.resume)):
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
        resume_only(args, extra, command="segment fit")
        s = resume_segmenter(args.resume, progress=not args.quiet)
    else:
        cfg = load_segment_config(args.config, list(extra))
        if args.manifest:
            cfg["data"]["manifest"] = str(args.manifest)
        if args.skip_bad:
            cfg["data"]["skip_bad"] = True
        s = fit_segmenter(cfg, cfg["data"]["manifest"], args.out, progress=not args.quiet,
                          overwrite=args.overwrite)
    print_run(s, _dice_line)
    return 0


def _dice_line(m: dict) -> str:
    return (f"gland Dice {_f(m['gland_dice'])}, tumour Dice {_f(m['tumour_dice'])}, "
            f"HD95 gland {_f(m['gland_hd95_mm'], 1)} mm, tumour {_f(m['tumour_hd95_mm'], 1)} mm "
            f"({m['patients']} patients)")


def _f(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _segment(args) -> int:
    from dataclasses import replace

    from mrparotid.cli.verbs import skip_or_raise
    from mrparotid.errors import MrParotidError
    from mrparotid.io.manifest import PatientCase
    from mrparotid.segmentation.infer import (latest_segmenter, load_segmenter, read_series_study,
                                              segment_study)
    from mrparotid.segmentation.write import write_auto_masks
    from mrparotid.training.run_dir import require_complete_run

    if args.checkpoint:
        require_complete_run(args.checkpoint)   # an interrupted segment fit's model is not final
    loaded = load_segmenter(args.checkpoint or latest_segmenter())
    out, bad = Path(args.out), []
    for folder in args.targets:
        path = Path(folder).resolve()
        case = PatientCase(path.name, None, path)
        try:
            study, t1 = read_series_study(case, loaded, roles_file=args.roles, hint="folder")
            auto = segment_study(loaded, study)
            auto = replace(auto, synthetic=auto.synthetic or _synthetic_dir(path))
            paths = write_auto_masks(auto, t1, out / case.patient_id, study.series["T1"])
        except MrParotidError as err:
            if len(args.targets) == 1:
                raise
            bad.append(err)
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
