"""Binary gland/tumour predictions on the T1 grid → clean masks, nnU-Net style.

Volumes are (z, y, x) on the T1 reference grid (x towards patient Left, LPS +x); spacing is
(x, y, z) in mm as in :class:`mrparotid.data.grid.Study`. Steps:

1. components (26-connected) smaller than ``min_component_mm3`` are removed from both masks;
2. the mid-sagittal plane lies halfway between the two largest components of gland ∪ tumour
   when they are more than 20 mm apart in x, else at the centre of the field of view
   (as :mod:`mrparotid.data.sides` does for given masks);
3. per side, the largest component of gland ∪ tumour whose centroid lies on that side is kept,
   and the gland is the predicted gland inside it (so a tumour that splits a gland in two does
   not cost the other half);
4. a tumour component is kept when it touches (26-neighbours) a kept gland or lies within
   ``tumour_max_distance_mm`` of a voxel that does.

The gland comes out labelled 1 (right) and 2 (left), the convention of ``parotid.nii.gz`` that
:func:`mrparotid.data.sides.side_regions` reads as the two sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mrparotid.data.sides import MIN_GLAND_SEPARATION_MM

SIDE_LABELS: dict[str, int] = {"R": 1, "L": 2}


@dataclass(frozen=True)
class SideFinding:
    """What the segmenter found on one side: volumes in ml, and whether a tumour is there."""

    side: str
    gland_ml: float
    tumour_ml: float

    @property
    def tumour_found(self) -> bool:
        return self.tumour_ml > 0


@dataclass(frozen=True)
class CleanMasks:
    gland: np.ndarray               # uint8 (z, y, x): 0, 1 right, 2 left
    tumour: np.ndarray              # uint8 (z, y, x): 0/1
    sides: dict[str, SideFinding]   # sides with a kept gland, "L"/"R"
    mid_x_mm: float                 # mid-sagittal plane, mm along the grid's x axis from voxel 0


_STRUCTURE = ndimage.generate_binary_structure(3, 3)


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """26-connected labels of ``mask`` and the size of each label (index 0 = label 1)."""
    labels, n = ndimage.label(mask, structure=_STRUCTURE)
    return labels, np.bincount(labels.ravel(), minlength=n + 1)[1:]


def remove_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """``mask`` without its components of fewer than ``min_voxels`` voxels (bool)."""
    labels, sizes = components(mask)
    keep = np.flatnonzero(sizes >= min_voxels) + 1
    return np.isin(labels, keep) if len(keep) else np.zeros(mask.shape, bool)


def mid_sagittal_x(region: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """x (mm from voxel 0) of the plane between the sides of ``region`` (bool, z, y, x)."""
    labels, sizes = components(region)
    sx = spacing[0]
    if len(sizes) >= 2:
        first, second = np.argsort(sizes)[::-1][:2] + 1
        xs = [np.nonzero(labels == lab)[2].mean() * sx for lab in (first, second)]
        if abs(xs[0] - xs[1]) > MIN_GLAND_SEPARATION_MM:
            return float((xs[0] + xs[1]) / 2)
    return float((region.shape[2] - 1) / 2 * sx)


def postprocess(gland: np.ndarray, tumour: np.ndarray, spacing: tuple[float, float, float], *,
                min_component_mm3: float, tumour_max_distance_mm: float) -> CleanMasks:
    """Clean binary gland/tumour predictions (bool or 0/1, z, y, x) as the module says."""
    spacing = tuple(float(s) for s in spacing)
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = min_component_mm3 / voxel_mm3
    gland = remove_small(np.asarray(gland) > 0, min_voxels)
    tumour = remove_small(np.asarray(tumour) > 0, min_voxels)
    region = gland | tumour
    mid_x = mid_sagittal_x(region, spacing)
    labels, sizes = components(region)
    out = np.zeros(gland.shape, np.uint8)
    if len(sizes):
        centre_x = ndimage.mean(np.indices(region.shape)[2] * spacing[0], labels,
                                np.arange(1, len(sizes) + 1))
        for side, value in SIDE_LABELS.items():
            on_side = [i for i in range(len(sizes)) if (centre_x[i] > mid_x) == (side == "L")]
            if on_side:
                best = max(on_side, key=lambda i: sizes[i]) + 1
                out[(labels == best) & gland] = value
    kept_tumour = _near(tumour, out > 0, spacing, tumour_max_distance_mm)
    sides = {}
    x_mm = np.arange(gland.shape[2]) * spacing[0]
    for side, value in SIDE_LABELS.items():
        n_gland = int((out == value).sum())
        if n_gland:
            half = (x_mm > mid_x) if side == "L" else (x_mm <= mid_x)
            n_tumour = int(kept_tumour[:, :, half].sum())
            sides[side] = SideFinding(side, n_gland * voxel_mm3 / 1000, n_tumour * voxel_mm3 / 1000)
    return CleanMasks(out, kept_tumour.astype(np.uint8), sides, mid_x)


def _near(tumour: np.ndarray, gland: np.ndarray, spacing: tuple[float, float, float],
          max_mm: float) -> np.ndarray:
    """The components of ``tumour`` within ``max_mm`` of ``gland`` (bool); none without gland."""
    if not gland.any() or not tumour.any():
        return np.zeros(tumour.shape, bool)
    touching = ndimage.binary_dilation(gland, structure=_STRUCTURE)   # 26-neighbours touch
    distance = ndimage.distance_transform_edt(~touching, sampling=spacing[::-1])
    labels, sizes = components(tumour)
    nearest = ndimage.minimum(distance, labels, np.arange(1, len(sizes) + 1))
    keep = np.flatnonzero(np.asarray(nearest) <= max_mm) + 1
    return np.isin(labels, keep)
