"""A dynamic (DCE) series → its temporal positions → the one phase the ``DCE`` channel holds.

A DCE series stores several phases (temporal positions) of one stack: classic files tell them
apart by TemporalPositionIdentifier (0020,0100), else AcquisitionNumber, TriggerTime or
AcquisitionTime; enhanced frames by TemporalPositionIndex (0020,9128) of their Frame Content
group. The ``DCE`` channel is ONE phase: the phase of highest mean signal over the volume (peak
enhancement); the image's note says which (:func:`mrparotid.data.diffusion.notes_of`). A series
that holds one phase is read as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from mrparotid.data.diffusion import with_note
from mrparotid.dicom.geometry import MAX_MISSING_SLICES, slice_normal
from mrparotid.dicom.headers import Frame, frames_of
from mrparotid.dicom.series import image_from_frames
from mrparotid.errors import InputError

Headers = Sequence[tuple[Path, pydicom.Dataset]]
#: Classic header elements that tell phases apart, tried in this order.
PHASE_KEYWORDS = ("TemporalPositionIdentifier", "AcquisitionNumber", "TriggerTime",
                  "AcquisitionTime")


def frame_phases(ds: pydicom.Dataset) -> list[str | None]:
    """The temporal position of each frame (TemporalPositionIndex of an enhanced file's frames,
    TemporalPositionIdentifier of a classic file), None where not recorded."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        out = []
        for per in ds.PerFrameFunctionalGroupsSequence:
            content = per.get("FrameContentSequence")
            value = content[0].get("TemporalPositionIndex") if content else None
            out.append(None if value in (None, "") else str(value))
        return out
    value = ds.get("TemporalPositionIdentifier")
    return [None if value in (None, "") else str(value)]


def phase_count(headers: Headers) -> int:
    """How many temporal positions the frames of one series hold (1 without any recorded)."""
    return max(1, len({p for _, ds in headers for p in frame_phases(ds) if p is not None}))


def frames_by_phase(headers: Headers, *, patient: str | None = None,
                    where: str | Path | None = None) -> list[list[Frame]]:
    """The frames of one series split into phases (in phase order); one list when no two frames
    share a slice position.

    Raises
    ------
    InputError
        Frames repeat slice positions but no header element splits them into phases of one
        frame per position.
    """
    frames, keys = [], []
    for path, ds in headers:
        own = frames_of(ds, path, patient=patient)
        phases = frame_phases(ds)
        for keyword in PHASE_KEYWORDS[1:]:
            if any(p is None for p in phases) and ds.get(keyword) not in (None, ""):
                phases = [str(ds.get(keyword))] * len(own)
        frames += own
        keys += phases
    if _unique_positions(frames):
        return [frames]
    groups: dict[str, list[Frame]] = {}
    for frame, key in zip(frames, keys):
        groups.setdefault(str(key), []).append(frame)
    phases = [groups[k] for k in sorted(groups, key=_sort_key)]
    if None in keys or not all(_unique_positions(g) for g in phases) \
            or len({len(g) for g in phases}) > 1:
        raise InputError("the DCE series repeats slice positions but its headers do not split it "
                         "into phases (TemporalPositionIdentifier, AcquisitionNumber, ...)",
                         patient=patient, path=where,
                         fix="export the phase you want as its own series, or pin DCE to it")
    return phases


def read_dce(headers: Headers, *, patient: str | None = None, where: str | Path | None = None,
             max_gap_slices: int = MAX_MISSING_SLICES) -> sitk.Image:
    """The ``DCE`` image of one dynamic series: its phase of highest mean signal (float32 3-D,
    LPS mm), with a note naming the phase when the series holds several."""
    phases = frames_by_phase(headers, patient=patient, where=where)
    images = [image_from_frames(p, patient=patient, where=where, max_gap_slices=max_gap_slices)
              for p in phases]
    if len(images) == 1:
        return images[0]
    means = [float(sitk.GetArrayViewFromImage(i).mean()) for i in images]
    best = int(np.argmax(means))
    return with_note(images[best], f"DCE: phase {best + 1} of {len(images)} (highest mean "
                                   "signal: peak enhancement)")


def _unique_positions(frames: Sequence[Frame]) -> bool:
    normal = slice_normal(frames[0].orientation)
    along = [round(float(np.dot(f.position, normal)), 2) for f in frames]
    return len(set(along)) == len(along)


def _sort_key(key: str) -> tuple:
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)
