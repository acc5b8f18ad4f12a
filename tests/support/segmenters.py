"""Stand-in segmenters for the diagnosis and clinic tests.

``FakeSegmenter(gland, tumour)`` returns fixed masks (or ``fn(study) -> (gland, tumour)``) and
counts its calls; ``untrained_segmenter(path, series)`` writes a real (random-weight) segmenter
checkpoint, for the checks that happen before any inference (series, format).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from mrparotid.inference.masks import Segmenter


class FakeSegmenter(Segmenter):
    """A segmenter that returns the masks it was given (copied), without a checkpoint."""

    def __init__(self, gland=None, tumour=None, *, fn=None, path: str = "fake-segmenter.ckpt",
                 trained_on: tuple[str, ...] = ()):
        super().__init__(path)
        self.gland, self.tumour, self.fn = gland, tumour, fn
        self.calls = 0
        self.meta = {"split": {"splits": {"train": list(trained_on), "val": [], "test": []}}}

    def loaded(self):
        return SimpleNamespace(synthetic=True, series=("T1", "CE-T1", "T2"), meta=self.meta)

    def segment(self, study):
        self.calls += 1
        if self.fn is not None:
            return self.fn(study)
        return np.array(self.gland, np.uint8), np.array(self.tumour, np.uint8)


def untrained_segmenter(path: Path, series: str = "[T1,CE-T1,T2]") -> Path:
    """A tiny MONAI UNet with random weights saved as a segmenter checkpoint (imports MONAI)."""
    import torch

    from mrparotid.segmentation.config import load_segment_config
    from mrparotid.segmentation.infer import segmenter_meta
    from mrparotid.segmentation.network import build_segmenter

    cfg = load_segment_config(None, ["--data.series", series, "--model.channels", "[4,8]",
                                     "--model.strides", "[2]"])
    torch.manual_seed(0)
    model = build_segmenter(cfg["model"], len(cfg["data"]["series"]))
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "mrparotid": segmenter_meta(cfg, synthetic=True)}, path)
    return Path(path)
