"""A study on the T1 grid ↔ the segmenter's slices: normalised series, resampled in-plane.

Each series is normalised per patient to [0, 1] by robust percentiles over the *whole volume*
(:func:`normalise_series`; the crops' percentile function, but the gland region that the crops
use is what the segmenter must find, so it cannot be the window). Training and inference both
go through :func:`study_slices`, so they see the same bytes (images are rounded to float16).

Axial slices ``volume[k]`` (z, y, x; LPS as in :mod:`mrparotid.data.grid`) are resampled
in-plane to ``spacing_mm``: the output has ``round(n * spacing / spacing_mm)`` pixels per axis and
covers exactly the same field of view, so the effective spacing is within half a pixel over the
field of view of ``spacing_mm``; :func:`to_grid` maps probabilities back onto the T1 grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrparotid.data.crops import normalise_percentiles
from mrparotid.data.grid import Study
from mrparotid.errors import MissingSeriesError


@dataclass(frozen=True)
class SliceStack:
    """One patient's axial slices at the segmenter's spacing.

    ``images`` float32 (z, C, h, w) in [0, 1] (float16 precision), C = ``series`` in order;
    ``gland``/``tumour`` uint8 (z, h, w) resampled targets (None without masks); ``grid_shape``
    the T1 grid (z, y, x) and ``spacing`` its (x, y, z) spacing in mm.
    """

    patient_id: str
    series: tuple[str, ...]
    images: np.ndarray
    gland: np.ndarray | None
    tumour: np.ndarray | None
    grid_shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def has_masks(self) -> bool:
        return self.gland is not None and self.tumour is not None


def normalise_series(volume: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """One series volume → [0, 1] by the ``percentiles`` of all its voxels (float32)."""
    return normalise_percentiles(np.asarray(volume, np.float32), *percentiles)


def inplane_size(grid_shape: tuple[int, int, int], spacing: tuple[float, float, float],
                 spacing_mm: float) -> tuple[int, int]:
    """(h, w) pixels of a slice resampled to ``spacing_mm`` (y, x); at least 1 each."""
    _, ny, nx = grid_shape
    return (max(1, int(round(ny * spacing[1] / spacing_mm))),
            max(1, int(round(nx * spacing[0] / spacing_mm))))


def resize_slices(stack: np.ndarray, size: tuple[int, int], *, antialias: bool = True) -> np.ndarray:
    """(z, C, h, w) float → (z, C, *size) bilinear (half-pixel centres: the same field of view)."""
    import torch
    import torch.nn.functional as F

    if stack.shape[-2:] == tuple(size):
        return np.ascontiguousarray(stack, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))
    shrink = antialias and (size[0] < x.shape[-2] or size[1] < x.shape[-1])
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=shrink).numpy()


def study_slices(study: Study, series: tuple[str, ...] | list[str], spacing_mm: float,
                 percentiles: tuple[float, float]) -> SliceStack:
    """A study's normalised series (and masks, when present) as slices at ``spacing_mm``.

    Raises
    ------
    MissingSeriesError
        The study lacks one of ``series``.
    """
    series = tuple(series)
    for role in series:
        if role not in study.series:
            raise MissingSeriesError(f"no {role} series, which the segmenter takes", role=role,
                                     patient=study.patient_id, fix=f"add the {role} series")
    size = inplane_size(study.shape, study.spacing, spacing_mm)
    volumes = np.stack([normalise_series(study.series[r], percentiles) for r in series], axis=1)
    images = resize_slices(volumes, size).clip(0, 1).astype(np.float16).astype(np.float32)
    masks = {}
    for name, volume in (("gland", study.gland), ("tumour", study.tumour)):
        if volume is not None:
            soft = resize_slices((volume > 0).astype(np.float32)[:, None], size)[:, 0]
            masks[name] = (soft >= 0.5).astype(np.uint8)
    return SliceStack(study.patient_id, series, images, masks.get("gland"), masks.get("tumour"),
                      tuple(int(n) for n in study.shape), tuple(float(s) for s in study.spacing))


def to_grid(probs: np.ndarray, grid_shape: tuple[int, int, int]) -> np.ndarray:
    """(z, K, h, w) probabilities → (z, K, ny, nx) on the T1 grid (bilinear, same field of view)."""
    return resize_slices(probs, grid_shape[1:], antialias=False)


def pad_to_multiple(images: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Zero-pad (z, C, h, w) at the bottom/right to multiples of ``multiple``; returns the original (h, w)."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        images = np.pad(images, ((0, 0), (0, 0), (0, ph), (0, pw)))
    return images, (h, w)


def place_on_canvas(image: np.ndarray, target: np.ndarray, size: int,
                    offset: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Put one slice (C, h, w) and its target (K, h, w) on a ``size x size`` zero canvas.

    ``offset`` (fractions in [0, 1] per axis) chooses where: 0.5, 0.5 centres it (the default).
    A slice larger than the canvas is cropped at that relative position instead.
    """
    fy, fx = offset if offset is not None else (0.5, 0.5)
    out_i = np.zeros((image.shape[0], size, size), np.float32)
    out_t = np.zeros((target.shape[0], size, size), np.float32)
    src, dst = [], []
    for n, frac in zip(image.shape[1:], (fy, fx)):
        shift = int(round((size - n) * frac))          # negative: crop
        s0, d0 = max(0, -shift), max(0, shift)
        length = min(n - s0, size - d0)
        src.append(slice(s0, s0 + length))
        dst.append(slice(d0, d0 + length))
    out_i[:, dst[0], dst[1]] = image[:, src[0], src[1]]
    out_t[:, dst[0], dst[1]] = target[:, src[0], src[1]]
    return out_i, out_t
