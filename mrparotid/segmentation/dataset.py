"""Training slices of the segmenter: which slices train, the fixed-size canvas, augmentation.

A patient trains on every axial slice with gland or tumour plus ``empty_fraction`` times as many
slices without (drawn once, seeded), so the network also learns to answer "nothing here".
Items are ``(image float32 (C, S, S), target float32 (2, S, S))`` with S = ``image_size`` and
targets gland, tumour (see :data:`mrparotid.segmentation.network.OUTPUTS`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from mrparotid.segmentation.slices import SliceStack, place_on_canvas


def training_slices(stack: SliceStack, empty_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted) of a stack's slices with gland or tumour, plus a share of empty ones."""
    present = (stack.gland.reshape(len(stack.gland), -1).any(1)
               | stack.tumour.reshape(len(stack.tumour), -1).any(1))
    full, empty = np.flatnonzero(present), np.flatnonzero(~present)
    n_empty = min(len(empty), int(round(empty_fraction * len(full))))
    picked = rng.choice(empty, size=n_empty, replace=False) if n_empty else np.zeros(0, np.int64)
    return np.sort(np.concatenate([full, picked]).astype(np.int64))


class SliceDataset(Dataset):
    """Slices of several stacks on a ``image_size`` canvas; ``shift`` places each slice at a
    random position (training), else centred (validation)."""

    def __init__(self, stacks: list[SliceStack], empty_fraction: float, image_size: int, *,
                 shift: bool, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.stacks = stacks
        self.items = [(i, int(k)) for i, s in enumerate(stacks)
                      for k in training_slices(s, empty_fraction, rng)]
        self.image_size, self.shift = int(image_size), bool(shift)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, k = self.items[index]
        s = self.stacks[i]
        target = np.stack([s.gland[k], s.tumour[k]]).astype(np.float32)
        offset = tuple(torch.rand(2).tolist()) if self.shift else None
        image, target = place_on_canvas(s.images[k], target, self.image_size, offset)
        return torch.from_numpy(image), torch.from_numpy(target)


def augment_batch(x: torch.Tensor, y: torch.Tensor, cfg: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Random left-right flips (``hflip_p``, image and target together) and per-sample,
    per-channel gain and offset within ± ``intensity`` (images only, clipped to [0, 1])."""
    n, c = x.shape[:2]
    flip = torch.rand(n, device=x.device) < float(cfg["hflip_p"])
    if flip.any():
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None, None], y.flip(-1), y)
    a = float(cfg["intensity"])
    if a > 0:
        gain = 1 + a * (2 * torch.rand(n, c, 1, 1, device=x.device) - 1)
        offset = a * (2 * torch.rand(n, c, 1, 1, device=x.device) - 1) / 2
        x = (x * gain + offset).clamp(0, 1)
    return x, y
