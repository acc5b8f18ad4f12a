"""``fit``: train on a cohort, keep best/last checkpoints, predict val/test, evaluate, summarise.

The run folder's layout is described in :mod:`mrparotid.training.run_dir`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mrparotid import __version__
from mrparotid.config import check_trainer_args, dump_config
from mrparotid.data.splits import save_split
from mrparotid.errors import ManifestError
from mrparotid.io.manifest import case_centres, read_manifest
from mrparotid.io.atomic import write_json
from mrparotid.training.cross_fit import FOLDER as CROSS_FIT_FOLDER
from mrparotid.training.run_dir import (default_manifest, git_hash, holds_run, is_worker,
                                        quiet_lightning, resolve_run_dir)


def fit(cfg: dict, *, manifest: str | Path | None = None, out_dir: str | Path | None = None,
        splits: dict[str, list[str]] | None = None, progress: bool = True,
        evaluate: bool = True, overwrite: bool = False, resume: bool = False,
        segmenter=None, decide: bool = True, allow_overlap: bool = False) -> dict:
    """Train on a cohort, keep best/last checkpoints, predict val/test, write ``summary.json``.

    ``resume``: continue the interrupted run in ``out_dir`` from its ``checkpoints/last.ckpt``
    (from epoch 0 when there is none yet); a complete run (``summary.json``) is returned as it is.
    ``cfg`` and ``splits`` should then be the run's own
    (:func:`mrparotid.training.resume.resume_point`). ``segmenter``
    (:class:`mrparotid.inference.masks.Segmenter`) chooses the decision on automatic masks and adds
    the clinic path to the evaluation (``evaluation/clinic.md``); it is refused when it trained or
    validated on this run's test patients, unless ``allow_overlap``.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.training.progress import trainer_progress
    from mrparotid.models.checkpoint import checkpoint_meta, load_checkpoint
    from mrparotid.models.lit_module import SliceClassifier, class_weights_from
    from mrparotid.training.resume import resumable_trainer_parts, saved_splits

    check_trainer_args(cfg["trainer"])
    from mrparotid.training.selection import decision_masks

    masks = decision_masks(cfg, segmenter)
    quiet_lightning()
    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    if resume and holds_run(Path(out_dir)):
        print(f"the run in {out_dir} is complete (summary.json): nothing to resume")
        return json.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8"))
    run_dir = Path(out_dir) if resume else resolve_run_dir(out_dir, cfg["trainer"], overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not is_worker() and not resume:   # a failed or replaced run's outputs must not pass for this run's
        clear_run_outputs(run_dir)
    resolved = dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path)))
    if not (resume and (run_dir / "config.yaml").is_file()):   # a resumed run keeps its record
        dump_config(dict(resolved, git=git_hash(), version=__version__), run_dir / "config.yaml")
    seed_run(cfg)
    last = run_dir / "checkpoints" / "last.ckpt"
    resume_from = last if resume and last.is_file() else None
    if resume and splits is None:
        splits = saved_splits(run_dir)       # the run's own split carries over

    dm = ParotidDataModule(cfg, mf, splits=splits, progress=progress)
    dm.prepare_data()
    dm.setup("fit")
    k_cross = int(cfg["decision"].get("cross_fit") or 0)
    if k_cross and dm.splits.get("val"):      # cross-fitting: every training patient trains the model
        from mrparotid.training.cross_fit import merged_splits

        dm = ParotidDataModule(cfg, mf, splits=merged_splits(dm.splits), progress=progress)
        dm.prepare_data()
        dm.setup("fit")
    split = save_split(run_dir, dm.splits, mf.cases) if not is_worker() else None
    if split and split["val_carved_from_train"]:
        print(f"the manifest names no validation patients: {len(split['val_carved_from_train'])} of its "
              f"training patients (data.val_fraction {cfg['data']['val_fraction']}) validate instead "
              "(split.json val_carved_from_train)")
    if segmenter is not None and split is not None:    # never a segmenter that saw the test patients
        from mrparotid.segmentation.overlap import check_segmenter_overlap

        warning = check_segmenter_overlap(segmenter.loaded().meta, split, allow=allow_overlap,
                                          seg_path=segmenter.path, cls_path=run_dir / "split.json")
        if warning:
            print(f"WARNING: {warning}")
    weights = class_weights_from(cfg["optim"]["class_weights"], dm.class_counts())
    module = SliceClassifier(cfg["model"], cfg["optim"], list(dm.channels),
                             int(cfg["trainer"]["max_epochs"]), weights,
                             checkpoint_meta(cfg, mf.synthetic, split))
    has_val = dm.has_val()
    if not has_val and not is_worker():
        print("no validation patients: best.ckpt cannot be chosen, so the model is "
              "checkpoints/last.ckpt (summary.json records it)")
    from mrparotid.training.patient_val import MONITOR, PatientValidation
    from mrparotid.training.selection import add_validation_curve, chosen_by, weight_averaging

    patient_val = (PatientValidation(dm.data["val"].patient_id, dm.data["val"].y.numpy(),
                                     from_epoch=int(cfg["trainer"]["max_epochs"]) // 2) if has_val else None)
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=MONITOR,
                           mode="min", save_top_k=1, auto_insert_metric_name=False)
    kwargs = trainer_kwargs(cfg, has_val)
    precision = precision_note(cfg, kwargs["precision"])
    parts = resumable_trainer_parts(last)   # last.ckpt every epoch, RNG states, atomic files
    bar = trainer_progress(progress)        # a bar on a terminal, else one line per epoch
    trainer = pl.Trainer(**kwargs, callbacks=([patient_val, ckpt] if has_val else []) + weight_averaging(cfg, steps_per_epoch(dm, cfg))
                         + parts["callbacks"] + bar["callbacks"], plugins=parts["plugins"],
                         default_root_dir=run_dir,
                         logger=CSVLogger(save_dir=run_dir, name="", version=""),
                         enable_progress_bar=bar["enable_progress_bar"], enable_model_summary=False)
    if resume_from is not None and not is_worker():
        print(f"resuming from {resume_from}")
    trainer.fit(module, datamodule=dm, ckpt_path=resume_from, weights_only=True)
    has_test = len(dm.data.get("test", [])) > 0
    if has_test:
        trainer.test(module, datamodule=dm, ckpt_path="best" if has_val else str(last), verbose=False)
    if not trainer.is_global_zero:
        return {}

    last = run_dir / "checkpoints" / "last.ckpt"
    best = Path(ckpt.best_model_path) if has_val and ckpt.best_model_path else last
    loaded = load_checkpoint(best)
    summary = {"run_dir": str(run_dir), "manifest": str(manifest_path), "synthetic": mf.synthetic,
               "channels": list(dm.channels), "best_checkpoint": str(best),
               "model_checkpoint": chosen_by(ckpt) if has_val else
               "last (no validation patients, so no best.ckpt)",
               "validation_curve": {MONITOR: patient_val.history} if has_val else {},
               "epochs": int(trainer.current_epoch), "splits": {k: sorted(v) for k, v in dm.splits.items()}}
    summary["precision"] = precision
    rule_n = int(cfg["rule"]["malignant_min_slices"])
    for split in ("val", "test"):
        rows = write_split_predictions(loaded.model, dm.data.get(split),
                                       run_dir / f"predictions_{split}.csv",
                                       batch_size=int(cfg["data"]["batch_size"]), synthetic=mf.synthetic,
                                       precision=kwargs["precision"], centres=case_centres(mf.cases))
        if rows is not None:
            summary[split] = quick_metrics(rows, rule_n)
    from mrparotid.training.decision import choose_decision
    if not decide:
        write_json(run_dir / "summary.json", summary)
        return summary
    if k_cross:                  # the decision is chosen on out-of-fold predictions of every training patient
        from mrparotid.training.cross_fit import cross_fit_predictions

        cross_fit_predictions(fit, cfg, manifest_path, run_dir, dm.splits["train"], mf.cases, k=k_cross,
                              synthetic=mf.synthetic, progress=progress)
        summary["val"] = {"cross_fit": k_cross}
    auto = None
    if "val" in summary and masks == "auto":
        from mrparotid.training.decision import auto_mask_patients     # as diagnose will see them

        by_id = mf.by_id()
        auto = auto_mask_patients(best, segmenter, [by_id[p] for p in dm.splits["val"]],
                                  roles_file=cfg["data"].get("dicom_roles"), progress=progress)
    summary["decision"] = choose_decision(run_dir, cfg, best, [last],    # into best.ckpt only
                                          val_csv=run_dir / "predictions_val.csv" if "val" in summary else None,
                                          masks="auto" if auto is not None else "given", patients=auto,
                                          note=f"out-of-fold predictions of {k_cross} cross-fit models "
                                               f"({CROSS_FIT_FOLDER}/)" if k_cross else "")
    if evaluate and has_test:
        summary["evaluation"] = run_evaluation(run_dir, cfg, mf.synthetic, summary["decision"], best.name)
        if has_val:
            summary["chosen_epoch"] = add_validation_curve(run_dir / "evaluation", patient_val, mf.synthetic)
        if segmenter is not None:   # + the clinic path: automatic masks (evaluation/clinic.md)
            from mrparotid.evaluation.clinic import plain, run_clinic

            clinic = run_clinic(best, segmenter, manifest_path, run_dir / "evaluation",
                                roles_file=cfg["data"].get("dicom_roles"), progress=progress)
            print(clinic["text"])
            summary["clinic"] = plain({k: clinic[k] for k in ("files", "accuracy_difference",
                                                              "segmentation", "detection", "changed")})
    write_json(run_dir / "summary.json", summary)   # last, atomically: the run is complete
    return summary


def steps_per_epoch(dm, cfg: dict) -> int:
    """Optimiser steps in one training epoch (full batches; the last partial one is dropped)."""
    return max(1, len(dm.data["train"]) // int(cfg["data"]["batch_size"]))


def seed_run(cfg: dict) -> None:
    """Seed Python, NumPy and torch (and dataloader workers) with ``cfg["seed"]``."""
    import pytorch_lightning as pl

    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)


def trainer_kwargs(cfg: dict, has_val: bool = True, *, cuda: bool | None = None) -> dict:
    """The ``pytorch_lightning.Trainer`` arguments of a run: ``cfg["trainer"]``, with
    SyncBatchNorm off without CUDA (``cuda``: None asks torch), and no validation loop without
    validation patients. ``precision: auto`` becomes the hardware's
    (:func:`mrparotid.models.precision.resolve_precision`)."""
    import torch

    from mrparotid.models.precision import resolve_precision

    cuda = torch.cuda.is_available() if cuda is None else cuda
    args = dict(cfg["trainer"])
    args["precision"] = resolve_precision(args.get("precision", "auto"), args.get("accelerator"),
                                          cuda=cuda)[0]
    if args.get("sync_batchnorm") and (args.get("accelerator") == "cpu" or not cuda):
        args["sync_batchnorm"] = False  # SyncBatchNorm needs CUDA; plain BN per process
    if not has_val:
        args.update(limit_val_batches=0, num_sanity_val_steps=0)
    return args


def precision_note(cfg: dict, chosen: str) -> dict:
    """Say (once, not in DDP workers) which precision the run trains at and why; the summary's
    ``precision`` entry."""
    from mrparotid.models.precision import resolve_precision

    why = resolve_precision(cfg["trainer"].get("precision", "auto"), cfg["trainer"].get("accelerator"))[1]
    if not is_worker():
        print(f"precision: {chosen} ({why}); model and batches channels_last")
    return {"trainer": chosen, "reason": why, "memory_format": "channels_last"}


def write_split_predictions(model, data, path: Path, *, batch_size: int = 64,
                            synthetic: bool = False, precision: str = "auto",
                            centres: dict[str, str] | None = None) -> list[dict] | None:
    """Predict one split's slices (GPU if present) and write them as a predictions CSV (with a
    ``centre`` column when ``centres``, patient id → centre, names any).

    Returns the rows, or None (and writes nothing) when the split is empty.
    """
    from mrparotid.evaluation.predictions import prediction_records, write_predictions
    from mrparotid.inference.predict import default_device, predict_probs

    if data is None or len(data) == 0:
        return None
    rows = prediction_records(data, predict_probs(model, data.x, batch_size=batch_size,
                                                  device=default_device(), precision=precision), centres)
    write_predictions(rows, path, synthetic=synthetic)
    return rows


def quick_metrics(rows: list[dict], malignant_min_slices: int) -> dict:
    """Slice accuracy and rule-based patient accuracy of prediction rows (the run summary);
    the patient level is :func:`mrparotid.evaluation.evaluate.patient_metrics`, as in the full report."""
    import pandas as pd

    from mrparotid.evaluation.metrics import patient_metrics
    from mrparotid.evaluation.predictions import as_predictions

    if not rows:
        return {"slices": 0, "slice_accuracy": None, "patients": 0, "patient_accuracy": None}
    df = as_predictions(pd.DataFrame(rows))
    rule = patient_metrics(df, malignant_min_slices=malignant_min_slices)[0]["rule"]["accuracy"]
    return {"slices": len(df), "slice_accuracy": float((df["true"] == df["pred"]).mean()),
            "patients": int(rule["n"]), "patient_accuracy": rule["estimate"] if rule["n"] else None}


def run_evaluation(run_dir: Path, cfg: dict, synthetic: bool, decision: dict, checkpoint: str) -> str | None:
    """Full evaluation report of a run's test predictions, in ``run_dir/evaluation``, with the
    run's decision record (``decision``, stored in ``checkpoint``)."""
    from mrparotid.decision.record import DecisionRecord
    from mrparotid.evaluation.evaluate import evaluate_predictions

    out = run_dir / "evaluation"
    evaluate_predictions(run_dir / "predictions_test.csv", out,
                         malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]),
                         synthetic=synthetic, title=evaluation_title(run_dir),
                         decision=DecisionRecord.from_dict(decision),
                         decision_source=f"{checkpoint}'s, chosen on its validation predictions")
    return str(out / "report.md")


