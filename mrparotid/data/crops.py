"""Axial slices of one side → fixed-scale square crops, normalised to uint8; crops → model input.

Crops are stacked as planes: the MR series (the paper's T1, CE-T1 and T2, then any other series the
channels name, in :data:`~mrparotid.constants.SERIES` order), then the gland and tumour masks
(:func:`planes_of`; :data:`PLANES` for the paper's three series), each ``size x size`` pixels,
stored as uint8 where 255 = 1.0. The model's channels are chosen from these planes at load time
(:func:`select_channels`).
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from collections.abc import Mapping

from mrparotid.constants import PAPER_SERIES, SERIES, parse_channels, series_of_channels

MASK_PLANES: tuple[str, ...] = ("gland", "tumour")
#: The planes of a crop of the paper's three series (today's layout; the default).
PLANES: tuple[str, ...] = PAPER_SERIES + MASK_PLANES
#: ``data.adc_range``'s default: the ADC window (x 10⁻³ mm²/s) mapped to [0, 1].
ADC_RANGE: tuple[float, float] = (0.0, 3.0)


def plane_series(cfg_data: Mapping) -> tuple[str, ...]:
    """The MR series a crop holds for a config's (or a checkpoint preprocess record's) ``data``:
    its ``series`` record where there is one, else the paper's three plus every other series its
    ``channels`` name, in :data:`~mrparotid.constants.SERIES` order.

    >>> plane_series({"channels": ["T1", "ADC", "mask"]})
    ('T1', 'CE-T1', 'T2', 'ADC')
    """
    if cfg_data.get("series"):
        return tuple(s for s in SERIES if s in cfg_data["series"])
    return series_of_channels(cfg_data.get("channels") or PAPER_SERIES)


def planes_of(series: tuple[str, ...]) -> tuple[str, ...]:
    """The planes of a crop holding ``series``: the series, then the gland and tumour masks."""
    return tuple(series) + MASK_PLANES


def crop_box(region: np.ndarray, spacing: tuple[float, float, float], margin_mm: float
             ) -> tuple[int, int, int, int]:
    """Square (in mm) in-plane box around ``region`` over all its slices, plus ``margin_mm``.

    Returns ``(y0, y1, x0, x1)`` pixel bounds (half-open), possibly outside the image.
    """
    ys, xs = np.nonzero(region.any(0))
    sx, sy = spacing[0], spacing[1]
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    half_mm = max((ys.max() - ys.min() + 1) * sy, (xs.max() - xs.min() + 1) * sx) / 2 + margin_mm
    hy, hx = half_mm / sy, half_mm / sx
    y0, x0 = int(np.floor(cy - hy + 0.5)), int(np.floor(cx - hx + 0.5))
    return y0, y0 + max(1, int(round(2 * hy))), x0, x0 + max(1, int(round(2 * hx)))


def extract_crops(volume: np.ndarray, slice_index: np.ndarray, box: tuple[int, int, int, int],
                  size: int, *, is_mask: bool) -> np.ndarray:
    """Cut ``box`` from the given axial slices and resize to ``size x size``.

    Pixels outside the volume are NaN for images (so they can be left out of intensity
    statistics) and 0 for masks. Images are resized bilinearly with anti-aliasing, masks by
    nearest neighbour. Returns float32 (n, size, size).
    """
    y0, y1, x0, x1 = box
    nz, ny, nx = volume.shape
    out = np.full((len(slice_index), y1 - y0, x1 - x0), 0.0 if is_mask else np.nan, np.float32)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, ny), max(x0, 0), min(x1, nx)
    if sy0 < sy1 and sx0 < sx1:
        out[:, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = volume[slice_index, sy0:sy1, sx0:sx1]
    if out.shape[1:] == (size, size):
        return out
    shape = (len(slice_index), size, size)
    if is_mask:
        return resize(out, shape, order=0, anti_aliasing=False, preserve_range=True).astype(np.float32)
    nan = np.isnan(out)
    filled = np.where(nan, 0.0, out)
    res = resize(filled, shape, order=1, anti_aliasing=True, preserve_range=True)
    outside = resize(nan.astype(np.float32), shape, order=0, anti_aliasing=False) > 0.5
    res[outside] = np.nan
    return res.astype(np.float32)


def normalise_percentiles(stack: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map intensities to [0, 1] by the ``low``/``high`` percentiles of the finite values.

    NaN stays NaN. A constant stack maps to 0.

    >>> normalise_percentiles(np.array([0., 5., 10.]), 0, 100)
    array([0. , 0.5, 1. ], dtype=float32)
    """
    finite = stack[np.isfinite(stack)]
    if finite.size == 0:
        return np.zeros_like(stack, dtype=np.float32)
    lo, hi = np.percentile(finite, [low, high])
    if hi <= lo:
        return np.where(np.isnan(stack), np.nan, 0.0).astype(np.float32)
    return np.clip((stack - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def normalise_range(stack: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map physical values (e.g. an ADC in x 10⁻³ mm²/s) to [0, 1] by a fixed window ``low`` ..
    ``high``, clipped; NaN stays NaN. Unlike :func:`normalise_percentiles` the same value gives the
    same byte in every patient.

    >>> normalise_range(np.array([0.0, 1.5, 4.0]), 0.0, 3.0)
    array([0. , 0.5, 1. ], dtype=float32)
    """
    return np.clip((stack - low) / (high - low), 0.0, 1.0).astype(np.float32)


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats (NaN → 0) to uint8 with 255 = 1.0."""
    return np.rint(np.nan_to_num(unit, nan=0.0) * 255.0).astype(np.uint8)


#: ``data.gland_channel``: what the ``mask`` channel holds (binary gland mask, or T1 inside it).
GLAND_CHANNELS: tuple[str, ...] = ("mask", "t1")


def closed_outline(gland: np.ndarray, tumour: np.ndarray, radius_px: int) -> np.ndarray:
    """Bool (n, H, W): per slice, gland ∪ tumour closed by a disk of ``radius_px`` and with its
    holes filled: the gland's outer outline with every gap, notch or moat narrower than about
    ``2 * radius_px`` between the drawn gland and the tumour closed. Two Euclidean distance
    transforms per slice (dilate, then erode), padded so the crop's edge does not erode it."""
    from scipy import ndimage

    out = np.zeros(gland.shape, dtype=bool)
    r = int(radius_px)
    for i, m in enumerate(gland | tumour):
        if not m.any():
            continue
        padded = np.pad(m, r + 1)
        dilated = ndimage.distance_transform_edt(~padded) <= r
        closed = ndimage.distance_transform_edt(dilated) > r
        out[i] = ndimage.binary_fill_holes(closed | padded)[r + 1:-(r + 1), r + 1:-(r + 1)]
    return out


def select_channels(crops: np.ndarray, channels: tuple[str, ...] | list[str],
                    series_mask: str = "none", gland_channel: str = "mask", *,
                    tumour_known: bool = True, gland_close_px: float = 0.0,
                    planes: tuple[str, ...] = PLANES) -> np.ndarray:
    """Model input from stored planes: uint8 (n, len(planes), H, W) → uint8 (n, len(channels), H, W).

    ``series_mask`` ``"gland"``/``"tumour"`` zeroes the MR series outside that mask (the paper's
    Fig. 3 shows tumour-only series); ``"none"`` keeps them whole. ``"gland"`` keeps gland ∪
    tumour, as gland contours often leave the tumour out. With ``tumour_known=False`` (a patient
    without a tumour mask, at diagnosis) the tumour's extent is unknown, so ``"gland"`` keeps the
    series whole rather than blank the tumour. The ``mask`` channel is the binary parotid gland
    mask (``gland_channel="mask"``) or the T1 plane inside it (``"t1"``, the paper's
    "T1-weighted parotid gland image"). With ``gland_close_px`` > 0 the mask is the closed outline
    of gland ∪ tumour (:func:`closed_outline`, radius ``gland_close_px`` at 224 px scaled to the
    crop, at least 1): how a drawn contour runs around the tumour, which a segmenter's does not
    reproduce, no longer reaches the model. Channels come out in the fixed order of
    :data:`mrparotid.constants.CHANNELS`, whatever the order asked for.

    Raises
    ------
    ConfigError
        ``gland_channel`` is not one of :data:`GLAND_CHANNELS`, or a channel is not among the
        crops' ``planes``.
    """
    from mrparotid.errors import ConfigError

    if gland_channel not in GLAND_CHANNELS:
        raise ConfigError(f"data.gland_channel is {gland_channel!r}",
                          fix=f"use one of {', '.join(GLAND_CHANNELS)} (e.g. --data.gland_channel t1)")
    channels = parse_channels(channels)
    planes = tuple(planes)
    absent = [c for c in channels if c != "mask" and c not in planes]
    if absent:
        raise ConfigError(f"channel(s) {', '.join(absent)} not among the prepared planes "
                          f"({', '.join(planes)})", fix="prepare the crops with these channels in "
                          "data.channels (the cache then holds them)")
    gland = crops[:, planes.index("gland")] > 0
    keep = None
    if series_mask == "tumour":
        keep = crops[:, planes.index("tumour")] > 0
    elif series_mask == "gland" and tumour_known:
        keep = gland | (crops[:, planes.index("tumour")] > 0)
    outline = gland
    if "mask" in channels and gland_close_px and float(gland_close_px) > 0:
        radius = max(1, int(round(float(gland_close_px) * crops.shape[-1] / 224)))
        outline = closed_outline(gland, crops[:, planes.index("tumour")] > 0, radius)
    picks = []
    for ch in channels:
        if ch == "mask":
            inside = crops[:, planes.index("T1" if gland_channel == "t1" else "gland")]
            if outline is not gland:       # the closed outline: 255 (= 1.0) inside, or T1 inside it
                inside = np.full_like(inside, 255) if gland_channel == "mask" else inside
                picks.append(np.where(outline, inside, 0).astype(np.uint8))
                continue
            picks.append(np.where(gland, inside, 0).astype(np.uint8))
        else:
            plane = crops[:, planes.index(ch)]
            picks.append(plane if keep is None else np.where(keep, plane, 0).astype(np.uint8))
    return np.stack(picks, axis=1)
