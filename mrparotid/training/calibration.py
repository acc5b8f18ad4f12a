"""After training: fit the calibration (temperature, p(malignant) aggregation, refer band) on the
run's validation predictions and store it in the run's checkpoints (``meta["calibration"]``).

The checkpoint files are re-saved atomically with the record added to their ``"mrparotid"``
entry; everything else in them is kept as it was.
"""

from __future__ import annotations

from pathlib import Path

from mrparotid.errors import CheckpointError


def store_calibration(checkpoint: str | Path, record: dict) -> None:
    """Write ``record`` into ``checkpoint``'s ``"mrparotid"`` meta as ``"calibration"`` (atomic
    re-save; loads with ``weights_only=True``)."""
    import torch

    from mrparotid.io.atomic import atomic_path
    from mrparotid.models.checkpoint import checkpoint_record, torch_load_safely

    path = Path(checkpoint)
    ckpt = torch_load_safely(path, "mrparotid checkpoint", "re-run 'mrparotid fit'")
    meta = checkpoint_record(ckpt)
    if meta is None:
        raise CheckpointError("not an mrparotid checkpoint", path=path, fix="re-run 'mrparotid fit'")
    meta["calibration"] = dict(record)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def calibrate_run(run_dir: str | Path, cfg: dict, checkpoints: list[Path], *, has_val: bool = True) -> dict:
    """Fit the calibration on ``run_dir/predictions_val.csv`` (raw probabilities; temperature 1
    and no band when there is none, or ``has_val`` is False: a file left by an earlier run is not
    this run's), store it in each existing file of ``checkpoints``, print one line, and return the
    record (:func:`mrparotid.evaluation.calibration.fit_calibration`)."""
    from mrparotid.evaluation.calibration import fit_calibration
    from mrparotid.evaluation.predictions import read_predictions
    from mrparotid.inference.refer import band_text

    val = Path(run_dir) / "predictions_val.csv"
    has_val = has_val and val.is_file()
    record = fit_calibration(read_predictions(val) if has_val else None, cfg.get("refer"),
                             source=val.name if has_val else "no validation patients")
    for path in dict.fromkeys(Path(p) for p in checkpoints):
        if path.is_file():
            store_calibration(path, record)
    print(f"calibration: temperature {record['temperature']:.3f}, p(malignant) = "
          f"{record['aggregation'].replace('_', '-')} over tumour slices, refer band "
          f"{band_text(record['refer_band'])}")
    return record
