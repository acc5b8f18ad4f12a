"""Frames of one series → :class:`SeriesGeometry`: sorted along the normal, checked, gaps found.

Slice order comes from ImagePositionPatient projected on the slice normal (row × column cosines),
never from file names or InstanceNumber, also for the frames of an enhanced multi-frame file.
The frames must form one regular stack: one orientation, matrix and pixel spacing, no in-plane
offsets between slices (a sheared stack, e.g. gantry tilt), no two slices at one position. Steps
that vary from the median by more than :data:`MAX_SPACING_DEVIATION` are either a dropped slice
(at most ``max_missing`` in a row, the config's ``data.max_gap_slices``, default
:data:`MAX_MISSING_SLICES`: :func:`fill_gaps` resamples the stack onto even spacing and
:func:`mrparotid.dicom.series.interpolated_positions` says where) or an error naming the gap; GDCM alone would stretch
the spacing.

The grid: origin = ImagePositionPatient of the first sorted slice, direction columns (row
cosine, column cosine, slice normal) with the normal = row × column (a right-handed matrix),
spacing (column spacing, row spacing, slice step) in mm, all LPS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrparotid.dicom.headers import Frame
from mrparotid.errors import InputError

#: Relative deviation of a slice step from the median step that counts as uneven spacing.
MAX_SPACING_DEVIATION = 0.10
#: Largest number of consecutive missing slices that is filled by interpolation (else an error);
#: the default of ``data.max_gap_slices`` in configs/default.yaml.
MAX_MISSING_SLICES = 1
#: The fix of a gap that is not filled in.
GAP_FIX = ("re-export the complete series (slices were dropped), or allow longer gaps with "
           "--data.max_gap_slices N")


@dataclass(frozen=True)
class Gap:
    """A dropped-slice gap between sorted slices ``before`` and ``before + 1``."""

    before: int
    start_mm: float
    gap_mm: float
    missing: int


@dataclass(frozen=True)
class SeriesGeometry:
    """Frames sorted along the slice normal and the even grid they are read onto.

    ``positions_mm`` are the frames' positions along the normal (ascending); ``step_mm`` is the
    slice step of the output grid; ``n_slices`` the slices of that grid (frames + missing ones).
    """

    frames: tuple[Frame, ...]
    positions_mm: tuple[float, ...]
    step_mm: float
    n_slices: int
    gaps: tuple[Gap, ...]

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the row cosine, column cosine and slice normal (LPS)."""
        row, col = _cosines(self.frames[0].orientation)
        return np.stack([row, col, np.cross(row, col)], axis=1)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(x, y, z) spacing in mm: column spacing, row spacing, slice step."""
        dr, dc = self.frames[0].pixel_spacing
        return (float(dc), float(dr), float(self.step_mm))

    @property
    def origin(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.frames[0].position)

    @property
    def size(self) -> tuple[int, int, int]:
        rows, cols = self.frames[0].shape
        return (int(cols), int(rows), int(self.n_slices))


def _cosines(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    iop = np.asarray(orientation, dtype=float)
    return iop[:3], iop[3:]


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit slice normal (row cosine × column cosine) of an ImageOrientationPatient, LPS."""
    row, col = _cosines(orientation)
    n = np.cross(row, col)
    return n / np.linalg.norm(n)


def slice_gaps(positions_mm: Sequence[float], *, where: str | Path | None = None,
               patient: str | None = None,
               max_missing: int = MAX_MISSING_SLICES) -> tuple[float, tuple[Gap, ...]]:
    """Slice step (mm) of sorted slice positions and the dropped-slice gaps among them.

    A step more than :data:`MAX_SPACING_DEVIATION` away from the median step must be a whole
    multiple m ≥ 2 of it (m - 1 missing slices). With no gap the step is the mean step (as GDCM);
    with gaps it is the span divided by the number of steps of the completed grid.

    >>> slice_gaps([0.0, 5.0, 10.0, 20.0, 25.0])
    (5.0, (Gap(before=2, start_mm=10.0, gap_mm=10.0, missing=1),))

    Raises
    ------
    InputError
        Two slices at one position (several echoes or repeats in one series), uneven spacing
        that is no whole multiple of the median step, or more than ``max_missing`` missing
        slices in one gap.
    """
    p = np.asarray(positions_mm, dtype=float)
    if p.size < 2:
        return float("nan"), ()
    steps = np.diff(p)
    where_kw = {"patient": patient, "path": where}
    if (steps < 1e-3).any():
        n_dup = int((steps < 1e-3).sum())
        raise InputError(f"{n_dup} slice(s) repeat the position of another slice (several echoes, "
                         "phases or repeats stored as one series)", **where_kw,
                         fix="export each echo/repetition as its own series, or convert the one "
                             "you need to NIfTI")
    median = float(np.median(steps))
    ratio = steps / median
    gaps = []
    for i in np.flatnonzero(np.abs(ratio - 1) > MAX_SPACING_DEVIATION):
        m = int(round(ratio[i]))
        if m < 2 or abs(ratio[i] - m) > MAX_SPACING_DEVIATION:
            raise InputError(f"uneven slice spacing: a step of {steps[i]:.2f} mm at slice position "
                             f"{p[i]:.1f} mm where the usual step is {median:.2f} mm", **where_kw,
                             fix="re-export the series with even slice spacing, or resample it "
                                 "and pass it as NIfTI")
        if m - 1 > max(0, int(max_missing)):
            raise InputError(f"slice gap of {steps[i]:.1f} mm at slice position {p[i]:.1f} mm "
                             f"({m - 1} missing slices of {median:.2f} mm; at most "
                             f"{max(0, int(max_missing))} in a row are filled in, "
                             "data.max_gap_slices)", **where_kw, fix=GAP_FIX)
        gaps.append(Gap(int(i), float(p[i]), float(steps[i]), m - 1))
    n_steps = len(steps) + sum(g.missing for g in gaps)
    return float((p[-1] - p[0]) / n_steps), tuple(gaps)


