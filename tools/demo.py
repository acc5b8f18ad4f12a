"""`make demo`: SYNTHETIC phantom cohort → short classifier fit → short segmenter fit → a held-out
patient diagnosed from its three MR series alone (automatic masks, JSON and an HTML report page).

``--diffusion`` (``make demo-diffusion``) then shows what the ADC adds: the same short recipe with
and without the ADC channel on one split, and the ablation report's lesion-slice and PA-vs-Warthin
patient accuracy with their paired CIs.

The classifier trains at 112 px (the recipe's default is 224 px) and the segmenter for 15 epochs
(its default is 60), so that the demo finishes in a few minutes on two CPU cores; `mrparotid fit`
and `mrparotid segment fit` keep their full recipes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_segment import series_only      # tools/ is on the path when this script runs

from mrparotid.io.files import role_of

# seconds on 2 idle cores for the 40-patient cohort; they scale with the epochs and image size
# (measured single-threaded on a busy machine, which is slower than 2 idle cores)
FIT_EPOCH_S = 3.0          # classifier, one epoch at 112 px (scales with image_size squared)
SEG_EPOCH_S = 2.5          # segmenter, one epoch at configs/segment.yaml's 128 px, 1.5 mm
SEG_SETUP_S = 10.0         # segmenter: slice cache (first run) and scoring the val/test patients


def run(*args: str) -> float:
    """Run ``mrparotid ARGS`` (exit on failure); its wall time in seconds, also printed."""
    print("+ mrparotid " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "mrparotid", *args])
    if code:
        sys.exit(code)
    took = time.perf_counter() - t0
    print(f"  ({took:.0f} s)", flush=True)
    return took


def held_out_patient(classifier_run: Path, segmenter_run: Path) -> str:
    """A patient in the test split of both runs (the same split, by design): seen by neither."""
    tests = [set(json.loads((run / "summary.json").read_text(encoding="utf-8"))["splits"]["test"])
             for run in (classifier_run, segmenter_run)]
    common = sorted(tests[0] & tests[1])
    if not common:
        sys.exit("the classifier and segmenter runs share no test patient: their split keys differ")
    return common[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default="demo")
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=20, help="classifier epochs")
    ap.add_argument("--image-size", type=int, default=112, help="crop side in px (fit's default: 224)")
    ap.add_argument("--seg-epochs", type=int, default=15, help="segmenter epochs (segment fit's default: 60)")
    ap.add_argument("--diffusion", action="store_true", help="then compare T1, CE-T1, T2 with and without ADC")
    a = ap.parse_args()
    t_start = time.perf_counter()
    root = Path(a.dir)
    manifest = root / "cohort" / "manifest.csv"
    if not manifest.exists():
        run("phantom", str(root / "cohort"), "--patients", str(a.patients))
    run_dir, seg_dir = root / "run", root / "segmenter"
    scale = a.patients / 40
    minutes = a.epochs * FIT_EPOCH_S * (a.image_size / 112) ** 2 * scale / 60
    print(f"training the classifier {a.epochs} epochs at {a.image_size} px: about {minutes:.1f} min "
          "on 2 CPU cores (SYNTHETIC data; a short fit, not the 224 px recipe)", flush=True)
    run("fit", "--manifest", str(manifest), "--out", str(run_dir), "--overwrite",
        "--trainer.max_epochs", str(a.epochs), "--data.image_size", str(a.image_size))
    minutes = (a.seg_epochs * SEG_EPOCH_S * scale + SEG_SETUP_S) / 60
    print(f"training the segmenter {a.seg_epochs} epochs: about {minutes:.1f} min on 2 CPU cores "
          "(SYNTHETIC data; a short fit, not the 60-epoch recipe)", flush=True)
    run("segment", "fit", "--manifest", str(manifest), "--out", str(seg_dir), "--overwrite",
        "--split-from", str(run_dir), "--trainer.max_epochs", str(a.seg_epochs))

    # a new patient: only the three MR series of a test patient, no contours
    patient = held_out_patient(run_dir, seg_dir)
    new_root = root / "new_patient"
    folder = series_only(root / "cohort" / "patients" / patient, new_root / patient)
    shutil.copy(root / "cohort" / "SYNTHETIC.txt", new_root / "SYNTHETIC.txt")
    print(f"diagnosing {patient} from its three series alone ({', '.join(sorted(p.name for p in folder.iterdir()))})",
          flush=True)
    classifier, segmenter = run_dir / "checkpoints" / "best.ckpt", seg_dir / "checkpoints" / "best.ckpt"
    run("segment", str(folder), "--checkpoint", str(segmenter), "--out", str(root / "auto"))
    report_json, html = root / f"{patient}.json", root / "report"
    run("diagnose", str(folder), "--checkpoint", str(classifier), "--segmenter", str(segmenter),
        "--json", str(report_json), "--html", str(html), "--overwrite")

    masks = root / "auto" / patient
    pages = sorted(html.glob("*.html"))
    t1 = next(p for p in sorted(folder.iterdir()) if role_of(p) == "T1")
    print(f"\nautomatic masks: {masks / 'parotid_auto.nii.gz'} (1 right, 2 left gland), "
          f"{masks / 'tumour_auto.nii.gz'} (overlay check: {masks / 'overlay_auto.png'})")
    print(f"  open them as label maps over the T1 series {t1} in 3D Slicer or ITK-SNAP (same geometry)")
    print(f"diagnosis (JSON): {report_json}")
    print(f"report page (HTML): {pages[0] if pages else html}")
    if a.diffusion:
        diffusion_step(root, manifest, a)
    print(f"demo took {(time.perf_counter() - t_start) / 60:.1f} min (SYNTHETIC data)")


def diffusion_step(root: Path, manifest: Path, a: argparse.Namespace) -> None:
    """The three series with and without the ADC (the phantom's DWI gives it; one centre writes
    no ADC map, so it is computed there), one split with a quarter of the patients tested; prints
    the ablation report's table of what the ADC adds."""
    minutes = 2 * a.epochs * FIT_EPOCH_S * (a.image_size / 112) ** 2 * (a.patients / 40) / 60
    print(f"\nwhat ADC adds: two fits of {a.epochs} epochs, about {minutes:.1f} min (SYNTHETIC data)", flush=True)
    out = root / "ablate_adc"
    run("ablate", "-m", str(manifest), "--channels", "T1,CE-T1,T2,mask", "--channels", "T1,CE-T1,T2,ADC,mask",
        "--out", str(out), "--overwrite", "--trainer.max_epochs", str(a.epochs), "--data.image_size",
        str(a.image_size), "--data.test_fraction", "0.25", "-q")
    text = (out / "ablation.md").read_text(encoding="utf-8")
    start = text.find("## What a channel set adds")
    print(text[start:text.find("## Methods", start)].strip() if start >= 0 else text)
    print(f"ablation report: {out / 'ablation.md'}")


if __name__ == "__main__":
    main()
