"""Study on one grid → the region of each parotid side (``"L"``, ``"R"``).

Sides are named from the patient's point of view: ``"L"`` lies towards LPS +x. Volumes are indexed
(z, y, x) on the reference grid (see :mod:`mrparotid.data.grid`).
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label as connected_components

from mrparotid.data.grid import Study

SIDES: tuple[str, ...] = ("L", "R")

#: Two glands further apart than this in LPS x (mm) set the mid-sagittal plane between them.
MIN_GLAND_SEPARATION_MM = 20.0


def side_regions(study: Study) -> dict[str, np.ndarray]:
    """Boolean (z, y, x) region of each side that has gland or tumour.

    With gland labels 1 and 2 present, each label is one side; otherwise each side is the largest
    connected component of gland ∪ tumour on that side of the mid-sagittal plane. The plane lies
    halfway between the two largest components when they are > 20 mm apart in LPS x, else at
    the centre of the field of view. Tumour components on a side are added to it.
    """
    gland = study.gland
    tumour = study.tumour if study.tumour is not None else np.zeros_like(gland)
    labelled_sides = set(np.unique(gland)) - {0} == {1, 2}
    if labelled_sides:
        parts = [gland == 1, gland == 2]
    else:
        parts = _components_by_size((gland > 0) | (tumour > 0))
    centres_x = [_centroid_x(study, p) for p in parts]
    mid_x = _mid_sagittal_x(study, centres_x, labelled_sides)
    regions: dict[str, np.ndarray] = {}
    for part, cx in zip(parts, centres_x):
        side = "L" if cx > mid_x else "R"
        if side not in regions:
            regions[side] = part.copy()
        elif (part & (tumour > 0)).any():
            regions[side] |= part
    if labelled_sides and tumour.any():
        # tumour voxels outside both labels join the side whose centroid is nearer in x
        rest = (tumour > 0) & ~np.logical_or.reduce(list(regions.values()))
        for piece in _components_by_size(rest):
            regions["L" if _centroid_x(study, piece) > mid_x else "R"] |= piece
    return {s: regions[s] for s in SIDES if s in regions}


def _components_by_size(mask: np.ndarray) -> list[np.ndarray]:
    """26-connected components of ``mask``, largest first."""
    if not mask.any():
        return []
    comp = connected_components(mask, connectivity=3)
    sizes = np.bincount(comp.ravel())[1:]
    return [comp == (i + 1) for i in np.argsort(sizes)[::-1]]


def _mid_sagittal_x(study: Study, centres_x: list[float], labelled_sides: bool) -> float:
    """LPS x (mm) of the plane that separates the sides."""
    if len(centres_x) >= 2 and (labelled_sides
                                or abs(centres_x[0] - centres_x[1]) > MIN_GLAND_SEPARATION_MM):
        return (centres_x[0] + centres_x[1]) / 2
    nz, ny, nx = study.shape
    return float(study.index_to_lps(np.array([[(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2]]))[0, 0])


def _centroid_x(study: Study, mask: np.ndarray) -> float:
    idx = np.argwhere(mask)
    return float(study.index_to_lps(idx.mean(0, keepdims=True))[0, 0])
