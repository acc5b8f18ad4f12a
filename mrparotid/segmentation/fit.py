"""``segment fit``: train the segmenter on a cohort, keep best/last checkpoints, score val/test.

The run folder holds ``config.yaml`` (resolved, ``kind: segmenter``), ``split.json`` (the patient
split of :func:`mrparotid.data.splits.cohort_split`, the classifier's split for the same data
keys), ``checkpoints/best.ckpt`` (highest ``val/dice``; the last epoch without validation
patients) and ``last.ckpt``, ``metrics.csv``, ``scores_val.csv``/``scores_test.csv`` (per
patient) and ``summary.json`` (written last) with mean gland/tumour Dice and HD95 (mm) per split,
measured on the T1 grid after post-processing, as ``mrparotid segment`` would produce them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from mrparotid import __version__
from mrparotid.config import check_trainer_args, dump_config
from mrparotid.data.splits import cohort_split, save_split
from mrparotid.io.atomic import write_json, write_text
from mrparotid.io.manifest import read_manifest
from mrparotid.training.fit import seed_run
from mrparotid.training.run_dir import default_manifest, git_hash, quiet_lightning, resolve_run_dir


def trainer_args(cfg: dict, has_val: bool) -> dict:
    """Lightning Trainer arguments: ``cfg["trainer"]`` with ``precision: auto`` resolved
    (:func:`mrparotid.models.precision.resolve_precision`) and no validation loop without
    validation patients."""
    from mrparotid.models.precision import resolve_precision

    args = dict(cfg["trainer"])
    args["precision"] = resolve_precision(args.get("precision", "auto"), args.get("accelerator", "auto"))[0]
    if not has_val:
        args.update(limit_val_batches=0, num_sanity_val_steps=0)
    return args


def fit_segmenter(cfg: dict, manifest: str | Path | None = None, out_dir: str | Path | None = None,
                  *, progress: bool = True, overwrite: bool = False) -> dict:
    """Train the segmenter (config from :func:`~mrparotid.segmentation.config.load_segment_config`)
    and write the run folder; returns the summary."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from mrparotid.segmentation.cache import load_patient, prepare_seg_cohort
    from mrparotid.segmentation.infer import segmenter_meta
    from mrparotid.segmentation.lit_module import SegmenterModule

    check_trainer_args(trainer_args(cfg, True))
    quiet_lightning()
    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    run_dir = resolve_run_dir(out_dir, cfg["trainer"], overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "summary.json").unlink(missing_ok=True)
    resolved = dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path)))
    dump_config(dict(resolved, kind="segmenter", git=git_hash(), version=__version__), run_dir / "config.yaml")
    seed_run(cfg)

    cohort = prepare_seg_cohort(mf, cfg, progress=progress)
    splits = cohort_split(cohort.ok_cases(), cfg["data"])
    split = save_split(run_dir, splits, mf.cases)
    data = {name: [load_patient(cohort.entries[p]) for p in ids] for name, ids in splits.items()}
    d = cfg["data"]
    loaders = make_loaders(cfg, {k: [e.stack for e in v] for k, v in data.items()})
    has_val = "val_dataloaders" in loaders
    module = SegmenterModule(cfg["model"], cfg["optim"], cfg["loss"], cfg["augment"], list(d["series"]),
                             int(cfg["trainer"]["max_epochs"]), segmenter_meta(cfg, mf.synthetic, split))
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best",
                           monitor="val/dice" if has_val else None, mode="max", save_last=True,
                           save_top_k=1, auto_insert_metric_name=False)
    trainer = pl.Trainer(**trainer_args(cfg, has_val), callbacks=[ckpt], default_root_dir=run_dir,
                         logger=CSVLogger(save_dir=run_dir, name="", version=""),
                         enable_progress_bar=progress, enable_model_summary=False)
    trainer.fit(module, **loaders)
    best = run_dir / "checkpoints" / "best.ckpt"
    summary = {"kind": "segmenter", "run_dir": str(run_dir), "manifest": str(manifest_path),
               "synthetic": mf.synthetic, "series": list(d["series"]), "best_checkpoint": str(best),
               "model_checkpoint": "best (highest val/dice)" if has_val else
               "the last epoch (no validation patients)", "epochs": int(trainer.current_epoch),
               "splits": splits, "bad_patients": [str(e) for e in cohort.bad]}
    summary.update(score_splits(best, data, run_dir, synthetic=mf.synthetic))
    write_json(run_dir / "summary.json", summary)
    return summary


def make_loaders(cfg: dict, stacks: dict[str, list]) -> dict:
    """``trainer.fit`` keyword arguments: the training loader (random placement per
    ``augment.shift``, shuffled) and, with validation patients, the validation loader (centred)."""
    from torch.utils.data import DataLoader

    from mrparotid.segmentation.dataset import SliceDataset

    d = cfg["data"]
    size, batch, workers = int(d["image_size"]), int(d["batch_size"]), int(d["num_workers"])
    train = SliceDataset(stacks["train"], float(d["empty_fraction"]), size,
                         shift=bool(cfg["augment"]["shift"]), seed=int(cfg["seed"]))
    loaders = {"train_dataloaders": DataLoader(train, batch_size=batch, shuffle=True, num_workers=workers,
                                               drop_last=len(train) > batch)}
    if stacks.get("val"):
        val = SliceDataset(stacks["val"], float(d["empty_fraction"]), size, shift=False, seed=int(cfg["seed"]))
        loaders["val_dataloaders"] = DataLoader(val, batch_size=batch, num_workers=workers)
    return loaders


def score_splits(checkpoint: Path, data: dict, run_dir: Path, *, synthetic: bool) -> dict:
    """Mean and per-patient scores of the val and test patients (``scores_<split>.csv``)."""
    from mrparotid.segmentation.infer import load_segmenter, segment_stack
    from mrparotid.segmentation.metrics import mean_scores, patient_scores

    loaded = load_segmenter(checkpoint)
    out = {}
    for name in ("val", "test"):
        rows = []
        for entry in data.get(name, []):
            clean = segment_stack(loaded, entry.stack)
            scores = patient_scores(clean.gland, clean.tumour, entry.gland, entry.tumour, entry.stack.spacing)
            rows.append({"patient_id": entry.stack.patient_id, **scores,
                         "sides_found": "".join(sorted(clean.sides))})
        if rows:
            out[name] = mean_scores(rows)
            write_text(run_dir / f"scores_{name}.csv", scores_csv(rows, synthetic))
    return out


def scores_csv(rows: list[dict], synthetic: bool) -> str:
    """Per-patient scores as CSV text (a ``# SYNTHETIC`` first line for phantom data)."""
    keys = list(rows[0])
    lines = ["# SYNTHETIC phantom data: not patient data"] if synthetic else []
    lines.append(",".join(keys))
    for r in rows:
        lines.append(",".join("" if r[k] is None else f"{r[k]:.4f}" if isinstance(r[k], (float, np.floating))
                              else str(r[k]) for k in keys))
    return "\n".join(lines) + "\n"
