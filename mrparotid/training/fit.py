"""``fit``: train on a cohort, keep best/last checkpoints, predict val/test, evaluate, summarise.

The run folder's layout is described in :mod:`mrparotid.training.run_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

from mrparotid import __version__
from mrparotid.config import check_trainer_args, dump_config
from mrparotid.data.splits import save_split
from mrparotid.errors import ManifestError
from mrparotid.io.manifest import read_manifest
from mrparotid.training.run_dir import (default_manifest, git_hash, is_worker, quiet_lightning,
                                        resolve_run_dir)


def fit(cfg: dict, *, manifest: str | Path | None = None, out_dir: str | Path | None = None,
        splits: dict[str, list[str]] | None = None, progress: bool = True,
        evaluate: bool = True, overwrite: bool = False) -> dict:
    """Train on a cohort, keep best/last checkpoints, predict val/test, write ``summary.json``."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.models.checkpoint import checkpoint_meta, load_checkpoint
    from mrparotid.models.lit_module import SliceClassifier, class_weights_from

    check_trainer_args(cfg["trainer"])
    quiet_lightning()
    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    run_dir = resolve_run_dir(out_dir, cfg["trainer"], overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path)))
    dump_config(dict(resolved, git=git_hash(), version=__version__), run_dir / "config.yaml")
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)

    dm = ParotidDataModule(cfg, mf, splits=splits, progress=progress)
    dm.prepare_data()
    dm.setup("fit")
    split = save_split(run_dir, dm.splits, mf.cases) if not is_worker() else None
    weights = class_weights_from(cfg["optim"]["class_weights"], dm.class_counts())
    module = SliceClassifier(cfg["model"], cfg["optim"], list(dm.channels),
                             int(cfg["trainer"]["max_epochs"]), weights,
                             checkpoint_meta(cfg, mf.synthetic, split))
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val/acc",
                           mode="max", save_last=True, auto_insert_metric_name=False)
    trainer_args = dict(cfg["trainer"])
    if trainer_args.get("sync_batchnorm") and (trainer_args.get("accelerator") == "cpu"
                                               or not torch.cuda.is_available()):
        trainer_args["sync_batchnorm"] = False  # SyncBatchNorm needs CUDA; plain BN per process
    trainer = pl.Trainer(**trainer_args, callbacks=[ckpt], default_root_dir=run_dir,
                         logger=CSVLogger(save_dir=run_dir, name="", version=""),
                         enable_progress_bar=progress, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    has_test = len(dm.data.get("test", [])) > 0
    if has_test:
        trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)
    if not trainer.is_global_zero:
        return {}

    best = Path(ckpt.best_model_path) if ckpt.best_model_path else run_dir / "checkpoints" / "last.ckpt"
    loaded = load_checkpoint(best)
    summary = {"run_dir": str(run_dir), "manifest": str(manifest_path), "synthetic": mf.synthetic,
               "channels": list(dm.channels), "best_checkpoint": str(best),
               "epochs": int(trainer.current_epoch), "splits": {k: sorted(v) for k, v in dm.splits.items()}}
    rule_n = int(cfg["rule"]["malignant_min_slices"])
    for split in ("val", "test"):
        rows = write_split_predictions(loaded.model, dm.data.get(split),
                                       run_dir / f"predictions_{split}.csv",
                                       batch_size=int(cfg["data"]["batch_size"]))
        if rows is not None:
            summary[split] = quick_metrics(rows, rule_n)
    if evaluate and has_test:
        summary["evaluation"] = run_evaluation(run_dir, cfg, mf.synthetic)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def write_split_predictions(model, data, path: Path, *, batch_size: int = 64) -> list[dict] | None:
    """Predict one split's slices (GPU if present) and write them as a predictions CSV.

    Returns the rows, or None (and writes nothing) when the split is empty.
    """
    from mrparotid.evaluation.predictions import prediction_records, write_predictions
    from mrparotid.inference.predict import default_device, predict_probs

    if data is None or len(data) == 0:
        return None
    rows = prediction_records(data, predict_probs(model, data.x, batch_size=batch_size,
                                                  device=default_device()))
    write_predictions(rows, path)
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


def run_evaluation(run_dir: Path, cfg: dict, synthetic: bool) -> str | None:
    """Full evaluation report of a run's test predictions, in ``run_dir/evaluation``."""
    from mrparotid.evaluation.evaluate import evaluate_predictions
    from mrparotid.evaluation.predictions import read_predictions

    val = run_dir / "predictions_val.csv"
    out = run_dir / "evaluation"
    evaluate_predictions(read_predictions(run_dir / "predictions_test.csv"), out,
                         val_preds=read_predictions(val) if val.exists() else None,
                         malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]),
                         synthetic=synthetic, title=f"run {run_dir.name}")
    return str(out / "report.md")


def predict_split(checkpoint: str | Path, cfg: dict, split: str, out_dir: Path, *,
                  progress: bool = True) -> dict:
    """Run a checkpoint over one split of a cohort (and val, for the soft-vote threshold);
    write ``predictions_<split>.csv`` into ``out_dir``. Preprocessing and channels come from the
    checkpoint; the split from ``cfg`` (manifest column or the seeded patient split)."""
    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    meta = loaded.meta
    run_cfg = dict(cfg, data=dict(cfg["data"], channels=list(loaded.channels),
                                  series_mask=meta.get("series_mask", "none"), **meta["preprocess"]))
    mf = read_manifest(run_cfg["data"]["manifest"], check_dirs=False)
    dm = ParotidDataModule(run_cfg, mf, progress=progress)
    dm.prepare_data()
    dm.setup("test")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"rule_n": int(meta.get("rule", {}).get("malignant_min_slices", 2)),
             "synthetic": mf.synthetic or bool(meta.get("synthetic"))}
    for name, key in ((split, "preds"), ("val", "val")):
        if key == "val" and split == "val":
            continue
        if write_split_predictions(loaded.model, dm.data.get(name), out_dir / f"predictions_{name}.csv"):
            paths[key] = out_dir / f"predictions_{name}.csv"
    if "preds" not in paths:
        raise ManifestError(f"the {split} split has no patients", path=mf.path,
                            fix="choose another --split or mark rows in the manifest's split column")
    return paths
