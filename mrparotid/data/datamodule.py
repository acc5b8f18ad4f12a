"""Cached crops → train/val/test tensors for Lightning, split by patient.

Batches travel as uint8 (4x less memory and host→device traffic than float) and become float
[0, 1] on the model's device in :meth:`ParotidDataModule.on_after_batch_transfer`, where the
training batches are also augmented (:class:`mrparotid.data.augment.BatchAugment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from mrparotid.data.augment import BatchAugment
from mrparotid.data.series_dropout import SeriesDropout
from mrparotid.data.cache import PreparedCohort, load_slices, prepare_cohort
from mrparotid.config import channel_options
from mrparotid.constants import CLASSES
from mrparotid.errors import ManifestError
from mrparotid.models.precision import channels_last
from mrparotid.data.splits import assert_disjoint, cohort_split
from mrparotid.io.manifest import Manifest, read_manifest
from mrparotid.data.crops import select_channels


@dataclass
class SplitData:
    """One split in memory: inputs uint8 (n, C, H, W), labels int64 (n,), per-slice provenance."""

    x: torch.Tensor
    y: torch.Tensor
    patient_id: np.ndarray
    side: np.ndarray
    index: np.ndarray
    z_mm: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


class SliceDataset(Dataset):
    def __init__(self, data: SplitData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return self.data.x[i], self.data.y[i]


def load_split(prepared: PreparedCohort, ids: list[str], channels, series_mask: str,
               **options) -> SplitData:
    """Concatenate the cached crops of ``ids`` with the chosen channels (``options``: further
    :func:`select_channels` arguments, see :func:`channel_options`)."""
    xs, ys, pids, sides, idx, zs = [], [], [], [], [], []
    for pid in ids:
        sl, _ = load_slices(prepared.entries[pid])
        xs.append(select_channels(sl.crops, channels, series_mask, planes=sl.planes, **options))
        ys.append(sl.labels)
        pids.append(np.full(len(sl), pid, dtype=object))
        sides.append(sl.sides)
        idx.append(sl.slice_index)
        zs.append(sl.z_mm)
    if not xs:
        return SplitData(torch.zeros((0, len(channels), 1, 1), dtype=torch.uint8),
                         torch.zeros(0, dtype=torch.long), np.zeros(0, object), np.zeros(0, "<U1"),
                         np.zeros(0, np.int64), np.zeros(0))
    return SplitData(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                     np.concatenate(pids), np.concatenate(sides), np.concatenate(idx), np.concatenate(zs))


class ParotidDataModule(pl.LightningDataModule):
    """Train/val/test slice crops of a cohort, from the cache (built on first use).

    The split comes from the manifest's ``split`` column where given, else a seeded per-patient
    draw (:func:`mrparotid.data.splits.split_patients`; ``data.test_fraction``, ``data.val_fraction``).
    ``splits`` may also be given explicitly (cross-validation folds). No patient is ever in two
    splits (asserted).
    """

    def __init__(self, cfg: dict, manifest: str | Path | Manifest, *,
                 splits: dict[str, list[str]] | None = None, progress: bool = True):
        super().__init__()
        self.cfg = cfg
        self.manifest = manifest if isinstance(manifest, Manifest) else read_manifest(manifest, check_dirs=False)
        self.channels = tuple(cfg["data"]["channels"])
        self.progress = progress
        self.splits = splits
        self.prepared: PreparedCohort | None = None
        self.data: dict[str, SplitData] = {}
        self.augment = BatchAugment(self.channels, cfg.get("augment"))
        self.series_dropout = SeriesDropout(self.channels, self.augment.cfg.series_dropout)

    def prepare_data(self) -> None:
        """Build missing cache entries (once per process; Lightning may call it again)."""
        if self.prepared is None:
            self.prepared = prepare_cohort(self.manifest, self.cfg, progress=self.progress)

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        if self.prepared is None:  # a DDP worker, where Lightning ran prepare_data on rank 0 only
            self.prepared = prepare_cohort(self.manifest, self.cfg, progress=False)
        d = self.cfg["data"]
        if self.splits is None:
            self.splits = cohort_split(self.prepared.ok_cases(), d)
        assert_disjoint(self.splits)
        if not self.splits.get("train"):
            raise ManifestError("no training patients", path=self.manifest.path,
                                fix="mark some rows split=train or leave split empty")
        for split, ids in self.splits.items():
            self.data[split] = load_split(self.prepared, ids, self.channels, d["series_mask"],
                                          **channel_options(d))

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.data["train"].y.numpy(), minlength=len(CLASSES))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        d = self.cfg["data"]
        return DataLoader(SliceDataset(self.data[split]), batch_size=int(d["batch_size"]),
                          shuffle=shuffle, num_workers=int(d["num_workers"]),
                          drop_last=shuffle and len(self.data[split]) > int(d["batch_size"]),
                          persistent_workers=int(d["num_workers"]) > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def has_val(self) -> bool:
        """True when the split has validation slices (else fit keeps ``last.ckpt``)."""
        return len(self.data.get("val", [])) > 0

    def val_dataloader(self) -> DataLoader:
        """The validation slices only (empty without validation patients; never training slices)."""
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        training = self.trainer is not None and self.trainer.training
        # channels_last (the model's layout): unaugmented batches change layout as uint8 (4x fewer
        # bytes than float; .float() keeps it), augmented ones at the end (grid_sample gives NCHW)
        x = (x if training else channels_last(x)).float().div_(255.0)
        if training:
            x = self.augment.train()(x)
        # series dropout (training) and present-flag planes: identity without augment.series_dropout
        return channels_last(self.series_dropout(x, train=self.trainer is not None and self.trainer.training)), y