def clear_run_outputs(run_dir: Path) -> None:
    """Remove what an earlier run in ``run_dir`` left that this run writes anew: checkpoints,
    predictions (an old ``predictions_val.csv`` would choose this run's decision), the evaluation
    and the summary."""
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    shutil.rmtree(run_dir / "evaluation", ignore_errors=True)
    for name in ("summary.json", "predictions_val.csv", "predictions_test.csv", "metrics.csv"):
        (run_dir / name).unlink(missing_ok=True)


def evaluation_title(run_dir: Path) -> str:
    """Title of a run's evaluation figures and report: the split and the run folder's name
    (a folder named ``run`` reads "test split — run", not "run run")."""
    return f"test split — {Path(run_dir).name}"


def predict_split(checkpoint: str | Path, cfg: dict, split: str, out_dir: Path, *,
                  progress: bool = True) -> dict:
    """Run a checkpoint over one split of its run (and val, for the soft-vote threshold); write
    ``predictions_<split>.csv`` into ``out_dir``. Preprocessing and channels come from the
    checkpoint, and so does the split: exactly the run's patients, never recomputed
    (:func:`mrparotid.data.splits.saved_split` refuses when the manifest no longer fits it)."""
    from mrparotid.data.cache import prepare_patients
    from mrparotid.data.datamodule import load_split
    from mrparotid.data.splits import saved_split, split_record
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    meta = loaded.meta
    run_cfg = loaded.run_config(cfg)
    mf = read_manifest(run_cfg["data"]["manifest"], check_dirs=False)
    wanted = [split] if split == "val" else [split, "val"]
    splits = saved_split(meta.get("split"), mf.cases, wanted, source=loaded.path, manifest=mf.path)
    if split_record(splits, mf.cases)["manifest_rows_hash"] != meta["split"].get("manifest_rows_hash"):
        print(f"note: manifest rows of the run's patients changed since the run (patient folders or "
              f"centres; diagnoses and splits are unchanged): {mf.path}")
    needed = {p for name in wanted for p in splits.get(name, [])}
    prepared = prepare_patients(mf, needed, run_cfg, progress=progress)
    failed = sorted(needed - set(prepared.entries))
    if failed:
        raise ManifestError(f"the run's {'/'.join(wanted)} patient(s) {', '.join(failed)} did not prepare "
                            f"({'; '.join(str(e) for e in prepared.bad)})", path=mf.path,
                            fix="fix those patients; the run can only be scored on all its test patients")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"rule_n": int(meta.get("rule", {}).get("malignant_min_slices", 2)),
             "synthetic": mf.synthetic or bool(meta.get("synthetic"))}
    d = run_cfg["data"]
    for name, key in zip(wanted, ("preds", "val")):
        data = load_split(prepared, splits.get(name, []), list(loaded.channels), d["series_mask"],
                          **meta.get("channel_options", {}))
        if write_split_predictions(loaded.model, data, out_dir / f"predictions_{name}.csv",
                                   synthetic=paths["synthetic"], centres=case_centres(mf.cases),
                                   precision=cfg["trainer"].get("precision", "auto")):
            paths[key] = out_dir / f"predictions_{name}.csv"
    paths["decision_source"] = f"{loaded.path.name}'s own (stored by fit)"
    if "preds" not in paths:
        raise ManifestError(f"the run has no {split} patients", path=mf.path,
                            fix="choose another --split, or re-run fit with test patients")
    return paths
