"""How a run chooses: the masks its decision is chosen on, the weight averaging that steadies its
epochs, the figure and epoch that chose ``best.ckpt`` (and its curve in the report)."""

from __future__ import annotations

from pathlib import Path


def decision_masks(cfg: dict, segmenter) -> str:
    """The masks the decision is chosen on: ``auto`` (as ``diagnose`` sees a patient from its
    series alone) with a segmenter, or with ``decision.masks: auto`` (which then needs one),
    else ``given``."""
    if int(cfg["decision"].get("cross_fit") or 0) and segmenter is not None:
        from mrparotid.errors import ConfigError

        raise ConfigError("decision.cross_fit chooses the decision on out-of-fold predictions with given masks; "
                          "it is not combined with a segmenter yet", fix="drop --segmenter or decision.cross_fit")
    if cfg["decision"]["masks"] == "auto" and segmenter is None:
        from mrparotid.errors import ConfigError

        raise ConfigError("decision.masks: auto chooses the decision on automatic masks, but no segmenter "
                          "was given", fix="pass --segmenter RUN/checkpoints/best.ckpt, or set decision.masks given")
    return "auto" if segmenter is not None else "given"


def chosen_by(ckpt) -> str:
    """The summary's account of the figure that chose ``best.ckpt`` and its value."""
    import math

    value = float(ckpt.best_model_score) if ckpt.best_model_score is not None else math.nan
    return (f"best: lowest {ckpt.monitor} (log loss of the validation patients' p(malignant), mean over "
            f"tumour slices at the temperature fitted on them; second half of training) = {value:.4f}")


def weight_averaging(cfg: dict, steps_per_epoch: int = 1) -> list:
    """An exponential moving average of the weights (Lightning's ``EMAWeightAveraging``) when
    ``optim.ema_decay`` > 0, started in the middle of training (the epochs ``best.ckpt`` is chosen
    from; before that the average would still hold the first, untrained weights): validation,
    checkpoints and the final model then use the averaged weights, which damps the
    epoch-to-epoch swing of the validation figure."""
    decay = float(cfg["optim"].get("ema_decay", 0.0) or 0.0)
    if decay <= 0:
        return []
    from pytorch_lightning.callbacks import EMAWeightAveraging

    start = int(cfg["trainer"]["max_epochs"]) // 2 * max(1, int(steps_per_epoch))
    return [EMAWeightAveraging(decay=decay, update_starting_at_step=start)]

def add_validation_curve(out: Path, patient_val, synthetic: bool) -> int | None:
    """Draw the checkpoint's figure per epoch into ``out/validation_curve.png`` and add it to
    ``report.md``; returns the chosen epoch."""
    from mrparotid.evaluation.calibration_report import plot_validation_curve
    from mrparotid.io.atomic import write_text

    _, chosen = plot_validation_curve(patient_val.history, patient_val.from_epoch, out / "validation_curve.png",
                                      synthetic=synthetic)
    report = out / "report.md"
    write_text(report, report.read_text(encoding="utf-8").rstrip("\n") + "\n\n## How best.ckpt was chosen\n\n"
               f"Lowest validation patient log loss of the calibrated p(malignant) among epochs "
               f"{patient_val.from_epoch} and later: epoch {chosen}. ![validation curve](validation_curve.png)\n")
    return chosen
