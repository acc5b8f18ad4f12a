"""Reduced ResNet18 slice classifier in plain ``torch.nn`` (timm-style, no torchvision).

Xia et al. (2021) write that "the number of residual blocks was reduced to 2" and their Fig. 4
draws "2 residual blocks". Here that is read as: ResNet18 keeps its stem (7x7/2 conv, BN, ReLU,
3x3/2 max-pool) and its first two residual *stages* -- torchvision's ``layer1`` and ``layer2``,
64 and 128 channels, two ``BasicBlock`` each. ``layer3`` and ``layer4`` are dropped, so global
average pooling hands 128 features to the linear head. The reading is a choice, not a certainty:
other depths/widths are one argument away through ``layers`` and ``channels``.

Parameter names equal torchvision's ``resnet18`` names for every shared layer (``conv1.weight``,
``bn1.*``, ``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.*``), so an ImageNet
state dict loads by name (:func:`mrparotid.models.pretrained.load_imagenet_weights`), with the RGB
stem adapted to the number of input channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mrparotid.errors import ConfigError

__all__ = ["BasicBlock", "ResNet", "reduced_resnet18", "tiny_resnet"]


def _conv3x3(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_chs, out_chs, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with a residual shortcut.

    Parameters
    ----------
    in_chs, out_chs : int
        Input and output channels.
    stride : int
        Stride of the first conv (and of the shortcut projection).

    Notes
    -----
    A projection shortcut ``downsample = Sequential(conv1x1, BN)`` is built when the stride
    or the channel count changes (keys ``downsample.0``, ``downsample.1`` as in torchvision).
    Input (B, in_chs, H, W) -> output (B, out_chs, ceil(H/stride), ceil(W/stride)).
    """

    expansion = 1

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_chs, out_chs, stride)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_chs, out_chs)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_chs != out_chs:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_chs),
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.relu(x + shortcut)


class ResNet(nn.Module):
    """ResNet with BasicBlocks and a configurable number of stages (default: reduced ResNet18).

    The default keeps ResNet18's stem and its first two stages (``layer1``: 2 blocks x 64 ch,
    ``layer2``: 2 blocks x 128 ch) and drops ``layer3``/``layer4``: this is how the paper's
    "the number of residual blocks was reduced to 2" (Xia et al. 2021, Fig. 4: "2 residual
    blocks") is read here. ``layers=(2, 2, 2, 2), channels=(64, 128, 256, 512)`` gives the full
    ResNet18.

    Parameters
    ----------
    in_chans : int
        Input channels (selected MR series, plus the parotid mask if used).
    num_classes : int
        Output logits (slice classes).
    layers : sequence of int
        BasicBlocks per stage; stage ``i`` is the attribute ``layer{i+1}``.
    channels : sequence of int
        Output channels per stage (same length as ``layers``).
    stem_width : int
        Output channels of the 7x7 stem conv.
    drop_rate : float
        Dropout probability before ``fc`` (0 disables it).

    Notes
    -----
    Input (B, in_chans, H, W) -> logits (B, num_classes). Overall stride is
    ``4 * 2 ** (len(layers) - 1)`` (8 for the default); global average pooling makes any
    H, W >= 1 work.
    """

    def __init__(self, in_chans: int = 4, num_classes: int = 4, layers: Sequence[int] = (2, 2),
                 channels: Sequence[int] = (64, 128), stem_width: int = 64, drop_rate: float = 0.0):
        super().__init__()
        layers, channels = tuple(int(n) for n in layers), tuple(int(c) for c in channels)
        _validate_args(in_chans, num_classes, layers, channels, stem_width, drop_rate)
        self.in_chans = int(in_chans)
        self.num_classes = int(num_classes)
        self.layers = layers
        self.channels = channels
        self.stem_width = int(stem_width)
        self.drop_rate = float(drop_rate)

        self.conv1 = nn.Conv2d(in_chans, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        prev = stem_width
        for i, (depth, width) in enumerate(zip(layers, channels)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(prev if b == 0 else width, width, stride if b == 0 else 1)
                      for b in range(depth)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            prev = width
        self.num_features = prev

        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(p=drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, num_classes)
        _init_weights(self)

    @property
    def stages(self) -> list[nn.Sequential]:
        """The residual stages ``layer1``, ``layer2``, ... in order."""
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.layers))]

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem and residual stages, pooled: (B, in_chans, H, W) -> (B, num_features)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(self.global_pool(x), 1)

    def forward_head(self, x: Tensor) -> Tensor:
        """Dropout and linear head: (B, num_features) -> logits (B, num_classes)."""
        return self.fc(self.drop(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) for input (B, in_chans, H, W)."""
        return self.forward_head(self.forward_features(x))


def _validate_args(in_chans: int, num_classes: int, layers: tuple[int, ...],
                   channels: tuple[int, ...], stem_width: int, drop_rate: float) -> None:
    """Raise ConfigError for architecture arguments that cannot build a network."""
    if int(in_chans) < 1:
        raise ConfigError(f"in_chans={in_chans} -> select at least one input channel")
    if int(num_classes) < 1:
        raise ConfigError(f"num_classes={num_classes} -> use at least one output class")
    if len(layers) == 0:
        raise ConfigError("model.layers is empty -> give blocks per stage, e.g. layers: [2, 2]")
    if len(layers) != len(channels):
        raise ConfigError(f"model.layers has {len(layers)} stages but model.channels has "
                          f"{len(channels)} -> give one channel width per stage, e.g. "
                          "layers: [2, 2], channels: [64, 128]")
    if min(layers) < 1 or min(channels) < 1 or int(stem_width) < 1:
        raise ConfigError(f"layers={list(layers)}, channels={list(channels)}, "
                          f"stem_width={stem_width} -> all must be positive integers")
    if not 0.0 <= float(drop_rate) < 1.0:
        raise ConfigError(f"drop_rate={drop_rate} -> use a dropout probability in [0, 1)")


def _init_weights(model: nn.Module) -> None:
    """Torchvision's ResNet init: Kaiming-normal (fan_out, ReLU) convs, BN weight 1 / bias 0.

    ``nn.Linear`` keeps PyTorch's default init, as in torchvision.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def reduced_resnet18(in_chans: int = 4, num_classes: int = 4, **kw) -> ResNet:
    """ResNet18 stem + ``layer1`` (2x64) + ``layer2`` (2x128): the paper's reduced ResNet18."""
    kw.setdefault("layers", (2, 2))
    kw.setdefault("channels", (64, 128))
    return ResNet(in_chans=in_chans, num_classes=num_classes, **kw)


def tiny_resnet(in_chans: int = 4, num_classes: int = 4, **kw) -> ResNet:
    """A very small ResNet (stem 8, stages 1x8 and 1x16) for fast tests and smoke runs."""
    kw.setdefault("layers", (1, 1))
    kw.setdefault("channels", (8, 16))
    kw.setdefault("stem_width", 8)
    return ResNet(in_chans=in_chans, num_classes=num_classes, **kw)
