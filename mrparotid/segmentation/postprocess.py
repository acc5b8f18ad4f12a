"""Binary gland/tumour predictions on the T1 grid → clean masks, nnU-Net style.

Volumes are (z, y, x) on the T1 reference grid (x towards patient Left, LPS +x); spacing is
(x, y, z) in mm as in :class:`mrparotid.data.grid.Study`. Steps:

1. components (26-connected) smaller than ``min_component_mm3`` are removed from both masks;
2. each component of gland ∪ tumour gets its side from :func:`mrparotid.data.sides.call_sides`,
   the one side rule for given and automatic masks: between two glands more than 20 mm apart,
   else against the patient's midline (head outline on T1 of ``study``; without an outline the
   sign of LPS x, with a warning). Without ``study`` (no LPS geometry) a lone gland has no side;
3. per side, the largest component of gland ∪ tumour on that side is kept, and the gland is the
   predicted gland inside it (so a tumour that splits a gland in two does not cost the other
   half); the largest component of unknown side (within 10 mm of the midline estimate) is kept
   as side ``"?"`` when no side is named;
4. a tumour component is kept when it touches (26-neighbours) a kept gland or lies within
   ``tumour_max_distance_mm`` of a voxel that does.

The gland comes out labelled 1 (right), 2 (left) and 3 (gland, side unknown, with a warning in
``CleanMasks.warnings``): the convention of ``parotid.nii.gz`` that
:func:`mrparotid.data.sides.side_regions` reads as the two sides (3 alone is one gland whose side
that function decides again, by the same rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mrparotid.data.grid import Study
from mrparotid.data.sides import SideCall, call_sides, side_warnings

SIDE_LABELS: dict[str, int] = {"R": 1, "L": 2}
#: Side key and label of a gland whose side is unknown ("gland, side unknown").
UNKNOWN_SIDE = "?"
UNKNOWN_LABEL = 3


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
    gland: np.ndarray               # uint8 (z, y, x): 0, 1 right, 2 left, 3 side unknown
    tumour: np.ndarray              # uint8 (z, y, x): 0/1
    sides: dict[str, SideFinding]   # sides with a kept gland, "L"/"R", or "?" (side unknown)
    mid_x_mm: float                 # mid-sagittal plane (LPS x mm; grid x mm without a study; nan: none)
    warnings: tuple[str, ...] = ()  # how the sides were named, for the report (e.g. side unknown)


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


def postprocess(gland: np.ndarray, tumour: np.ndarray, spacing: tuple[float, float, float], *,
                min_component_mm3: float, tumour_max_distance_mm: float,
                study: Study | None = None) -> CleanMasks:
    """Clean binary gland/tumour predictions (bool or 0/1, z, y, x) as the module says; ``study``
    (the grid's study, with its T1) places the sides in the patient."""
    spacing = tuple(float(s) for s in spacing)
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = min_component_mm3 / voxel_mm3
    gland = remove_small(np.asarray(gland) > 0, min_voxels)
    tumour = remove_small(np.asarray(tumour) > 0, min_voxels)
    labels, sizes = components(gland | tumour)
    order = np.argsort(sizes, kind="stable")[::-1] + 1            # largest first
    calls = call_sides([labels == lab for lab in order], study, spacing)
    out = np.zeros(gland.shape, np.uint8)
    kept: dict[str, tuple[int, SideCall]] = {}     # side key -> (component, its call)
    for lab, call in zip(order, calls):
        key = call.side or UNKNOWN_SIDE
        if key not in kept:
            kept[key] = (int(lab), call)
    if UNKNOWN_SIDE in kept and len(kept) > 1:        # a named side beside it: it is a remnant
        kept.pop(UNKNOWN_SIDE)
    values = {**SIDE_LABELS, UNKNOWN_SIDE: UNKNOWN_LABEL}
    for key, (lab, _) in kept.items():
        out[(labels == lab) & gland] = values[key]
    kept_tumour = _near(tumour, out > 0, spacing, tumour_max_distance_mm)
    owner = _nearest_gland(kept_tumour, out, spacing)
    sides = {}
    for key in sorted(kept):
        n_gland = int((out == values[key]).sum())
        if n_gland:
            n_tumour = int((owner == values[key]).sum())
            sides[key] = SideFinding(key, n_gland * voxel_mm3 / 1000, n_tumour * voxel_mm3 / 1000)
    named = [call for _, call in kept.values()]
    mid = named[0].midline_mm if named else float("nan")
    return CleanMasks(out, kept_tumour.astype(np.uint8), sides, mid, side_warnings(named))


def _nearest_gland(tumour: np.ndarray, gland: np.ndarray,
                   spacing: tuple[float, float, float]) -> np.ndarray:
    """The gland label (uint8, z, y, x) each tumour component lies nearest to (mm), 0 elsewhere."""
    out = np.zeros(tumour.shape, np.uint8)
    values = [int(v) for v in np.unique(gland) if v]
    if not values or not tumour.any():
        return out
    distance = np.stack([ndimage.distance_transform_edt(gland != v, sampling=spacing[::-1])
                         for v in values])
    labels, sizes = components(tumour)
    for i in range(1, len(sizes) + 1):
        comp = labels == i
        out[comp] = values[int(np.argmin(distance[:, comp].min(axis=1)))]
    return out


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
