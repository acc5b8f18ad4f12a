"""The segmenter's loss and Lightning module on tiny tensors."""

from __future__ import annotations

import torch

from mrparotid.segmentation.lit_module import SegmenterModule, segmentation_loss

CFG = {"model": {"channels": [4, 8], "strides": [2], "num_res_units": 0, "dropout": 0.0, "norm": "batch"},
       "optim": {"lr": 0.01, "weight_decay": 0.0}, "loss": {"lambda_dice": 1.0, "lambda_ce": 1.0},
       "augment": {"hflip_p": 0.5, "intensity": 0.1, "shift": True}}


def test_cross_entropy_is_per_channel_binary():
    """Voxels with neither gland nor tumour are penalised when predicted (a softmax CE across the
    two channels, as MONAI's DiceCELoss uses for several channels, would not see them)."""
    ce = segmentation_loss({"lambda_dice": 0.0, "lambda_ce": 1.0})
    empty = torch.zeros(2, 2, 8, 8)
    assert float(ce(torch.full_like(empty, 5.0), empty)) > 4.0
    assert float(ce(torch.full_like(empty, -5.0), empty)) < 0.01


def test_gland_and_tumour_may_overlap():
    """Both channels on at once (a gland contour that includes the tumour) is a perfect answer."""
    loss = segmentation_loss(CFG["loss"])
    target = torch.zeros(1, 2, 8, 8)
    target[:, :, 2:6, 2:6] = 1.0
    perfect = (target * 2 - 1) * 10
    assert float(loss(perfect, target)) < 0.01


def test_module_learns_a_bright_square():
    torch.manual_seed(0)
    module = SegmenterModule(CFG["model"], CFG["optim"], CFG["loss"], CFG["augment"], ["T1"], 10)
    x = torch.zeros(8, 1, 16, 16)
    y = torch.zeros(8, 2, 16, 16)
    x[:, :, 4:12, 4:12] = 1.0
    y[:, 0, 4:12, 4:12] = 1.0
    y[:, 1, 6:10, 6:10] = 1.0
    x[:, :, 6:10, 6:10] = 0.5
    opt = module.configure_optimizers()["optimizer"]
    first = None
    for _ in range(60):
        loss = module.loss(module(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2


class _Fixed(torch.nn.Module):
    """A 'network' that returns the logits it was given, whatever the input."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_checkpoint_figure_penalises_tumour_on_tumour_free_slices():
    """Slice 0: tumour drawn and found; slice 1: no tumour drawn, tumour predicted. The figure that
    chooses best.ckpt must count slice 1 as a miss (0), not leave it out."""
    module = SegmenterModule(CFG["model"], CFG["optim"], CFG["loss"], CFG["augment"], ["T1"], 10)
    y = torch.zeros(2, 2, 8, 8)
    y[:, 0, 1:7, 1:7] = 1.0                  # gland on both slices
    y[0, 1, 2:5, 2:5] = 1.0                  # tumour on slice 0 only
    pred = y.clone()
    pred[1, 1, 4:6, 4:6] = 1.0               # false-positive tumour on slice 1
    module.model = _Fixed((pred * 2 - 1) * 10)
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    module.validation_step((torch.zeros(2, 1, 8, 8), y), 0)
    module.on_validation_epoch_end()
    assert logged["val/dice_gland"] == 1.0
    assert logged["val/dice_tumour"] == 0.5
    assert logged["val/dice"] == 0.75
    assert logged["val/tumour_false_alarm"] == 1.0        # 1 of 1 tumour-free slices
