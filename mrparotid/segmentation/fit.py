"""``segment fit``: train the segmenter on a cohort, keep best/last checkpoints, score val/test.

The run folder holds ``config.yaml`` (resolved, ``kind: segmenter``), ``split.json`` (the patient
split: a classifier run's own with ``data.split_from`` / ``--split-from RUN_DIR``
(:mod:`.split_from`), else :func:`mrparotid.data.splits.cohort_split`, the classifier's split for
the same data keys; also in the checkpoint's meta), ``checkpoints/best.ckpt`` (highest
``val/dice``, :data:`~mrparotid.segmentation.lit_module.SELECTION`; the last epoch without
validation patients) and ``last.ckpt`` (every epoch, with optimiser and random states),
``metrics.csv``, ``scores_val.csv``/``scores_test.csv`` (per patient) and ``summary.json`` (written
last, so a folder without it is an interrupted run) with, per split, mean gland/tumour Dice, HD95
(mm; undefined when a structure was missed, with the counts, :func:`.metrics.mean_scores`) and
side-level tumour detection (found and false alarm apart, :mod:`.detection`), measured on the T1
grid after post-processing, as ``mrparotid segment`` would produce them.
``segment fit --resume RUN_DIR`` (:func:`resume_segmenter`) continues a killed run from
``last.ckpt`` (see :mod:`mrparotid.training.resume`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from mrparotid import __version__
from mrparotid.config import check_trainer_args, dump_config
from mrparotid.data.splits import cohort_split, save_split
from mrparotid.errors import ConfigError
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
                  *, progress: bool = True, overwrite: bool = False, resume: bool = False,
                  splits: dict[str, list[str]] | None = None) -> dict:
    """Train the segmenter (config from :func:`~mrparotid.segmentation.config.load_segment_config`)
    and write the run folder; returns the summary.

    ``resume``: continue the interrupted run in ``out_dir`` from its ``checkpoints/last.ckpt``
    (from epoch 0 when there is none yet), keeping its ``config.yaml``; ``cfg`` and ``splits``
    should then be the run's own (:func:`resume_segmenter` passes them). ``splits``: patient ids
    per split instead of :func:`~mrparotid.data.splits.cohort_split` (or of ``data.split_from``).
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from mrparotid.segmentation.cache import load_patient, prepare_seg_cohort
    from mrparotid.segmentation.infer import segmenter_meta
    from mrparotid.segmentation.lit_module import SegmenterModule
    from mrparotid.training.progress import trainer_progress
    from mrparotid.training.resume import resumable_trainer_parts

    check_trainer_args(trainer_args(cfg, True))
    quiet_lightning()
    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    run_dir = Path(out_dir) if resume else resolve_run_dir(out_dir, cfg["trainer"], overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:         # a failed or replaced run's checkpoints must not pass for this run's
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        (run_dir / "summary.json").unlink(missing_ok=True)
    resolved = dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path)))
    if not (resume and (run_dir / "config.yaml").is_file()):   # a resumed run keeps its record
        dump_config(dict(resolved, kind="segmenter", git=git_hash(), version=__version__),
                    run_dir / "config.yaml")
    seed_run(cfg)
    last = run_dir / "checkpoints" / "last.ckpt"
    resume_from = last if resume and last.is_file() else None

    cohort = prepare_seg_cohort(mf, cfg, progress=progress)
    splits, split_note = choose_splits(cfg, cohort.ok_cases(), mf.path, splits)
    split = save_split(run_dir, splits, mf.cases)
    data = {name: [load_patient(cohort.entries[p]) for p in ids] for name, ids in splits.items()}
    d = cfg["data"]
    loaders = make_loaders(cfg, {k: [e.stack for e in v] for k, v in data.items()})
    has_val = "val_dataloaders" in loaders
    module = SegmenterModule(cfg["model"], cfg["optim"], cfg["loss"], cfg["augment"], list(d["series"]),
                             int(cfg["trainer"]["max_epochs"]), segmenter_meta(cfg, mf.synthetic, split))
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best",
                           monitor="val/dice" if has_val else None, mode="max",
                           save_top_k=1, auto_insert_metric_name=False)
    parts = resumable_trainer_parts(last)   # last.ckpt every epoch, RNG states, atomic files
    bar = trainer_progress(progress)        # a bar on a terminal, else one line per epoch
    trainer = pl.Trainer(**trainer_args(cfg, has_val),
                         callbacks=[ckpt, *parts["callbacks"], *bar["callbacks"]],
                         plugins=parts["plugins"], default_root_dir=run_dir,
                         logger=CSVLogger(save_dir=run_dir, name="", version=""),
                         enable_progress_bar=bar["enable_progress_bar"], enable_model_summary=False)
    if resume_from is not None:
        print(f"resuming from {resume_from}")
    trainer.fit(module, **loaders, ckpt_path=resume_from, weights_only=True)
    best = run_dir / "checkpoints" / "best.ckpt"
    summary = {"kind": "segmenter", "run_dir": str(run_dir), "manifest": str(manifest_path),
               "synthetic": mf.synthetic, "series": list(d["series"]), "best_checkpoint": str(best),
               "model_checkpoint": chosen_by(ckpt, best) if has_val else
               "the last epoch (no validation patients)", "epochs": int(trainer.current_epoch),
               "split": split_note, "splits": splits, "bad_patients": [str(e) for e in cohort.bad]}
    summary.update(score_splits(best, data, run_dir, synthetic=mf.synthetic))
    write_json(run_dir / "summary.json", summary)   # last, atomically: the run is complete
    return summary


