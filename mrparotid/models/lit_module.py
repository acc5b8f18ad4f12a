"""Thin LightningModule: the reduced ResNet, cross-entropy, Adam(W), metrics per stage.

The science lives elsewhere (:mod:`mrparotid.models.resnet`, :mod:`mrparotid.decision.rule`); this class only
wires loss, optimiser, learning-rate schedule and torchmetrics together. Log keys follow
``stage/metric`` (``train/loss``, ``val/acc``, ``test/auroc_micro``).
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix,
                                         MulticlassRecall, MultilabelAUROC)

from mrparotid.constants import CLASSES
from mrparotid.models.factory import build_classifier
from mrparotid.models.precision import channels_last, model_channels_last

NUM_CLASSES = len(CLASSES)


def lr_factor(epoch: int, optim_cfg: dict, max_epochs: int) -> float:
    """Multiplier of the base learning rate at ``epoch`` (0-based).

    ``cosine`` and ``paper`` start with a linear warm-up over ``warmup_epochs``. ``paper``: 1 until
    ``hold_epochs``, then × ``gamma`` every ``step_epochs`` (Xia et al.: 600, 100,
    0.8). ``cosine``: after the warm-up, cosine decay to 0 at
    ``max_epochs``. ``none``: constant.

    >>> lr_factor(599, {"scheduler": "paper", "hold_epochs": 600, "step_epochs": 100, "gamma": 0.8}, 1200)
    1.0
    >>> round(lr_factor(700, {"scheduler": "paper", "hold_epochs": 600, "step_epochs": 100, "gamma": 0.8}, 1200), 4)
    0.64
    """
    kind = optim_cfg["scheduler"]
    warm = int(optim_cfg.get("warmup_epochs", 0)) if kind != "none" else 0
    if epoch < warm:
        return (epoch + 1) / (warm + 1)
    if kind == "paper":
        hold, step = int(optim_cfg["hold_epochs"]), int(optim_cfg["step_epochs"])
        return 1.0 if epoch < hold else float(optim_cfg["gamma"]) ** ((epoch - hold) // step + 1)
    if kind == "cosine":
        span = max(1, max_epochs - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (epoch - warm) / span)))
    return 1.0


def class_weights_from(spec, counts) -> list[float] | None:
    """``None`` | ``"balanced"`` (n / (k · count_c)) | explicit list of four weights."""
    if spec is None:
        return None
    if spec == "balanced":
        counts = [max(int(c), 1) for c in counts]
        total = sum(counts)
        return [total / (len(counts) * c) for c in counts]
    return [float(w) for w in spec]


def _stage_metrics(stage: str) -> MetricCollection:
    return MetricCollection({
        "acc": MulticlassAccuracy(NUM_CLASSES, average="micro"),
        "recall": MulticlassRecall(NUM_CLASSES, average="none"),
        "auroc_micro": MultilabelAUROC(NUM_CLASSES, average="micro"),
    }, prefix=f"{stage}/")


class SliceClassifier(pl.LightningModule):
    """Slice classifier over the selected channels (in_chans = len(channels))."""

    def __init__(self, model: dict, optim: dict, channels: list[str], max_epochs: int,
                 class_weights: list[float] | None = None, meta: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_classifier(model, len(channels),   # + flag planes (series dropout)
                                      series_flags=tuple((meta or {}).get("series_flags", ())))
        model_channels_last(self.model)        # NHWC weights: the fast layout (state dict unchanged)
        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weight", weight, persistent=False)
        self.val_metrics, self.test_metrics = _stage_metrics("val"), _stage_metrics("test")
        self.test_confusion = MulticlassConfusionMatrix(NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, float32 (B, 4), whatever the autocast precision inside the model."""
        return self.model(channels_last(x)).float()

    def model_step(self, batch):
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits, y, weight=self.class_weight), logits, y

    def training_step(self, batch, batch_idx):
        loss, logits, y = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, sync_dist=True)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True,
                 sync_dist=True)
        return loss

    def _eval_step(self, batch, metrics: MetricCollection, stage: str):
        loss, logits, y = self.model_step(batch)
        probs = logits.softmax(1)
        metrics["acc"].update(probs, y)
        metrics["recall"].update(probs, y)
        metrics["auroc_micro"].update(probs, F.one_hot(y, NUM_CLASSES))
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", sync_dist=True)
        return probs, y

    def _log_metrics(self, metrics: MetricCollection, stage: str) -> None:
        values = metrics.compute()
        for name, value in values.items():
            if value.ndim == 0:
                self.log(name, value, prog_bar=name.endswith("acc"), sync_dist=True)
            else:
                for c, v in zip(CLASSES, value):
                    self.log(f"{name}_{c}", v, sync_dist=True)
        metrics.reset()

    def validation_step(self, batch, batch_idx):
        """The batch's probabilities, for the patient-level figure (``PatientValidation``)."""
        return self._eval_step(batch, self.val_metrics, "val")[0]

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def test_step(self, batch, batch_idx):
        probs, y = self._eval_step(batch, self.test_metrics, "test")
        self.test_confusion.update(probs, y)

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")
        self.confusion = self.test_confusion.compute().cpu().numpy()
        self.test_confusion.reset()

    def configure_optimizers(self):
        o = self.hparams.optim
        opt_cls = torch.optim.AdamW if o["optimizer"] == "adamw" else torch.optim.Adam
        opt = opt_cls(self.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]))
        max_epochs = int(self.hparams.max_epochs)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(e, o, max_epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mrparotid"] = dict(self.hparams.meta or {})
