"""The DWI series of a study → one 3-D trace image per b-value (s/mm²).

A diffusion acquisition reaches us in one of three shapes, all read here the same way: several
b-values in ONE series (classic files, or the frames of an enhanced file; split by each frame's
b-value, :mod:`mrparotid.dicom.bvalues`), ONE SERIES PER b-value (the series' frames merged), or
directional images (several images of one b at one slice position: combined by their geometric
mean, which is the trace image the scanner would have computed). Frames whose ImageType/FrameType
names a diffusion map (ADC, exponential ADC, FA) are not diffusion-weighted images and are left
out. The images of the b-values keep their own grids (they share one when acquired together).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from mrparotid.data.diffusion import with_note
from mrparotid.dicom.bvalues import (DIFFUSION_MAP_TYPES, PRIVATE_B_TAGS, STANDARD_SOURCE,
                                     frame_b_values, frame_types, series_b_values)
from mrparotid.dicom.geometry import MAX_MISSING_SLICES
from mrparotid.dicom.headers import Frame, frames_of, printable
from mrparotid.dicom.series import image_from_frames
from mrparotid.errors import InputError

Headers = Sequence[tuple[Path, pydicom.Dataset]]


def geometric_mean(images: np.ndarray) -> np.ndarray:
    """Voxel-wise geometric mean over the first axis of a (k, rows, columns) stack of magnitude
    images (the trace of k diffusion directions); a voxel that is 0 in any image is 0.

    >>> float(geometric_mean(np.array([[[2.0]], [[8.0]]]))[0, 0])
    4.0
    """
    stack = np.asarray(images, dtype=np.float64)
    positive = (stack > 0).all(axis=0)
    logs = np.log(np.where(stack > 0, stack, 1.0))
    return np.where(positive, np.exp(logs.mean(axis=0)), 0.0).astype(np.float32)


def frames_by_b(headers: Headers, *, patient: str | None = None,
                where: str | Path | None = None) -> dict[float, list[Frame]]:
    """The diffusion-weighted frames of ONE series grouped by b-value (s/mm²), diffusion-map
    frames left out.

    Raises
    ------
    InputError
        No frame has a b-value in its headers nor in the series description; names the tags read.
    """
    frames: list[Frame] = []
    b_read = []
    for path, ds in headers:
        kept = [(f, b) for f, b, kind in zip(frames_of(ds, path, patient=patient),
                                             frame_b_values(ds), frame_types(ds))
                if not set(kind) & DIFFUSION_MAP_TYPES]
        frames += [f for f, _ in kept]
        b_read += [b for _, b in kept]
    if not frames:
        raise InputError("the DWI series holds diffusion maps only (ImageType ADC/FA), no "
                         "diffusion-weighted image", patient=patient, path=where,
                         fix="export the diffusion-weighted (trace) series too")
    description = printable(headers[0][1].get("SeriesDescription", "")) if headers else ""
    b_values, _ = series_b_values(b_read, description)
    if any(b is None for b in b_values):
        tags = ", ".join([STANDARD_SOURCE] + [name for *_, name in PRIVATE_B_TAGS])
        raise InputError(f"the DWI series has no b-value in its headers ({tags}) nor in its "
                         "description", patient=patient, path=where,
                         fix="export the series with its private tags, or convert it with "
                             "dcm2niix and give DWI.nii.gz with DWI.bval")
    out: dict[float, list[Frame]] = {}
    for frame, b in zip(frames, b_values):
        out.setdefault(float(b), []).append(frame)
    return out


def read_b_images(series: Sequence[Headers], *, patient: str | None = None,
                  where: str | Path | None = None,
                  max_gap_slices: int = MAX_MISSING_SLICES) -> dict[float, sitk.Image]:
    """b-value (s/mm²) → float32 3-D trace image of the DWI series ``series`` (one or several
    series, each a list of (path, header)); directional images combined by
    :func:`geometric_mean`, with a note on the image (:func:`mrparotid.data.diffusion.notes_of`).

    Raises
    ------
    InputError
        Two series hold the same b-value, a series without b-values (:func:`frames_by_b`), or
        bad slice geometry of one b-value's images.
    """
    merged: dict[float, list[Frame]] = {}
    for headers in series:
        for b, frames in frames_by_b(headers, patient=patient, where=where).items():
            if b in merged:
                raise InputError(f"two DWI series hold b = {b:g} s/mm²", patient=patient,
                                 path=where, fix="pin the DWI role to one series in a roles YAML "
                                                 "(--roles FILE; numbers from 'mrparotid inspect')")
            merged[b] = frames
    images = {}
    for b in sorted(merged):
        image = image_from_frames(merged[b], patient=patient, where=where,
                                  max_gap_slices=max_gap_slices, combine=geometric_mean)
        n_slices = image.GetSize()[2]
        per_position = len(merged[b]) // max(1, len({f.position for f in merged[b]}))
        if per_position > 1 and len(merged[b]) > n_slices:
            with_note(image, f"DWI b={b:g} s/mm²: {per_position} images per slice (diffusion "
                             "directions) combined by their geometric mean (the trace)")
        images[b] = image
    return images
