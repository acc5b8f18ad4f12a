"""The segmenter network: a 2-D MONAI ``UNet``, one input channel per series, two output logits.

Output channel 0 is the parotid gland, channel 1 the tumour; each is its own sigmoid (not a
softmax), so gland contours that include the tumour and contours that leave it out both fit.
"""

from __future__ import annotations

import math

from torch import nn

#: Output channels, in order.
OUTPUTS: tuple[str, ...] = ("gland", "tumour")


def build_segmenter(model_cfg: dict, in_channels: int) -> nn.Module:
    """MONAI ``UNet(spatial_dims=2)`` from a config's ``model`` section (``channels``,
    ``strides``, ``num_res_units``, ``dropout``, ``norm``: ``batch`` or ``instance``)."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=int(in_channels), out_channels=len(OUTPUTS),
                channels=tuple(int(c) for c in model_cfg["channels"]),
                strides=tuple(int(s) for s in model_cfg["strides"]),
                num_res_units=int(model_cfg["num_res_units"]), dropout=float(model_cfg["dropout"]),
                norm=str(model_cfg["norm"]))


def size_multiple(model_cfg: dict) -> int:
    """Input height and width must be multiples of this (the product of the strides)."""
    return int(math.prod(int(s) for s in model_cfg["strides"]))
