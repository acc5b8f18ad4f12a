"""Study on one grid → the region of each parotid side (``"L"``, ``"R"``), and the one rule that
names the side of a gland, given or automatic (:func:`call_sides`).

Sides are named from the patient's point of view: ``"L"`` lies towards LPS +x. Volumes are indexed
(z, y, x) on the reference grid (see :mod:`mrparotid.data.grid`); positions are LPS mm.

Where the mid-sagittal plane lies (in this order):

1. two gland components more than 20 mm apart in LPS x: halfway between them (``"glands"``);
2. else the patient's own midline: the left-right centre of the head's outline on T1 over the
   gland's slices (``"outline"``, :func:`outline_midline_x`);
3. else, when the head reaches the left or right edge of the field of view on every gland slice
   (no whole outline), LPS x = 0, the scanner's centre, with a warning (``"scanner"``).

The field-of-view centre is never the midline. A gland whose centre lies within
:data:`SIDE_UNKNOWN_MM` of the midline estimate has no side (``side=None``): the report says
"side unknown" and the segmenter writes it as label 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import label as connected_components

from mrparotid.data.grid import Study

SIDES: tuple[str, ...] = ("L", "R")

#: Two glands further apart than this in LPS x (mm) set the mid-sagittal plane between them.
MIN_GLAND_SEPARATION_MM = 20.0
#: A gland centre closer than this to the midline estimate (LPS x, mm) has no known side. A parotid
#: lies 40-60 mm from the midline, so a centre this close means the estimate cannot be trusted.
SIDE_UNKNOWN_MM = 10.0
#: Body outline on T1: voxels brighter than this fraction of the T1's 99th percentile (air is dark).
BODY_FRACTION = 0.1


@dataclass(frozen=True)
class SideCall:
    """The side of one gland component: ``side`` ``"L"``/``"R"``, or None (unknown); ``x_mm`` its
    centre (LPS x, mm; grid x mm without geometry); ``midline_mm`` the plane it was judged
    against (nan: none) and ``source`` how that was found: ``glands``, ``labels``, ``outline``,
    ``scanner`` or ``none`` (no geometry)."""

    side: str | None
    x_mm: float
    midline_mm: float
    source: str

    @property
    def guess(self) -> str:
        """``side``, or for an unknown side the nearer half (a label only, never a finding)."""
        return self.side or ("L" if self.x_mm > self.midline_mm else "R")


@dataclass(frozen=True)
class Sides:
    """Each side's region, the sides whose name is only a guess (``unknown``), and what a report
    must say about how the sides were named (``warnings``)."""

    regions: dict[str, np.ndarray]
    unknown: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def side_regions(study: Study) -> dict[str, np.ndarray]:
    """Boolean (z, y, x) region of each side that has gland or tumour (see :func:`find_sides`)."""
    return find_sides(study).regions


def find_sides(study: Study) -> Sides:
    """The sides of a study with their regions, and the warnings of how they were named.

    With gland labels 1 and 2 present, each label is one side (plane halfway between them);
    otherwise each side is the largest connected component of gland ∪ tumour that
    :func:`call_sides` puts on it. Tumour components on a side are added to it. A lone gland of
    unknown side is kept under its nearer half (``Sides.unknown`` names it).
    """
    gland = study.gland
    tumour = study.tumour if study.tumour is not None else np.zeros_like(gland)
    labelled_sides = set(np.unique(gland)) - {0} == {1, 2}
    if labelled_sides:
        parts = [gland == 1, gland == 2]
        xs = [centre_x_mm(p, study) for p in parts]
        mid = (xs[0] + xs[1]) / 2
        calls = [SideCall("L" if x > mid else "R", x, mid, "labels") for x in xs]
    else:
        parts = _components_by_size((gland > 0) | (tumour > 0))
        calls = call_sides(parts, study)
    regions: dict[str, np.ndarray] = {}
    unknown: list[str] = []
    named: list[SideCall] = []          # the call of each side's first (largest) part
    for part, call in zip(parts, calls):
        side = call.guess
        if side not in regions:
            regions[side] = part.copy()
            named.append(call)
            if call.side is None:
                unknown.append(side)
        elif (part & (tumour > 0)).any():
            regions[side] |= part
    if labelled_sides and tumour.any():
        # tumour voxels outside both labels join the side whose centroid is nearer in x
        rest = (tumour > 0) & ~np.logical_or.reduce(list(regions.values()))
        for piece in _components_by_size(rest):
            regions["L" if centre_x_mm(piece, study) > calls[0].midline_mm else "R"] |= piece
    return Sides({s: regions[s] for s in SIDES if s in regions}, tuple(unknown),
                 side_warnings(named))


def call_sides(parts: list[np.ndarray], study: Study | None = None,
               spacing: tuple[float, float, float] | None = None) -> list[SideCall]:
    """The side of each gland component (bool (z, y, x), largest first): THE side rule, for given
    and automatic masks alike (see the module docstring).

    Without ``study`` (a grid with no LPS geometry; ``spacing`` (x, y, z) mm then gives grid x in
    mm) only two glands more than 20 mm apart have sides; a lone gland's side is unknown.
    """
    if not parts:
        return []
    xs = [centre_x_mm(p, study, spacing) for p in parts]
    if len(xs) >= 2 and abs(xs[0] - xs[1]) > MIN_GLAND_SEPARATION_MM:
        mid, source = (xs[0] + xs[1]) / 2, "glands"
    elif study is None:
        return [SideCall(None, x, float("nan"), "none") for x in xs]
    else:
        found = outline_midline_x(study, np.logical_or.reduce(parts))
        mid, source = (found, "outline") if found is not None else (0.0, "scanner")
    return [SideCall(_side_of(x, mid), x, mid, source) for x in xs]


def _side_of(x_mm: float, mid_mm: float) -> str | None:
    if abs(x_mm - mid_mm) < SIDE_UNKNOWN_MM:
        return None
    return "L" if x_mm > mid_mm else "R"


def side_warnings(calls: list[SideCall]) -> tuple[str, ...]:
    """What a report must say about the sides of ``calls`` (empty when both glands named them)."""
    out = []
    for c in calls:
        if c.source == "scanner":
            out.append(f"no whole head outline on T1 (the head reaches the edge of the field of view): "
                       f"the side of the gland at LPS x {c.x_mm:.1f} mm comes from the sign of LPS x "
                       "(the scanner's centre), not the patient's midline; check it")
        if c.side is None and c.source != "none":
            out.append(f"side unknown: the gland's centre (LPS x {c.x_mm:.1f} mm) lies "
                       f"{abs(c.x_mm - c.midline_mm):.1f} mm from the patient's midline estimate "
                       f"({'head outline on T1' if c.source == 'outline' else c.source}); "
                       f"its slices are listed under side {c.guess} as a label only")
        elif c.side is None:
            out.append("side unknown: one gland only and no patient geometry to place the midline")
    return tuple(dict.fromkeys(out))


def outline_midline_x(study: Study, gland: np.ndarray) -> float | None:
    """LPS x (mm) of the head's left-right centre: the centroid of the body outline on T1, the
    median over the slices of ``gland`` (bool, z, y, x) where the outline is whole. The outline
    of a slice is the largest bright region (holes filled) that holds gland voxels; it is not
    whole when it reaches the first or last column. None when no slice has a whole outline."""
    t1 = study.series.get("T1")
    if t1 is None or t1.shape != gland.shape:
        return None
    values = np.nan_to_num(np.asarray(t1, np.float32))
    level = BODY_FRACTION * float(np.percentile(values, 99))
    if level <= 0:
        return None
    centres = []
    for k in np.flatnonzero(gland.any(axis=(1, 2))):
        body = ndimage.binary_fill_holes(values[k] > level)
        labels, n = ndimage.label(body)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        outline = labels == (int(np.argmax(sizes)) + 1)
        cols = np.flatnonzero(outline.any(axis=0))
        if cols[0] == 0 or cols[-1] == outline.shape[1] - 1 or not (outline & gland[k]).any():
            continue
        cy, cx = np.argwhere(outline).mean(axis=0)
        centres.append(float(study.index_to_lps(np.array([[k, cy, cx]]))[0, 0]))
    return float(np.median(centres)) if centres else None


def centre_x_mm(mask: np.ndarray, study: Study | None = None,
                spacing: tuple[float, float, float] | None = None) -> float:
    """x of the centroid of ``mask``: LPS mm with ``study``, else grid x index × ``spacing[0]``."""
    idx = np.argwhere(mask).mean(0, keepdims=True)
    if study is not None:
        return float(study.index_to_lps(idx)[0, 0])
    return float(idx[0, 2] * float(spacing[0] if spacing is not None else 1.0))


def _components_by_size(mask: np.ndarray) -> list[np.ndarray]:
    """26-connected components of ``mask``, largest first."""
    if not mask.any():
        return []
    comp = connected_components(mask, connectivity=3)
    sizes = np.bincount(comp.ravel())[1:]
    return [comp == (i + 1) for i in np.argsort(sizes)[::-1]]