def resume_segmenter(run_dir: str | Path, *, progress: bool = True) -> dict:
    """``mrparotid segment fit --resume RUN_DIR``: finish an interrupted segmenter run with its own
    config and split (its summary, as :func:`fit_segmenter`); a complete run is returned as it is.

    Raises
    ------
    ConfigError
        Not a run folder, or a classifier run (resumed by ``mrparotid fit --resume``).
    """
    from mrparotid.training.resume import resume_point

    point = resume_point(run_dir)
    if point.kind != "segmenter":
        raise ConfigError("this is a classifier run, not a segmenter run", path=run_dir,
                          fix=f"resume it with: mrparotid fit --resume {run_dir}")
    if point.complete:
        print(f"the run in {run_dir} is complete (summary.json): nothing to resume")
        return json.loads((point.run_dir / "summary.json").read_text(encoding="utf-8"))
    return fit_segmenter(point.cfg, point.cfg["data"]["manifest"], point.run_dir, splits=point.splits,
                         progress=progress, resume=True)


def choose_splits(cfg: dict, cases, manifest: Path, splits: dict[str, list[str]] | None = None
                  ) -> tuple[dict[str, list[str]], str]:
    """(patient ids per split, where they came from): ``splits`` as given (a resumed run's own),
    else the classifier run's of ``data.split_from`` (read, never recomputed), else
    :func:`~mrparotid.data.splits.cohort_split` of ``cases`` under the data keys."""
    from mrparotid.segmentation.split_from import read_run_split, splits_from_record

    source = cfg["data"].get("split_from")
    if splits is not None:
        return splits, (f"the classifier run's split ({source})" if source else "the run's saved split")
    if not source:
        d = cfg["data"]
        return cohort_split(cases, d), (f"drawn by cohort_split (test_fraction {d['test_fraction']}, "
                                        f"val_fraction {d['val_fraction']}, split_seed {d['split_seed']})")
    splits, left_out = splits_from_record(read_run_split(source), cases, source=source, manifest=manifest)
    note = f"the classifier run's split ({source})"
    if left_out:
        note += f"; {len(left_out)} patient(s) it does not name left out: {', '.join(left_out)}"
        print(f"note: {note}")
    return splits, note


def chosen_by(ckpt, best: Path) -> dict:
    """What chose ``best.ckpt``: the figure, its definition, its value and the epoch."""
    import torch

    from mrparotid.segmentation.lit_module import SELECTION

    score = ckpt.best_model_score
    epoch = torch.load(best, map_location="cpu", weights_only=True).get("epoch") if best.is_file() else None
    return {"checkpoint": "best", "figure": "val/dice", "definition": SELECTION,
            "value": None if score is None else round(float(score), 4), "epoch": epoch}


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

    loaded = load_segmenter(checkpoint)
    out = {}
    for name in ("val", "test"):
        rows, sides = [], []
        for entry in data.get(name, []):
            row, detected = score_patient(segment_stack(loaded, entry.stack), entry)
            rows.append(row)
            sides += detected
        if rows:
            out[name] = split_scores(rows, sides)
            write_text(run_dir / f"scores_{name}.csv", scores_csv(rows, synthetic))
    return out


def score_patient(clean, entry) -> tuple[dict, list[dict]]:
    """(per-patient row, its sides' detection records) of post-processed automatic masks
    ``clean`` against a cached patient's given masks."""
    from mrparotid.segmentation.detection import half_space_sides, side_detection
    from mrparotid.segmentation.metrics import patient_scores

    spacing = entry.stack.spacing
    scores = patient_scores(clean.gland, clean.tumour, entry.gland, entry.tumour, spacing)
    sides = side_detection(clean.tumour, entry.tumour, half_space_sides(entry.gland, entry.tumour, spacing))
    row = {"patient_id": entry.stack.patient_id, **scores, "gland_sides": "".join(sorted(clean.sides)),
           "tumour_sides": sum(s["tumour"] for s in sides.values()),
           "tumour_sides_found": sum(s["tumour"] and s["found"] for s in sides.values()),
           "false_alarm_sides": sum(s["false_alarm"] for s in sides.values())}
    return row, list(sides.values())


def split_scores(rows: list[dict], sides: list[dict]) -> dict:
    """A split's summary: :func:`~mrparotid.segmentation.metrics.mean_scores` and the side-level
    detection counts (:func:`~mrparotid.segmentation.detection.detection_counts`)."""
    from mrparotid.segmentation.detection import detection_counts
    from mrparotid.segmentation.metrics import mean_scores

    return {**mean_scores(rows), "detection": detection_counts(sides)}


def scores_csv(rows: list[dict], synthetic: bool) -> str:
    """Per-patient scores as CSV text (a ``# SYNTHETIC`` first line for phantom data)."""
    keys = list(rows[0])
    lines = ["# SYNTHETIC phantom data: not patient data"] if synthetic else []
    lines.append(",".join(keys))
    for r in rows:
        lines.append(",".join("" if r[k] is None else f"{r[k]:.4f}" if isinstance(r[k], (float, np.floating))
                              else str(r[k]) for k in keys))
    return "\n".join(lines) + "\n"
