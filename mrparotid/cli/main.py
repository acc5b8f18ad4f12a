"""``mrparotid`` command line: each verb parses its arguments and calls one library function.

Heavy imports (torch, Lightning, SimpleITK) happen inside the verbs so ``--help`` answers at once.
Every problem the user can fix prints one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from mrparotid.cli import phantom as phantom_verb
from mrparotid.cli import verbs
from mrparotid.cli.dicom import add_parsers as add_dicom_parsers
from mrparotid.cli.privacy import add_arguments as add_privacy_arguments
from mrparotid.cli.segment import add_parsers as add_segment_parsers
from mrparotid.cli.serve import add_parsers as add_serve_parsers
from mrparotid.errors import MrParotidError
from mrparotid.runtime import tune_malloc

EPILOG_OVERRIDES = ("Any config key can be overridden LightningCLI-style, e.g. --trainer.max_epochs 5 "
                    "--data.image_size 64 --optim.lr 3e-4 (see configs/default.yaml).")


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
                           "(patient_id,diagnosis,patient_dir[,split][,centre]); default: the "
                           "embedded SYNTHETIC phantom cohort")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    def training_options(p, out_name: str, out_help: str):
        common(p)
        p.add_argument("--out", "-o", metavar=out_name, help=out_help)
        p.add_argument("--overwrite", action="store_true", help=f"replace a run already in {out_name}")
        p.add_argument("--skip-bad", action="store_true", help="train without bad patients instead of failing")
        p.add_argument("--resume", metavar=out_name, help=f"continue the interrupted run in {out_name} "
                       "from its last checkpoint, with its own config and split (no other options)")

    p = add_verb(sub, "phantom", "write a SYNTHETIC phantom cohort + manifest",
                 "Write a SYNTHETIC phantom cohort in the documented patient-folder layout, with its "
                 "manifest.csv.", ["mrparotid phantom demo/ --patients 40"])
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--patients", "-n", type=int, default=40, help="number of patients (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--centres", type=int, default=3,
                   help="scanner profiles (centres), 1 to 3 (default 3; 1 = the look before centres)")
    p.add_argument("--no-diffusion", action="store_true", help="write no DWI/ADC series")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=phantom_verb.cmd_phantom)

    p = add_verb(sub, "prepare", "build the slice-crop cache of a cohort",
                 "Read every patient of MANIFEST, bring the series onto the T1 grid, cut the labelled "
                 "4-channel gland-slice crops and cache them; print slices per class and patients per "
                 "diagnosis per split.", ["mrparotid prepare demo/manifest.csv --json counts.json"],
                 overrides=True)
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--config", "-c", metavar="C", help="YAML config (default configs/default.yaml)")
    p.add_argument("--json", metavar="PATH", help="also write the counts as JSON")
    p.add_argument("--skip-bad", action="store_true", help="exit 0 even when some patients are bad")
    centre_option(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=verbs.cmd_prepare)

    p = add_verb(sub, "fit", "train a slice classifier",
                 "Train the reduced ResNet18 on a cohort's slice crops and write a run folder: "
                 "config.yaml, split.json, checkpoints/best.ckpt + last.ckpt, metrics.csv, "
                 "predictions_*.csv, summary.json, evaluation/report.md.",
                 ["mrparotid fit                       # embedded phantom cohort",
                  "mrparotid fit -m cohort.csv --out runs/r1 --trainer.max_epochs 30",
                  "mrparotid fit -c paper -m cohort.csv   # the paper's recipe",
                  "mrparotid fit -m cohort.csv --cv 5     # 5-fold CV by patient",
                  "mrparotid fit -m cohort.csv --cv --group centre   # leave-one-centre-out"], overrides=True)
    training_options(p, "RUN_DIR", "run folder (default runs/<timestamp>; required with several "
                     "processes)")
    p.add_argument("--cv", type=int, nargs="?", const=0, metavar="K", help="K-fold cross-validation "
                   "grouped by patient; with --group centre one fold per centre (K may be omitted)")
    p.add_argument("--group", choices=["patient", "centre"], help="with --cv: 'centre' holds out one "
                   "whole centre per fold (leave-one-centre-out) and compares it with an in-centre CV "
                   "of the same patients (report.md at the CV folder)")
    centre_option(p)
    p.add_argument("--segmenter", metavar="SEG", help="add the clinic path (automatic masks from this "
                   "segmenter) to the run's evaluation: evaluation/clinic.md")
    p.add_argument("--allow-overlap", action="store_true", help="go on (with a warning) when the "
                   "segmenter trained or validated on any of the classifier's test patients")
    p.set_defaults(func=verbs.cmd_fit)

    p = add_verb(sub, "ablate", "compare channel subsets (the paper's Table 3)",
                 "Train and test one model per channel subset of {T1, CE-T1, T2, mask} on the same "
                 "patient split and compare them.",
                 ["mrparotid ablate --channels T1,T2",
                  "mrparotid ablate --channels T1 --channels CE-T1,T2,mask",
                  "mrparotid ablate --all      # the 7 series combinations (+ mask)",
                  "mrparotid ablate --missing --out runs/abl   # + one series-dropout model on each "
                  "subset (reuses runs/abl from --all)"], overrides=True)
    training_options(p, "DIR", "output folder (default runs/ablate-<timestamp>)")
    p.add_argument("--channels", action="append", metavar="LIST",
                   help="comma-separated channels, repeatable (T1, CE-T1, T2, mask)")
    p.add_argument("--all", action="store_true", help="the seven series combinations of Table 3")
    p.add_argument("--no-mask", action="store_true", help="with --all: leave the mask channel out")
    p.add_argument("--missing", action="store_true",
                   help="train one model with series dropout (--augment.series_dropout, default 0.3) "
                        "in DIR/dropout, score it on every series subset (the others zeroed and "
                        "flagged absent) beside the dedicated subset models in DIR/<subset> (trained "
                        "unless an ablate --all run is there) -> DIR/missing.md, missing.csv")
    p.set_defaults(func=verbs.cmd_ablate)

    p = add_verb(sub, "diagnose", "per-patient diagnosis with per-slice evidence",
                 "Preprocess each patient, take its gland and tumour masks from the folder (parotid.*, "
                 "tumour.*) or, for whatever it lacks, from the segmenter, predict the slices of the "
                 "one slice procedure (the tumour slices of the tumour side, every gland slice of a "
                 "side without tumour: the slices 'prepare' caches), apply the rule (> 2 malignant "
                 "slices -> malignant, else PA vs Warthin by majority) and print a summary. A folder "
                 "with only the three series works.",
                 ["mrparotid diagnose patients/P001 --checkpoint runs/r1/checkpoints/best.ckpt",
                  "mrparotid diagnose new/P9 --checkpoint runs/r1/checkpoints/best.ckpt "
                  "--segmenter runs/seg1/checkpoints/best.ckpt   # series only",
                  "mrparotid diagnose cohort.csv --json out.json --csv slices.csv"])
    p.add_argument("patients", nargs="+", metavar="PATIENT_DIR", help="patient folder(s) or a manifest CSV")
    p.add_argument("--checkpoint", metavar="CKPT", help="classifier; default: the newest classifier run "
                   "under runs/ (runs/*/checkpoints/best.ckpt)")
    p.add_argument("--segmenter", metavar="SEG", help="segmenter for the masks a folder lacks; default: "
                   "the newest segmenter run under runs/ ('mrparotid segment fit')")
    p.add_argument("--allow-overlap", action="store_true", help="go on (with a warning) when the "
                   "segmenter trained or validated on any of the classifier's test patients")
    p.add_argument("--all-slices", action="store_true", help="SCREENING view: predict every gland "
                   "slice instead of the procedure's slices (the rule was scored on the latter)")
    p.add_argument("--json", metavar="OUT", help="write the report(s) as JSON")
    p.add_argument("--csv", metavar="OUT", help="write slice predictions in the evaluation CSV format")
    p.add_argument("--roles", metavar="FILE", help="DICOM study folders: series-role mapping YAML")
    p.add_argument("--explain", action="store_true", help="Grad-CAM heat map of each slice's "
                   "predicted class: peak (LPS mm) and share in the tumour, in the JSON and text")
    p.add_argument("--html", metavar="OUT_DIR", help="write a self-contained report page per "
                   "patient (montage, heat maps, slice table; implies --explain) and, with several "
                   "patients, index.html")
    p.add_argument("--overwrite", action="store_true", help="with --html: write into a non-empty OUT_DIR")
    p.add_argument("--dicom-out", metavar="DIR", help="also write DIR/<patient>/SEG.dcm (DICOM SEG of "
                   "the masks) and SR.dcm (TID 1500 report) referencing the T1 DICOM series; they "
                   "carry the study's patient identity (the T1 must be DICOM)")
    p.add_argument("--skip-bad", action="store_true", help="with several patients: go on past bad ones")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    add_privacy_arguments(p)
    p.set_defaults(func=verbs.cmd_diagnose)

    p = add_verb(sub, "evaluate", "tables, figures and CIs for slice predictions",
                 "Score slice predictions like the paper (Tables 4-5, Figs 6-7) with confidence "
                 "intervals.",
                 ["mrparotid evaluate --predictions preds.csv --out eval/",
                  "mrparotid evaluate --checkpoint runs/r1/checkpoints/best.ckpt --manifest cohort.csv "
                  "--split test --out eval/",
                  "mrparotid evaluate --checkpoint runs/r1/checkpoints/best.ckpt --manifest cohort.csv "
                  "--segmenter runs/seg1/checkpoints/best.ckpt --out eval/   # + the clinic path"])
    common(p)
    p.add_argument("--predictions", metavar="PRED.csv", help="patient_id,side,index,true,pred,p_* rows")
    p.add_argument("--val-predictions", metavar="VAL.csv", help="with --predictions: validation "
                   "predictions on which the soft-vote threshold is chosen (else 0.5, said so)")
    p.add_argument("--checkpoint", metavar="CKPT")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", "-o", required=True, metavar="DIR")
    p.add_argument("--synthetic", action="store_true", help="label the report as synthetic data")
    p.add_argument("--segmenter", metavar="SEG", help="with --checkpoint: also score the clinic path "
                   "(automatic masks) beside the manifest's masks -> clinic.md, clinic.json")
    p.add_argument("--allow-overlap", action="store_true", help="go on (with a warning) when the "
                   "segmenter trained or validated on any of the classifier's test patients")
    centre_option(p)
    add_privacy_arguments(p)
    p.set_defaults(func=verbs.cmd_evaluate)

    add_dicom_parsers(sub)
    add_segment_parsers(sub)
    add_serve_parsers(sub)
    return parser


def centre_option(p: argparse.ArgumentParser) -> None:
    """``--centre-from-dicom`` (prepare, fit, evaluate: where a manifest is read)."""
    p.add_argument("--centre-from-dicom", action="store_true", help="rows of the manifest without a "
                   "centre get it from the patient's DICOM headers (InstitutionName, else Manufacturer + "
                   "model); the result is written beside the manifest as <name>.centres.csv and used")


def add_verb(sub, name: str, summary: str, text: str, examples: list[str], *,
             overrides: bool = False) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` shows ``text``, its examples and (``overrides``) how to
    override config keys."""
    label = "example" if len(examples) == 1 else "examples"
    description = f"{text}\n\n{label}:\n" + "\n".join(f"  {e}" for e in examples)
    if overrides:
        description += "\n\n" + EPILOG_OVERRIDES
    return sub.add_parser(name, help=summary, description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _version() -> str:
    from mrparotid import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    tune_malloc()            # large tensors stay in the heap: about 20 % faster steps on CPU
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
    except OSError as exc:  # a folder or file that cannot be written (or read)
        target = exc.filename or "the output"
        print(f"mrparotid: error: cannot write {target}: {exc.strerror or exc} -> choose a folder "
              "you can write to", file=sys.stderr)
        return 2
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
    module = sys.modules.get(func.__module__)
    return func.__module__ == verbs.__name__ or bool(getattr(module, "cmd_takes_extra", False))


def _call_strict(parser, args, extra) -> int:
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
