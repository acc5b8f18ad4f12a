"""Side-level tumour detection of automatic masks against given ones: a side's tumour is *found*
only when the automatic tumour overlaps the given tumour there, and an automatic tumour component
that touches no given tumour voxel is a *false alarm* on its side. The two are reported apart.

Volumes are (z, y, x) on one grid (the T1 grid), nonzero = structure; spacing is (x, y, z) in mm
as in :class:`mrparotid.data.grid.Study`. A side's region is a boolean (z, y, x) volume.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mrparotid.data.sides import MIN_GLAND_SEPARATION_MM

_STRUCTURE = ndimage.generate_binary_structure(3, 3)    # 26-neighbours, as the post-processing


def side_detection(auto_tumour: np.ndarray, true_tumour: np.ndarray,
                   regions: dict[str, np.ndarray]) -> dict[str, dict[str, bool]]:
    """Per side of ``regions``: ``tumour`` (given tumour voxels in the region), ``auto`` (an
    automatic tumour component lies on the side), ``found`` (an automatic tumour voxel lies on a
    given tumour voxel of the side) and ``false_alarm`` (an automatic tumour component on the side
    touches no given tumour voxel at all).

    A component lies on the side whose region it overlaps most; one that overlaps no region, on
    the side whose region's centre is nearest along the grid's x axis.
    """
    auto, truth = np.asarray(auto_tumour) > 0, np.asarray(true_tumour) > 0
    out = {s: {"tumour": bool((truth & r).any()), "auto": False,
               "found": bool((truth & r & auto).any()), "false_alarm": False} for s, r in regions.items()}
    if not regions or not auto.any():
        return out
    labels, n = ndimage.label(auto, structure=_STRUCTURE)
    centres = {s: float(np.nonzero(r)[2].mean()) if r.any() else np.inf for s, r in regions.items()}
    for i in range(1, n + 1):
        comp = labels == i
        side = _side_of(comp, regions, centres)
        out[side]["auto"] = True
        if not (comp & truth).any():
            out[side]["false_alarm"] = True
    return out


def _side_of(comp: np.ndarray, regions: dict[str, np.ndarray], centres: dict[str, float]) -> str:
    overlap = {s: int((comp & r).sum()) for s, r in regions.items()}
    best = max(overlap, key=lambda s: (overlap[s], s))
    if overlap[best] > 0:
        return best
    x = float(np.nonzero(comp)[2].mean())
    return min(centres, key=lambda s: (abs(centres[s] - x), s))


def half_space_sides(gland: np.ndarray, tumour: np.ndarray,
                     spacing: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """The two sides of a patient from its given masks alone (no LPS geometry): the half-spaces on
    either side of the plane halfway (grid x, mm) between the two largest components of
    gland ∪ tumour when they lie more than 20 mm apart, ``"L"`` towards +x (the grid convention of
    :mod:`mrparotid.segmentation.postprocess`). With one gland only, the whole grid is one side,
    ``"lone"``; with no gland or tumour, no side."""
    region = (np.asarray(gland) > 0) | (np.asarray(tumour) > 0)
    labels, n = ndimage.label(region, structure=_STRUCTURE)
    if n == 0:
        return {}
    sizes = np.bincount(labels.ravel())[1:]
    x_mm = np.arange(region.shape[2]) * float(spacing[0])
    if n >= 2:
        first, second = np.argsort(sizes)[::-1][:2] + 1
        xs = [float(np.nonzero(labels == lab)[2].mean()) * float(spacing[0]) for lab in (first, second)]
        if abs(xs[0] - xs[1]) > MIN_GLAND_SEPARATION_MM:
            left = np.broadcast_to(x_mm > (xs[0] + xs[1]) / 2, region.shape)
            return {"L": left.copy(), "R": ~left}
    return {"lone": np.ones(region.shape, bool)}


def detection_counts(sides: list[dict[str, bool]]) -> dict:
    """Counts over sides (each a :func:`side_detection` record): ``tumour_sides``, ``found``,
    ``missed``, ``tumour_free_sides``, ``clear`` (tumour-free sides without automatic tumour)
    and ``false_alarm_sides`` (sides with a false-alarm component, with or without a tumour)."""
    tumour = [s for s in sides if s["tumour"]]
    free = [s for s in sides if not s["tumour"]]
    return {"sides": len(sides), "tumour_sides": len(tumour), "found": sum(s["found"] for s in tumour),
            "missed": sum(not s["found"] for s in tumour), "tumour_free_sides": len(free),
            "clear": sum(not s["auto"] for s in free),
            "false_alarm_sides": sum(s["false_alarm"] for s in sides)}
