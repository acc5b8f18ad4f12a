"""``fit``, ``ablate`` and cross-validation: run folders, checkpoints, test predictions.

A run folder holds ``config.yaml`` (resolved, with git hash), ``checkpoints/best.ckpt`` and
``checkpoints/last.ckpt``, ``metrics.csv`` (Lightning's CSV logger), ``predictions_test.csv`` /
``predictions_val.csv`` (the evaluation format) and ``summary.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from itertools import combinations
from pathlib import Path

import numpy as np

from mrparotid import __version__
from mrparotid.config import check_trainer_args, config_hash, dump_config, preprocess_config
from mrparotid.constants import CHANNELS, CLASSES, SERIES
from mrparotid.errors import ConfigError, ManifestError
from mrparotid.io.manifest import read_manifest
from mrparotid.inference.predict import FORMAT

RUN_DIR_ENV = "MRPAROTID_RUN_DIR"


def mrparotid_home() -> Path:
    return Path(os.environ.get("MRPAROTID_HOME", Path.home() / ".cache" / "mrparotid"))


def default_manifest(cfg: dict, *, progress: bool = True) -> Path:
    """The manifest to use: ``data.manifest``, else the embedded SYNTHETIC phantom cohort
    (written under ``$MRPAROTID_HOME`` on first use)."""
    if cfg["data"].get("manifest"):
        return Path(cfg["data"]["manifest"])
    from mrparotid.data.phantom import make_cohort

    n = int(cfg["data"]["phantom_patients"])
    root = mrparotid_home() / f"phantom-{n}"
    manifest = root / "manifest.csv"
    if not manifest.exists():
        print(f"making the embedded SYNTHETIC phantom cohort ({n} patients) in {root}")
        make_cohort(root, n, seed=0, progress=progress)
    return manifest


def resolve_run_dir(out_dir: str | Path | None, *, overwrite: bool = False) -> Path:
    """``out_dir``, else ``runs/<timestamp>``.

    DDP worker processes (``LOCAL_RANK``, ``NODE_RANK`` or ``RANK`` > 0) re-run the command; on
    one node they take the folder that rank 0 chose from the environment (several nodes need an
    explicit ``out_dir`` on a shared filesystem). A folder that already holds a run (``config.yaml``) is
    refused unless ``overwrite``, so a finished run is never silently replaced.
    """
    worker = any(os.environ.get(var, "0") != "0" for var in ("LOCAL_RANK", "NODE_RANK", "RANK"))
    if out_dir is None:
        inherited = os.environ.get(RUN_DIR_ENV)
        out_dir = inherited if worker and inherited else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out_dir)
    if not worker and not overwrite and (run_dir / "config.yaml").exists():
        raise ConfigError("this folder already holds a run", path=run_dir,
                          fix="choose another --out, or pass --overwrite to replace it")
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def checkpoint_meta(cfg: dict, synthetic: bool) -> dict:
    return {"format": FORMAT, "version": __version__, "channels": list(cfg["data"]["channels"]),
            "series_mask": cfg["data"]["series_mask"], "model": dict(cfg["model"]),
            "preprocess": preprocess_config(cfg), "rule": dict(cfg["rule"]),
            "classes": list(CLASSES), "config_hash": config_hash(cfg), "synthetic": synthetic}


def prediction_records(split_data, probs: np.ndarray) -> list[dict]:
    """Rows of the predictions CSV format (see :mod:`mrparotid.evaluation.evaluate`)."""
    rows = []
    for i in range(len(probs)):
        y = int(split_data.y[i])
        row = {"patient_id": split_data.patient_id[i], "side": str(split_data.side[i]),
               "index": int(split_data.index[i]), "true": CLASSES[y] if y >= 0 else "",
               "pred": CLASSES[int(np.argmax(probs[i]))]}
        row.update({f"p_{c}": float(p) for c, p in zip(CLASSES, probs[i])})
        rows.append(row)
    return rows


def write_split_predictions(model, data, path: Path, *, batch_size: int = 64) -> list[dict] | None:
    """Predict one split's slices (GPU if present) and write them as a predictions CSV.

    Returns the rows, or None (and writes nothing) when the split is empty.
    """
    from mrparotid.evaluation.evaluate import write_predictions
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

    from mrparotid.evaluation.evaluate import as_predictions, patient_metrics

    if not rows:
        return {"slices": 0, "slice_accuracy": None, "patients": 0, "patient_accuracy": None}
    df = as_predictions(pd.DataFrame(rows))
    rule = patient_metrics(df, malignant_min_slices=malignant_min_slices)[0]["rule"]["accuracy"]
    return {"slices": len(df), "slice_accuracy": float((df["true"] == df["pred"]).mean()),
            "patients": int(rule["n"]), "patient_accuracy": rule["estimate"] if rule["n"] else None}


def quiet_lightning() -> None:
    """Keep Lightning's console to progress bars and real warnings."""
    import logging
    import warnings

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*exists and is not empty.*", ".*LeafSpec.*", ".*does not have many workers.*",
                    ".*litlogger.*", ".*the number of training batches.*"):
        warnings.filterwarnings("ignore", message=pattern)


