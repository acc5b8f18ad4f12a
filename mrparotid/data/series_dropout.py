"""Series dropout and "present" flags: one model that still answers when an MR series is missing.

A model trained with ``augment.series_dropout: p > 0`` has *flagged series*: the MR series among
its channels (:func:`flagged_series`, in :data:`~mrparotid.constants.SERIES` order). Its input is
its channels followed by one constant plane per flagged series, 1.0 where that series is present
and 0.0 where it is absent, in which case the series' own plane is all zero. The flag planes are
appended by :func:`append_present_flags`, the one function used in training (after
:func:`drop_series`), in evaluation of series subsets (:func:`mask_series`) and in inference
(:func:`mrparotid.inference.predict.predict_probs`, from the series the patient has). A model
trained without dropout has no flagged series and no flag planes.

Conventions: a batch ``x`` is (B, C, H, W) with channels in the fixed order of
:data:`~mrparotid.constants.CHANNELS`; ``present`` is bool (B, k) (or (k,) for every sample),
k = number of flagged series.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from mrparotid.constants import SERIES


def flagged_series(channels: Sequence[str]) -> tuple[str, ...]:
    """The MR series among ``channels``, in fixed order (the series a present flag is kept for).

    >>> flagged_series(("T1", "T2", "mask"))
    ('T1', 'T2')
    """
    return tuple(s for s in SERIES if s in tuple(channels))


def series_flags_for(channels: Sequence[str], series_dropout: float) -> tuple[str, ...]:
    """The flagged series of a model trained on ``channels`` with ``series_dropout``: none when
    the rate is 0 (today's input, no extra planes), else :func:`flagged_series`."""
    return flagged_series(channels) if float(series_dropout) > 0 else ()


def draw_present(batch: int, k: int, p: float, device: torch.device | str = "cpu") -> Tensor:
    """Bool (batch, k): each series absent with probability ``p``, at least one present per row.

    A row where every series was drawn absent keeps one, chosen uniformly, so the marginal drop
    rate is ``p - p**k / k`` (0.291 for p = 0.3, k = 3). Draws come from torch's global RNG on
    ``device`` (``seed_everything`` fixes them).
    """
    present = torch.rand((batch, k), device=device) >= p
    if k == 0:
        return present
    none = ~present.any(1)
    if bool(none.any()):
        pick = torch.randint(0, k, (batch,), device=device)
        keep = torch.nn.functional.one_hot(pick, k).bool() & none.view(-1, 1)
        present = present | keep
    return present


def _series_index(channels: Sequence[str], flags: Sequence[str]) -> list[int]:
    channels = tuple(channels)
    return [channels.index(s) for s in flags]


def drop_series(x: Tensor, channels: Sequence[str], p: float) -> tuple[Tensor, Tensor]:
    """Zero each flagged series plane of each sample with probability ``p``, keeping at least
    one (:func:`draw_present`). Returns ``(x with absent planes zeroed, present)``; ``x`` itself
    is not modified."""
    flags = flagged_series(channels)
    present = draw_present(x.shape[0], len(flags), p, x.device)
    keep = torch.ones((x.shape[0], x.shape[1]), dtype=x.dtype, device=x.device)
    keep[:, _series_index(channels, flags)] = present.to(x.dtype)
    return x * keep.view(*keep.shape, 1, 1), present


def append_present_flags(x: Tensor, present: Tensor | np.ndarray | Sequence[bool]) -> Tensor:
    """``x`` (B, C, H, W) → (B, C + k, H, W): one constant plane per flagged series, 1.0 (255 for
    uint8 input) where present. ``present`` is (B, k) or (k,) for every sample."""
    present = torch.as_tensor(np.asarray(present, dtype=bool) if not isinstance(present, Tensor)
                              else present, device=x.device).bool()
    if present.ndim == 1:
        present = present.view(1, -1).expand(x.shape[0], -1)
    if present.shape[0] != x.shape[0]:
        raise ValueError(f"present flags for {present.shape[0]} samples, batch has {x.shape[0]}")
    on = 255 if x.dtype == torch.uint8 else 1.0
    planes = (present.to(x.dtype) * on).view(*present.shape, 1, 1)
    return torch.cat([x, planes.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)


def present_of(flags: Sequence[str], available: Iterable[str]) -> np.ndarray:
    """Bool (k,): which flagged series are among ``available`` (the series a patient has)."""
    have = set(available)
    return np.array([s in have for s in flags], dtype=bool)


def mask_series(x: np.ndarray | Tensor, channels: Sequence[str], keep: Iterable[str]
                ) -> tuple[np.ndarray | Tensor, np.ndarray]:
    """Model input as if only the series in ``keep`` had been acquired: the planes of the other
    series of ``channels`` zeroed (a copy); returns ``(x, present)`` with ``present`` bool (k,)
    over :func:`flagged_series` ``(channels)``. The mask channel is never touched."""
    flags = flagged_series(channels)
    present = present_of(flags, keep)
    out = x.clone() if isinstance(x, Tensor) else np.array(x, copy=True)
    for i, ok in zip(_series_index(channels, flags), present):
        if not ok:
            out[:, i] = 0
    return out, present


class SeriesDropout:
    """The datamodule's last step: in training, :func:`drop_series` then the flags; otherwise
    every flagged series present. The identity for a model without flags (rate 0)."""

    def __init__(self, channels: Sequence[str], p: float):
        self.channels = tuple(channels)
        self.p = float(p)
        self.flags = series_flags_for(self.channels, self.p)

    def __call__(self, x: Tensor, *, train: bool) -> Tensor:
        if not self.flags:
            return x
        if train:
            x, present = drop_series(x, self.channels, self.p)
        else:
            present = torch.ones(len(self.flags), dtype=torch.bool)
        return append_present_flags(x, present)
