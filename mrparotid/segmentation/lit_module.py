"""Thin LightningModule of the segmenter: Dice (MONAI ``DiceLoss``) + binary cross-entropy, ``DiceMetric``,
AdamW with cosine decay. Log keys: ``train/loss``, ``val/loss``, ``val/dice_gland``,
``val/dice_tumour`` and ``val/dice`` (their mean, which chooses ``best.ckpt``: :data:`SELECTION`),
and ``val/tumour_false_alarm`` (share of the tumour-free validation slices with predicted tumour).
The science lives in :mod:`mrparotid.segmentation`.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from mrparotid.models.precision import channels_last, model_channels_last
from mrparotid.segmentation.dataset import augment_batch
from mrparotid.segmentation.network import OUTPUTS, build_segmenter

#: What chooses ``best.ckpt`` (the run's summary names it).
SELECTION = ("val/dice: the mean of gland and tumour Dice per validation slice (2-D, sigmoid > 0.5), "
             "where a slice without the structure scores 1 when none is predicted and 0 when any is, "
             "so false-positive tumour on tumour-free slices costs")


class DiceBCELoss(torch.nn.Module):
    """MONAI ``DiceLoss(sigmoid=True)`` (Dice over the whole batch, as nnU-Net) plus binary
    cross-entropy per channel: nnU-Net's loss for overlapping, independently sigmoid channels.

    Not MONAI's ``DiceCELoss(sigmoid=True)``: with two or more channels its CE term is a softmax
    cross-entropy *across* the channels, which makes gland and tumour compete and leaves voxels
    with neither unpenalised (the tumour channel then never learns "no tumour here").
    """

    def __init__(self, lambda_dice: float = 1.0, lambda_ce: float = 1.0):
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True, batch=True)
        self.bce = torch.nn.BCEWithLogitsLoss()
        self.lambda_dice, self.lambda_ce = float(lambda_dice), float(lambda_ce)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.lambda_dice * self.dice(logits, target) + self.lambda_ce * self.bce(logits, target)


def segmentation_loss(loss_cfg: dict) -> DiceBCELoss:
    """The loss of a config's ``loss`` section (``lambda_dice``, ``lambda_ce``)."""
    return DiceBCELoss(float(loss_cfg["lambda_dice"]), float(loss_cfg["lambda_ce"]))


class SegmenterModule(pl.LightningModule):
    """2-D UNet over the series ``series`` (in_channels = len(series)), outputs gland, tumour."""

    def __init__(self, model: dict, optim: dict, loss: dict, augment: dict, series: list[str],
                 max_epochs: int, meta: dict | None = None):
        super().__init__()
        from monai.metrics import DiceMetric

        self.save_hyperparameters()
        self.model = model_channels_last(build_segmenter(model, len(series)), 2)
        self.loss = segmentation_loss(loss)
        # ignore_empty=False: an empty truth scores 1 with an empty prediction, 0 otherwise
        self.val_dice = DiceMetric(include_background=True, reduction="mean_batch", ignore_empty=False)
        self.val_free = [0, 0]     # tumour-free validation slices: [with predicted tumour, all]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(channels_last(x))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.trainer is not None and self.trainer.training:
            return augment_batch(*batch, self.hparams.augment)
        return batch

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x).float(), y)
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x).float()
        self.log("val/loss", self.loss(logits, y), prog_bar=False, batch_size=len(x))
        pred = (torch.sigmoid(logits) > 0.5).float()
        self.val_dice(pred, y)
        free = y[:, 1].flatten(1).amax(1) == 0
        self.val_free[0] += int((pred[:, 1].flatten(1).amax(1) > 0)[free].sum())
        self.val_free[1] += int(free.sum())

    def on_validation_epoch_end(self) -> None:
        values = torch.nan_to_num(self.val_dice.aggregate().float(), nan=0.0)
        for name, v in zip(OUTPUTS, values):
            self.log(f"val/dice_{name}", v)
        self.log("val/dice", values.mean(), prog_bar=True)
        if self.val_free[1]:
            self.log("val/tumour_false_alarm", self.val_free[0] / self.val_free[1])
        self.val_dice.reset()
        self.val_free = [0, 0]

    def configure_optimizers(self):
        o = self.hparams.optim
        opt = torch.optim.AdamW(self.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(self.hparams.max_epochs)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mrparotid"] = dict(self.hparams.meta or {})