def fit(cfg: dict, *, manifest: str | Path | None = None, out_dir: str | Path | None = None,
        splits: dict[str, list[str]] | None = None, progress: bool = True,
        evaluate: bool = True, overwrite: bool = False) -> dict:
    """Train on a cohort, keep best/last checkpoints, predict val/test, write ``summary.json``."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.models.lit_module import SliceClassifier, class_weights_from
    from mrparotid.inference.predict import load_checkpoint

    check_trainer_args(cfg["trainer"])
    quiet_lightning()
    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    run_dir = resolve_run_dir(out_dir, overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = dict(cfg, data=dict(cfg["data"], manifest=str(manifest_path)))
    dump_config(dict(resolved, git=git_hash(), version=__version__), run_dir / "config.yaml")
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)

    dm = ParotidDataModule(cfg, mf, splits=splits, progress=progress)
    dm.prepare_data()
    dm.setup("fit")
    weights = class_weights_from(cfg["optim"]["class_weights"], dm.class_counts())
    module = SliceClassifier(cfg["model"], cfg["optim"], list(dm.channels),
                             int(cfg["trainer"]["max_epochs"]), weights,
                             checkpoint_meta(cfg, mf.synthetic))
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


def run_evaluation(run_dir: Path, cfg: dict, synthetic: bool) -> str | None:
    """Full evaluation report of a run's test predictions, in ``run_dir/evaluation``."""
    from mrparotid.evaluation.evaluate import evaluate_predictions, read_predictions

    val = run_dir / "predictions_val.csv"
    out = run_dir / "evaluation"
    evaluate_predictions(read_predictions(run_dir / "predictions_test.csv"), out,
                         val_preds=read_predictions(val) if val.exists() else None,
                         malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]),
                         synthetic=synthetic, title=f"run {run_dir.name}")
    return str(out / "report.md")


def channel_name(channels) -> str:
    return "+".join(channels)


SERIES_COMBINATIONS: list[tuple[str, ...]] = [c for r in (1, 2, 3) for c in combinations(SERIES, r)]


def ablate(cfg: dict, channel_sets: list[tuple[str, ...]], *, manifest: str | Path | None = None,
           out_dir: str | Path | None = None, progress: bool = True, overwrite: bool = False) -> dict:
    """Train and test one model per channel set on the same split; compare them."""
    from mrparotid.data.cache import prepare_cohort
    from mrparotid.io.manifest import split_patients

    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    prepared = prepare_cohort(mf, cfg, progress=progress)
    d = cfg["data"]
    ok = [c for c in mf.cases if c.patient_id in prepared.entries]
    splits = split_patients(ok, test_fraction=d["test_fraction"], val_fraction=d["val_fraction"],
                            seed=d["split_seed"])
    if not splits["test"]:
        raise ManifestError("the manifest gives no test patients; ablate needs them", path=mf.path,
                            fix="mark some rows split=test, or set --data.test_fraction > 0")
    out_root = Path(out_dir) if out_dir else Path("runs") / ("ablate-" + time.strftime("%Y%m%d-%H%M%S"))
    results = []
    for channels in channel_sets:
        run_cfg = dict(cfg, data=dict(cfg["data"], channels=list(channels)))
        name = channel_name(channels)
        os.environ.pop(RUN_DIR_ENV, None)
        summary = fit(run_cfg, manifest=manifest_path, out_dir=out_root / name, splits=splits,
                      progress=progress, evaluate=True, overwrite=overwrite)
        results.append({"name": name, "channels": list(channels), "run_dir": str(out_root / name),
                        "test": summary.get("test")})
    table = {"runs": results, "splits": splits, "synthetic": mf.synthetic}
    table["report"] = ablation_report(out_root, results, mf.synthetic)
    (out_root / "ablation.json").write_text(json.dumps(table, indent=2, default=str), encoding="utf-8")
    return table


def ablation_report(out_root: Path, results: list[dict], synthetic: bool) -> str | None:
    """Table-3 style comparison (CSV, Markdown, bar chart) of the runs' test predictions."""
    from mrparotid.evaluation.evaluate import ablation_table, read_predictions

    runs = [dict(r, preds=read_predictions(Path(r["run_dir"]) / "predictions_test.csv")) for r in results]
    names = [r["name"] for r in runs]
    reference = next((n for n in names if all(s in n.split("+") for s in SERIES)), names[-1])
    ablation_table(runs, reference, out_root, synthetic)
    return str(out_root / "ablation.md")