def series_geometry(frames: Sequence[Frame], *, where: str | Path | None = None,
                    patient: str | None = None,
                    max_missing: int = MAX_MISSING_SLICES) -> SeriesGeometry:
    """Sort ``frames`` along the slice normal and check they form one regular stack.

    Raises
    ------
    InputError
        Frames differ in orientation, matrix or pixel spacing; slices offset in-plane (a sheared
        stack); or a spacing problem (see :func:`slice_gaps`).
    """
    kw = {"patient": patient, "path": where}
    first = frames[0]
    for f in frames[1:]:
        if f.shape != first.shape or not np.allclose(f.orientation, first.orientation, atol=1e-3) \
                or not np.allclose(f.pixel_spacing, first.pixel_spacing, rtol=1e-3):
            raise InputError("slices differ in orientation, matrix or pixel spacing (several "
                             "stacks in one series)", **kw,
                             fix="export each stack as its own series (run 'mrparotid inspect')")
    normal = slice_normal(first.orientation)
    xyz = np.array([f.position for f in frames])
    along = xyz @ normal
    order = np.argsort(along, kind="stable")
    offsets = (xyz - xyz[order[0]]) - np.outer(along - along[order[0]], normal)
    if np.linalg.norm(offsets, axis=1).max() > 0.5 * min(first.pixel_spacing):
        raise InputError("slices are offset in-plane from one another (sheared stack, e.g. "
                         "gantry tilt)", **kw,
                         fix="resample the series onto a regular grid and pass it as NIfTI")
    step, gaps = slice_gaps(along[order], where=where, patient=patient, max_missing=max_missing)
    if np.isnan(step):
        step = 1.0
    n = len(frames) + sum(g.missing for g in gaps)
    return SeriesGeometry(tuple(frames[i] for i in order), tuple(float(v) for v in along[order]),
                          step, n, gaps)


def fill_gaps(stack: np.ndarray, positions_mm: Sequence[float], step_mm: float,
              n_slices: int) -> np.ndarray:
    """Resample a (z, y, x) stack at uneven ``positions_mm`` onto ``n_slices`` even positions.

    The even positions start at ``positions_mm[0]`` with step ``step_mm``. A target within 10 %
    of a step from a real slice copies it; others interpolate linearly between the neighbours.
    """
    p = np.asarray(positions_mm, dtype=float)
    out = np.empty((n_slices,) + stack.shape[1:], dtype=np.float32)
    for k in range(n_slices):
        t = p[0] + k * step_mm
        j = int(np.clip(np.searchsorted(p, t), 1, len(p) - 1))
        lo, hi = p[j - 1], p[j]
        if abs(t - lo) <= 0.1 * step_mm or abs(t - hi) <= 0.1 * step_mm:
            out[k] = stack[j - 1] if abs(t - lo) <= abs(t - hi) else stack[j]
        else:
            w = (t - lo) / (hi - lo)
            out[k] = (1 - w) * stack[j - 1] + w * stack[j]
    return out


def filled_positions(positions_mm: Sequence[float], step_mm: float, n_slices: int) -> tuple[float, ...]:
    """Positions (mm along the slice normal) of the even grid of :func:`fill_gaps` that no real
    slice lies at (within 10 % of a step): the slices it fills in by interpolation."""
    p = np.asarray(positions_mm, dtype=float)
    even = p[0] + step_mm * np.arange(n_slices)
    near = np.abs(even[:, None] - p[None, :]).min(axis=1) <= 0.1 * step_mm
    return tuple(float(t) for t in even[~near])
