"""``python tools/bench.py segment``: the segmenter's figures (issue 10), on SYNTHETIC phantom data.

1. ``segment fit`` on the embedded 60-patient phantom at the default settings (configs/segment.yaml),
   as a fresh process, slice cache cold: wall time (target <= 15 min on 2 idle cores) and the test
   patients' gland / tumour Dice (targets >= 0.90 / >= 0.85) and HD95.
2. One held-out phantom patient given as its three series only: ``segment`` (automatic masks),
   then ``diagnose`` of the series plus those masks; warm (in-process, median of 3; target <= 5 s)
   and as fresh processes (best of 2; target <= 15 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SERIES_NAMES = {"T1": ("T1", "T1W"), "CE-T1": ("CE-T1", "CE_T1", "T1C", "T1CE", "T1+C"), "T2": ("T2", "T2W")}


def _run(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mrparotid", *argv], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"mrparotid {' '.join(argv)} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def series_only(patient_dir: Path, dest: Path) -> Path:
    """A copy of a patient folder with only its three series (files or DICOM folders)."""
    from mrparotid.io.files import role_of

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for entry in patient_dir.iterdir():
        if role_of(entry) in SERIES_NAMES:
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, dest / entry.name)
    return dest


def classifier_checkpoint(work: Path, manifest: Path) -> Path:
    """A classifier for ``diagnose`` (one training step: its speed, not its accuracy, counts here)."""
    from mrparotid.config import load_config
    from mrparotid.training.fit import fit

    ckpt = work / "seg-diag-run" / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        cfg = load_config(None, ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                                 "--trainer.limit_val_batches", "1", "--trainer.accelerator", "cpu"])
        fit(cfg, manifest=manifest, out_dir=ckpt.parent.parent, progress=False, evaluate=False,
            overwrite=True)
    return ckpt


def _hd95(m: dict, name: str) -> str:
    """Mean HD95 (mm), or n/a with the counts of missed and false-alarm patients."""
    missed, alarms = m[f"{name}_hd95_missed"], m[f"{name}_hd95_false_alarms"]
    if missed or alarms:
        rest = m[f"{name}_hd95_mm_defined"]
        return (f"n/a ({missed} missed, {alarms} false alarm(s); "
                f"{'n/a' if rest is None else f'{rest:.1f} mm'} over the other {m[f'{name}_hd95_n']})")
    return f"{m[f'{name}_hd95_mm']:.1f} mm"


def bench_segment(work: Path) -> None:
    from mrparotid.cli.main import main
    from mrparotid.io.manifest import read_manifest
    from mrparotid.segmentation.config import load_segment_config
    from mrparotid.training.run_dir import default_manifest

    env = dict(os.environ, MRPAROTID_HOME=str(work / "home"))
    os.environ["MRPAROTID_HOME"] = env["MRPAROTID_HOME"]
    manifest = default_manifest(load_segment_config(), progress=False)     # not timed
    shutil.rmtree(manifest.parent / ".mrparotid_cache" / "segment", ignore_errors=True)
    run = work / "seg-fit"
    fit_s = _run(["segment", "fit", "--out", str(run), "--overwrite", "-q"], env)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    test = summary["test"]
    print(f"SYNTHETIC phantom cohort, {len(read_manifest(manifest).cases)} patients, configs/segment.yaml "
          f"({summary['epochs']} epochs)")
    print(f"segment fit (fresh process, cold cache): {fit_s / 60:.1f} min (target <= 15 min on 2 cores)")
    det = test["detection"]
    print(f"test ({test['patients']} patients): gland Dice {test['gland_dice']:.3f} (target >= 0.90), "
          f"tumour Dice {test['tumour_dice']:.3f} (target >= 0.85), HD95 gland {_hd95(test, 'gland')}, "
          f"tumour {_hd95(test, 'tumour')}; tumour found on {det['found']}/{det['tumour_sides']} tumour "
          f"sides, false alarms on {det['false_alarm_sides']} of {det['sides']} sides")
    print(f"best.ckpt: {summary['model_checkpoint']}")

    pid = summary["splits"]["test"][0]
    patient = series_only(manifest.parent / "patients" / pid, work / "series-only" / pid)
    seg_ckpt, cls_ckpt = run / "checkpoints" / "best.ckpt", classifier_checkpoint(work, manifest)
    out = work / "auto"

    def chain(fresh: bool) -> float:
        for name in ("parotid.nii.gz", "tumour.nii.gz"):
            (patient / name).unlink(missing_ok=True)
        seg = ["segment", str(patient), "--checkpoint", str(seg_ckpt), "--out", str(out), "-q"]
        diag = ["diagnose", str(patient), "--checkpoint", str(cls_ckpt), "-q"]
        t0 = time.perf_counter()
        if fresh:
            _run(seg, env)
        else:
            assert main(seg) == 0
        shutil.copy(out / pid / "parotid_auto.nii.gz", patient / "parotid.nii.gz")   # masks for diagnose
        shutil.copy(out / pid / "tumour_auto.nii.gz", patient / "tumour.nii.gz")
        if fresh:
            _run(diag, env)
        else:
            assert main(diag) == 0
        return time.perf_counter() - t0

    chain(False)                                            # warm-up: imports, first loads
    warm = sorted(chain(False) for _ in range(3))[1]
    fresh = min(chain(True) for _ in range(2))
    print(f"patient {pid} from its three series: segment + diagnose warm (in-process, median of 3): "
          f"{warm:.2f} s (target <= 5 s)")
    print(f"segment + diagnose as fresh processes (best of 2): {fresh:.2f} s (target <= 15 s)")