def with_mask(channel_sets, mask: bool) -> list[tuple[str, ...]]:
    return [tuple(c for c in CHANNELS if c in s or (mask and c == "mask")) for s in channel_sets]


def cross_validate(cfg: dict, k: int, *, manifest: str | Path | None = None,
                   out_dir: str | Path | None = None, progress: bool = True,
                   overwrite: bool = False) -> dict:
    """Grouped (by patient), diagnosis-stratified K-fold: per-fold and pooled out-of-fold metrics."""
    import pandas as pd

    from mrparotid.data.cache import prepare_cohort
    from mrparotid.evaluation.evaluate import evaluate_predictions, read_predictions, summarise_folds, write_predictions

    manifest_path = Path(manifest) if manifest else default_manifest(cfg, progress=progress)
    mf = read_manifest(manifest_path, check_dirs=False)
    prepared = prepare_cohort(mf, cfg, progress=progress)
    ok = [c for c in mf.cases if c.patient_id in prepared.entries]
    folds = patient_folds(ok, k, seed=int(cfg["data"]["split_seed"]),
                          val_fraction=float(cfg["data"]["val_fraction"]))
    out_root = Path(out_dir) if out_dir else Path("runs") / ("cv-" + time.strftime("%Y%m%d-%H%M%S"))
    fold_summaries, pooled = [], []
    for i, splits in enumerate(folds):
        os.environ.pop(RUN_DIR_ENV, None)
        s = fit(cfg, manifest=manifest_path, out_dir=out_root / f"fold{i + 1}", splits=splits,
                progress=progress, evaluate=True, overwrite=overwrite)
        fold_summaries.append(s)
        pooled.append(read_predictions(out_root / f"fold{i + 1}" / "predictions_test.csv"))
    write_predictions(pd.concat(pooled, ignore_index=True), out_root / "predictions_oof.csv")
    result = {"k": k, "folds": [s.get("test") for s in fold_summaries], "synthetic": mf.synthetic}
    fold_metrics = [json.loads((out_root / f"fold{i + 1}" / "evaluation" / "metrics.json")
                               .read_text(encoding="utf-8")) for i in range(k)]
    result["fold_summary"] = summarise_folds(fold_metrics)
    evaluate_predictions(read_predictions(out_root / "predictions_oof.csv"), out_root / "pooled",
                         malignant_min_slices=int(cfg["rule"]["malignant_min_slices"]),
                         synthetic=mf.synthetic, title=f"{k}-fold cross-validation, pooled out-of-fold")
    result["pooled_report"] = str(out_root / "pooled" / "report.md")
    (out_root / "cv_summary.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return result


def patient_folds(cases, k: int, *, seed: int = 42, val_fraction: float = 0.1) -> list[dict]:
    """K folds of patients, stratified by diagnosis; each fold's test is one part, val a share
    of the rest. No patient is in two splits of a fold, and every patient is tested once."""
    from mrparotid.io.manifest import _share, assert_disjoint

    if k < 2 or k > len(cases):
        raise ManifestError(f"--cv {k} needs 2 <= K <= number of patients ({len(cases)})",
                            fix="choose a smaller K")
    rng = np.random.default_rng(seed)
    parts: list[list[str]] = [[] for _ in range(k)]
    offset = 0
    for diagnosis in sorted({c.diagnosis for c in cases}):
        ids = sorted(c.patient_id for c in cases if c.diagnosis == diagnosis)
        rng.shuffle(ids)
        for j, pid in enumerate(ids):
            parts[(j + offset) % k].append(pid)
        offset += len(ids)
    folds = []
    for i in range(k):
        rest = sorted(p for j, part in enumerate(parts) if j != i for p in part)
        rng.shuffle(rest)
        n_val = _share(len(rest), val_fraction)
        split = {"train": sorted(rest[n_val:]), "val": sorted(rest[:n_val]), "test": sorted(parts[i])}
        assert_disjoint(split)
        folds.append(split)
    return folds


def predict_split(checkpoint: str | Path, cfg: dict, split: str, out_dir: Path, *,
                  progress: bool = True) -> dict:
    """Run a checkpoint over one split of a cohort (and val, for the soft-vote threshold);
    write ``predictions_<split>.csv`` into ``out_dir``. Preprocessing and channels come from the
    checkpoint; the split from ``cfg`` (manifest column or the seeded patient split)."""
    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.inference.predict import load_checkpoint

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
