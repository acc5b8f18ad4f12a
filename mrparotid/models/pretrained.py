"""ImageNet weights for the reduced ResNet: a torchvision ``resnet18`` state dict, loaded by name.

The RGB stem is adapted to the number of input channels as timm's ``adapt_input_conv`` does.
Files are read with ``weights_only=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from mrparotid.errors import CheckpointError
from mrparotid.models.resnet import ResNet


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """Adapt RGB stem weights to ``in_chans`` input channels (as timm does).

    Parameters
    ----------
    weight : Tensor
        Stem conv weights, shape (out, 3, k, k).
    in_chans : int
        Wanted input channels.

    Returns
    -------
    Tensor
        Shape (out, in_chans, k, k), same dtype. One channel: the sum over RGB (a grey image
        then gives the RGB response). Otherwise RGB filters repeat cyclically and are scaled by
        ``3 / in_chans``, keeping the expected activation magnitude.
    """
    if weight.ndim != 4:
        raise ValueError(f"stem weight must be 4-D (out, in, k, k), got shape {tuple(weight.shape)}")
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    rgb = weight.shape[1]
    if rgb != 3:
        if rgb == in_chans:
            return weight.clone()
        raise ValueError(f"stem weight has {rgb} input channels; only 3 (RGB) can be adapted")
    if in_chans == 3:
        return weight.clone()
    work = weight.float()
    if in_chans == 1:
        out = work.sum(dim=1, keepdim=True)
    else:
        reps = math.ceil(in_chans / 3)
        out = work.repeat(1, reps, 1, 1)[:, :in_chans] * (3.0 / in_chans)
    return out.to(weight.dtype)


def _read_state_dict(path: str | Path) -> Mapping[str, Tensor]:
    """Load a torchvision-style state dict (or ``{"state_dict": ...}``) from ``path`` on CPU."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError("ImageNet weights not found", path=path,
                              fix="download torchvision's resnet18 weights (resnet18-f37072fd.pth) "
                                  "or use init: random")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling/zip error is a bad file
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"cannot read ImageNet weights ({msg[:200]})", path=path,
                              fix="give a torchvision resnet18 state dict saved with torch.save")
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"ImageNet weights are a {type(obj).__name__}, not a state dict",
                              path=path, fix="give a torchvision resnet18 state dict")
    return {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, Tensor)}


def load_imagenet_weights(model: ResNet, path: str | Path) -> list[str]:
    """Load torchvision resnet18 ImageNet weights into ``model`` by parameter name.

    ``conv1.weight`` is adapted to ``model.in_chans`` (:func:`adapt_input_conv`); every other key
    loads when its name and shape match (``fc`` and the dropped ``layer3``/``layer4`` are
    skipped). Modifies ``model`` in place.

    Returns
    -------
    list of str
        The keys that were loaded, sorted.

    Raises
    ------
    CheckpointError
        The file is missing or unreadable, or no key matched.
    """
    source = dict(_read_state_dict(path))
    if "conv1.weight" in source:
        try:
            source["conv1.weight"] = adapt_input_conv(source["conv1.weight"], model.in_chans)
        except ValueError:
            pass  # leave it: the shape check below will skip it
    target = model.state_dict()
    loaded = {k: v for k, v in source.items()
              if k in target and not k.startswith("fc.") and tuple(v.shape) == tuple(target[k].shape)}
    if not loaded:
        raise CheckpointError("no parameter of the ImageNet weights matches the model", path=path,
                              fix="give a torchvision resnet18 state dict (keys conv1.weight, "
                                  "layer1.0.conv1.weight, ...) or use init: random")
    with torch.no_grad():
        for k, v in loaded.items():
            target[k].copy_(v.to(dtype=target[k].dtype))
    return sorted(loaded)
