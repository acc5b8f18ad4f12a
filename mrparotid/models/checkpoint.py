"""The mrparotid checkpoint: a Lightning ``.ckpt`` whose ``"mrparotid"`` entry records how the model
was trained (channels, preprocessing, model config, rule, split). Loaded with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mrparotid import __version__
from mrparotid.config import channel_options, config_hash, preprocess_config
from mrparotid.constants import CLASSES
from mrparotid.data.series_dropout import series_flags_for
from mrparotid.errors import CheckpointError
from mrparotid.models.checkpoint_schema import CLASSIFIER_FORMAT, network_from
from mrparotid.models.factory import build_classifier
from mrparotid.models.resnet import ResNet

FORMAT = CLASSIFIER_FORMAT
#: What to do about a checkpoint whose record or weights do not check out.
DAMAGED_FIX = ("the checkpoint is damaged, edited or from another mrparotid version: use the file "
               "its run wrote, or re-train with 'mrparotid fit'")


def checkpoint_meta(cfg: dict, synthetic: bool, split: dict | None = None) -> dict:
    """What a checkpoint records of its run; ``split`` is :func:`mrparotid.data.splits.split_record`."""
    meta = {"format": FORMAT, "version": __version__, "channels": list(cfg["data"]["channels"]),
            "series_mask": cfg["data"]["series_mask"], "model": dict(cfg["model"]),
            "preprocess": preprocess_config(cfg), "rule": dict(cfg["rule"]),
            "classes": list(CLASSES), "config_hash": config_hash(cfg), "synthetic": synthetic}
    meta["channel_options"] = channel_options(cfg["data"])   # e.g. gland_channel
    dropout = float(cfg.get("augment", {}).get("series_dropout", 0.0))   # missing-series training
    meta["series_dropout"] = dropout
    meta["series_flags"] = list(series_flags_for(cfg["data"]["channels"], dropout))
    if split is not None:
        meta["split"] = split
    return meta


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference plus what it was trained with (``meta``)."""

    model: ResNet
    meta: dict
    path: Path

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.meta["channels"])

    @property
    def series_flags(self) -> tuple[str, ...]:
        """Series with a present flag (trained with series dropout); () for older checkpoints."""
        return tuple(self.meta.get("series_flags", ()))

    def run_config(self, cfg: dict) -> dict:
        """``cfg`` (a command's config: manifest, cache, trainer) with the data settings the
        model's inputs were made with: its channels, series mask, preprocessing and channel
        options. Crops cut with it hit the run's cache entries."""
        meta = self.meta
        return dict(cfg, data=dict(cfg["data"], channels=list(self.channels),
                                   series_mask=meta.get("series_mask", "none"), **meta["preprocess"],
                                   **meta.get("channel_options", {})))


def torch_load_safely(path: Path, what: str, fix: str):
    """The object in the checkpoint file ``path``, read on the CPU with ``weights_only=True``
    (tensors and plain containers only); ``what`` names the kind of file in errors (e.g.
    ``"mrparotid checkpoint"``), ``fix`` says what to pass instead.

    Raises
    ------
    CheckpointError
        Not a PyTorch file (its first bytes are neither a zip nor a pickle), or torch cannot load
        it safely (a damaged file, or one that holds more than weights).
    """
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):   # zip or legacy pickle
        raise CheckpointError(f"not an {what}: torch cannot load it (not a PyTorch file; it starts "
                              f"with {head!r})", path=path, fix=fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign/corrupt files
        raise CheckpointError(f"not an {what}: torch cannot load it safely ({type(exc).__name__}; "
                              "a damaged file, or one that holds more than weights)",
                              path=path, fix=fix) from None


def checkpoint_record(ckpt) -> dict | None:
    """The ``"mrparotid"`` record of a loaded checkpoint (its ``format``, model config, ...);
    None when it has none (a foreign file)."""
    meta = ckpt.get("mrparotid") if isinstance(ckpt, dict) else None
    return meta if isinstance(meta, dict) else None


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Load an mrparotid checkpoint (Lightning ``.ckpt``) safely with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        File missing, unreadable, not written by ``mrparotid fit``, or a record section
        (:mod:`mrparotid.models.checkpoint_schema`) or the weights damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path,
                              fix="pass --checkpoint RUN_DIR/checkpoints/best.ckpt from 'mrparotid fit'")
    fix = "pass --checkpoint RUN_DIR/checkpoints/best.ckpt written by 'mrparotid fit'"
    ckpt = torch_load_safely(path, "mrparotid checkpoint", fix)
    meta = checkpoint_record(ckpt)
    if meta is None or meta.get("format") != FORMAT:
        raise CheckpointError("not an mrparotid checkpoint", path=path, fix=fix)
    return LoadedModel(classifier_from(ckpt, path), meta, path)


def classifier_from(ckpt: dict, path: str | Path, fix: str = DAMAGED_FIX) -> ResNet:
    """The classifier (eval mode) that a loaded checkpoint of the classifier format describes,
    with its weights; its record and weights are checked first
    (:mod:`mrparotid.models.checkpoint_schema`), ``fix`` says what to do when they fail.

    Raises
    ------
    CheckpointError
        A record section missing, of the wrong type or out of range; weights missing, not finite
        or not of the network the record describes.
    """
    def build(meta: dict) -> ResNet:
        return build_classifier(meta["model"], len(meta["channels"]), pretrained=False,
                                series_flags=tuple(meta.get("series_flags", ())))

    return network_from(ckpt, path, fix, build, "model").eval()
