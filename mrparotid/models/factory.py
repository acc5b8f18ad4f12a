"""Build the slice classifier: by name (:func:`build_model`) or from a config's ``model`` section
(:func:`build_classifier`, the one builder that training and checkpoint loading both use)."""

from __future__ import annotations

from collections.abc import Sequence

from mrparotid.constants import CLASSES
from mrparotid.errors import ConfigError
from mrparotid.models.pretrained import load_imagenet_weights
from mrparotid.models.resnet import ResNet, reduced_resnet18, tiny_resnet

#: Names accepted by :func:`build_model`.
MODEL_NAMES: tuple[str, ...] = ("reduced_resnet18", "tiny_resnet", "resnet")


def build_classifier(model_cfg: dict, in_chans: int, *, pretrained: bool = True,
                     series_flags: Sequence[str] = ()) -> ResNet:
    """The classifier a config's ``model`` section describes, for ``in_chans`` input channels and
    the four slice classes.

    ``layers``, ``channels`` and ``stem_width`` apply to ``name: resnet``; the presets take only
    ``drop_rate``. ``pretrained=False`` skips ``init: imagenet:PATH`` (a checkpoint's weights are
    about to replace it). ``series_flags`` (a model trained with series dropout, see
    :mod:`mrparotid.data.series_dropout`) adds one input plane per flagged series; the model
    records them as ``model.series_flags`` for :func:`mrparotid.inference.predict.predict_probs`.
    """
    model = _build_classifier(model_cfg, in_chans + len(series_flags), pretrained=pretrained)
    model.series_flags = tuple(series_flags)
    return model


def _build_classifier(model_cfg: dict, in_chans: int, *, pretrained: bool) -> ResNet:
    name = model_cfg["name"]
    if name == "resnet":
        kw = {k: v for k, v in model_cfg.items() if k not in ("name", "init")}
    else:
        kw = {"drop_rate": model_cfg.get("drop_rate", 0.0)}
    init = str(model_cfg.get("init", "random")) if pretrained else "random"
    return build_model(name, in_chans=in_chans, num_classes=len(CLASSES), init=init, **kw)


def build_model(name: str = "reduced_resnet18", in_chans: int = 4, num_classes: int = 4,
                init: str = "random", **kw) -> ResNet:
    """Build a model by name and initialise it.

    Parameters
    ----------
    name : {"reduced_resnet18", "tiny_resnet", "resnet"}
        Preset; ``"resnet"`` takes ``layers`` and ``channels`` from ``kw``.
    in_chans, num_classes : int
        Input channels and output classes.
    init : str
        ``"random"`` (Kaiming) or ``"imagenet:PATH"`` (torchvision resnet18 state dict at PATH).
    **kw
        Further :class:`ResNet` arguments (``layers``, ``channels``, ``stem_width``, ``drop_rate``).
    """
    builders = {"reduced_resnet18": reduced_resnet18, "tiny_resnet": tiny_resnet}
    if name == "resnet":
        missing = [k for k in ("layers", "channels") if k not in kw]
        if missing:
            raise ConfigError(f"model name 'resnet' needs {' and '.join(missing)} -> set e.g. "
                              "layers: [2, 2], channels: [64, 128], or use reduced_resnet18")
        model = ResNet(in_chans=in_chans, num_classes=num_classes, **kw)
    elif name in builders:
        model = builders[name](in_chans=in_chans, num_classes=num_classes, **kw)
    else:
        raise ConfigError(f"unknown model name {name!r} -> choose from {', '.join(MODEL_NAMES)}")

    init = str(init).strip()
    if init == "random":
        return model
    if init.startswith("imagenet:") and init[len("imagenet:"):].strip():
        load_imagenet_weights(model, init[len("imagenet:"):].strip())
        return model
    raise ConfigError(f"unknown init {init!r} -> use 'random' or 'imagenet:PATH' "
                      "(PATH: a torchvision resnet18 state dict, e.g. resnet18-f37072fd.pth)")


