"""``decision.cross_fit: K``: out-of-fold validation predictions for every training patient, for
cohorts too small to hold a validation share out.

The training patients are split into K diagnosis-stratified folds; K extra models, each trained on
the other folds (and chosen as their last epoch, having no validation patients), predict their
held-out fold. The pooled predictions become the run's ``predictions_val.csv``, on which the
decision record is chosen, while the run's own model trains on all training patients. Each
patient's validation prediction thus comes from a model that never saw it; the record is chosen on
models like the final one, not on the final one itself, which the record's source says.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

FOLDER = "cross_fit"


def merged_splits(splits: dict[str, list[str]]) -> dict[str, list[str]]:
    """The run's split with its validation patients moved into training (cross-fitting needs no
    held-out validation share)."""
    return {"train": sorted(splits.get("train", []) + splits.get("val", [])), "val": [],
            "test": sorted(splits.get("test", []))}


def cross_fit_predictions(fit: Callable[..., dict], cfg: dict, manifest: Path, run_dir: Path,
                          train_ids: list[str], cases, *, k: int, synthetic: bool, progress: bool = True) -> Path:
    """Train the K fold models under ``run_dir/cross_fit/`` with ``fit`` (the run's own
    :func:`mrparotid.training.fit.fit`) and write their pooled out-of-fold predictions of
    ``train_ids`` as ``run_dir/predictions_val.csv``; returns its path."""
    import pandas as pd

    from mrparotid.data.splits import patient_folds
    from mrparotid.evaluation.predictions import read_predictions, write_predictions

    by_id = {c.patient_id: c for c in cases}
    folds = patient_folds([by_id[p] for p in train_ids], k, seed=int(cfg["data"]["split_seed"]), val_fraction=0.0)
    inner = dict(cfg, decision=dict(cfg["decision"], cross_fit=0))
    frames = []
    for i, fold in enumerate(folds):
        out = Path(run_dir) / FOLDER / f"fold{i + 1}"
        print(f"cross-fit model {i + 1}/{k}: {len(fold['train'])} training patients, predicts {len(fold['test'])}")
        fit(inner, manifest=manifest, out_dir=out, splits={"train": fold["train"], "val": [], "test": fold["test"]},
            progress=progress, evaluate=False, overwrite=True, decide=False)
        frames.append(read_predictions(out / "predictions_test.csv"))
    return write_predictions(pd.concat(frames, ignore_index=True), Path(run_dir) / "predictions_val.csv",
                             synthetic=synthetic)
