"""One DICOM series (a folder, its files, or already-read headers) → a float32 SimpleITK image.

The stages, one module each: :mod:`mrparotid.dicom.headers` reads the headers (pydicom,
``stop_before_pixels=True``) and turns each image header into its planes
(:class:`~mrparotid.dicom.headers.Frame`); :mod:`mrparotid.dicom.geometry` sorts them along the
slice normal and checks the stack; this module reads the pixels with SimpleITK/GDCM, which
applies each file's RescaleSlope/Intercept, and builds the image. What they add on top of GDCM:

- slice order from ImagePositionPatient projected on the slice normal (row × column cosines),
  never from file names or InstanceNumber; the same for the frames of an enhanced multi-frame
  file, which GDCM stacks in stored order;
- enhanced multi-frame MR (one file, many frames; per-frame geometry and rescale from the
  functional groups), also when frames are stored out of order or rescale varies per frame;
- non-image objects (Philips Raw Data Storage, RTSTRUCT, presentation states, DICOMDIR, files
  that are not DICOM) are ignored;
- a slice-spacing check: steps that vary by more than 10 % are either a dropped slice (at most
  ``max_gap_slices`` in a row, ``data.max_gap_slices``, default 1 → linear resampling onto even
  spacing with a :class:`SliceGapWarning`, and the image records the positions it filled in:
  :func:`interpolated_positions`, :func:`gap_note`) or an error naming the gap. GDCM alone would
  stretch the spacing;
- damaged header numbers (:func:`mrparotid.dicom.headers.header_numbers`), pixel data that does
  not match the header, and rescaled values that are not finite in float32 are an
  :class:`~mrparotid.errors.InputError` naming the file.

Conventions: the output image has origin = ImagePositionPatient of the first slice, direction
columns (row cosine, column cosine, slice normal) with the normal = row × column (so the matrix is
right-handed), spacing (column spacing, row spacing, slice step) in mm. ``GetArrayFromImage``
gives (z, y, x) = (slice, row, column). Oblique and non-axial series keep their true geometry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from mrparotid.dicom.geometry import (MAX_MISSING_SLICES, fill_gaps, filled_positions, series_geometry,
                                      slice_gaps, slice_normal)
from mrparotid.dicom.headers import (DAMAGED_FIX, Frame, frames_of, is_image, read_header,
                                     scan_folder)
from mrparotid.errors import InputError

__all__ = ["SliceGapWarning", "read_frames", "read_series_files", "read_series_headers",
           "image_from_frames", "read_dicom_series", "interpolated_positions", "gap_note", "mark_interpolated",
           "slice_gaps"]  # defined in mrparotid.dicom.geometry; kept importable from here


class SliceGapWarning(UserWarning):
    """A dropped slice was filled by linear interpolation between its neighbours."""


#: Image meta-data key of the slice positions (mm along the slice normal, ";"-separated) that
#: were filled in by interpolation.
INTERPOLATED_KEY = "mrparotid_interpolated_slices_mm"


def mark_interpolated(image: sitk.Image, positions_mm) -> sitk.Image:
    """Record on ``image`` the slice positions (mm along the slice normal) filled in by
    interpolation (nothing when there are none); returns ``image``."""
    positions = [float(p) for p in positions_mm]
    if positions:
        image.SetMetaData(INTERPOLATED_KEY, ";".join(f"{p:.2f}" for p in positions))
    return image


def interpolated_positions(image: sitk.Image) -> tuple[float, ...]:
    """Slice positions (mm along the slice normal) that the reader filled in by interpolation."""
    if not image.HasMetaDataKey(INTERPOLATED_KEY):
        return ()
    return tuple(float(v) for v in image.GetMetaData(INTERPOLATED_KEY).split(";") if v)


def gap_note(role: str, image: sitk.Image) -> str | None:
    """The report note of a series with interpolated slices (None without any): how many, where."""
    positions = interpolated_positions(image)
    if not positions:
        return None
    where = ", ".join(f"{p:.1f}" for p in positions)
    return (f"{role}: {len(positions)} slice(s) missing from the DICOM series were filled in by "
            f"interpolating their neighbours, at slice position(s) {where} mm (along the slice "
            "normal); findings on those slices rest on interpolated values")


def read_frames(frames: Sequence[Frame], *, patient: str | None = None) -> np.ndarray:
    """Pixel values of ``frames`` as a float32 (n, rows, columns) stack, rescale applied.

    GDCM reads each file (applying its rescale); frames of enhanced files are picked by index.
    An enhanced file whose rescale varies per frame is decoded with pydicom and rescaled per
    frame, since GDCM applies the first frame's rescale to all.

    Raises
    ------
    InputError
        A file's pixel data does not parse, does not match its header's Rows, Columns and frames
        (e.g. colour pixels), or rescales to values that are not finite in float32.
    """
    by_file: dict[Path, np.ndarray] = {}
    rescales: dict[Path, set] = {}
    varies: dict[Path, bool] = {}       # over ALL the file's frames, not only those asked for
    for f in frames:
        rescales.setdefault(f.path, set()).add(f.rescale)
        varies[f.path] = varies.get(f.path, False) or f.file_rescale_varies or len(rescales[f.path]) > 1
    out = np.empty((len(frames),) + frames[0].shape, dtype=np.float32)
    for n, f in enumerate(frames):
        if f.path not in by_file:
            by_file[f.path] = _read_file(f.path, varying=varies[f.path], patient=patient)
        pixels = by_file[f.path]
        if pixels.shape[1:] != f.shape or (f.index or 0) >= len(pixels):
            raise InputError(f"the pixel data (array of shape {pixels.shape}) does not match the "
                             f"header ({f.shape[0]} x {f.shape[1]} grey values per frame: Rows, "
                             "Columns, SamplesPerPixel, PhotometricInterpretation, NumberOfFrames)",
                             patient=patient, path=f.path, fix=DAMAGED_FIX)
        with np.errstate(over="ignore", invalid="ignore"):
            if varies[f.path]:  # stored values: apply this frame's rescale
                out[n] = pixels[f.index] * f.rescale[0] + f.rescale[1]
            else:
                out[n] = pixels[f.index or 0]
        if not np.isfinite(out[n]).all():
            raise InputError("the rescaled pixel values are not finite in float32 "
                             "(RescaleSlope/RescaleIntercept out of range)", patient=patient,
                             path=f.path, fix=DAMAGED_FIX)
    return out


def _read_file(path: Path, *, varying: bool, patient: str | None) -> np.ndarray:
    try:
        if varying:
            arr = pydicom.dcmread(path).pixel_array
        else:
            reader = sitk.ImageFileReader()
            reader.SetImageIO("GDCMImageIO")
            reader.SetFileName(str(path))
            arr = sitk.GetArrayFromImage(reader.Execute())
    except Exception as exc:  # noqa: BLE001 - GDCM raises RuntimeError, pydicom various
        raise InputError(f"cannot read the pixel data ({_first_line(exc)})", patient=patient,
                         path=path,
                         fix="re-export the series (the file may be truncated)") from None
    arr = np.asarray(arr)
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    return arr[None] if arr.ndim == 2 else arr


def read_series_files(files: Sequence[Path], *, patient: str | None = None,
                      where: str | Path | None = None,
                      max_gap_slices: int = MAX_MISSING_SLICES) -> sitk.Image:
    """Read the image files of one series (any order, any names) as a float32 3-D image.

    Parameters
    ----------
    files : sequence of Path
        DICOM files of one series; non-image objects among them are ignored.
    patient : str, optional
        Patient id, used only in messages.
    where : str or Path, optional
        Folder named in messages and warnings (default: the first file's folder).
    max_gap_slices : int
        Most missing slices in a row that are filled in by interpolation (``data.max_gap_slices``).

    Returns
    -------
    SimpleITK.Image
        float32, rescale applied, geometry in LPS mm (see the module docstring).

    Raises
    ------
    InputError
        No image files, several series, inconsistent or uneven slices, a gap of more than
        ``max_gap_slices`` slices, unreadable pixels or a damaged DICOM file.

    Warns
    -----
    SliceGapWarning
        Dropped slices were filled in by linear interpolation (the message names the gap in mm;
        :func:`interpolated_positions` of the image gives the positions).
    """
    files = [Path(f) for f in files]
    headers = [(p, ds) for p in files for ds in [read_header(p, patient=patient)] if ds is not None]
    return read_series_headers(headers, patient=patient,
                               where=where if where is not None or not files else files[0].parent,
                               max_gap_slices=max_gap_slices)


def read_series_headers(headers: Sequence[tuple[Path, pydicom.Dataset]], *,
                        patient: str | None = None, where: str | Path | None = None,
                        max_gap_slices: int = MAX_MISSING_SLICES) -> sitk.Image:
    """As :func:`read_series_files`, from already-read (path, header) pairs."""
    headers = [(p, ds) for p, ds in headers if is_image(ds)]
    if not headers:
        raise InputError("no readable DICOM image files", patient=patient, path=where,
                         fix="put the series' DICOM files there, or export it as NIfTI")
    uids = {str(ds.SeriesInstanceUID) for _, ds in headers}
    if len(uids) > 1:
        raise InputError(f"folder holds {len(uids)} DICOM series, expected one", patient=patient,
                         path=where, fix="keep one series per folder (run 'mrparotid inspect' "
                                         "to see them)")
    try:
        frames = [fr for p, ds in headers for fr in frames_of(ds, p, patient=patient)]
    except ValueError as exc:
        raise InputError(f"not a volume: {exc}", patient=patient, path=where,
                         fix="export the MR series itself, not a screenshot or derived object") \
            from None
    return image_from_frames(frames, patient=patient, where=where, max_gap_slices=max_gap_slices)


def image_from_frames(frames: Sequence[Frame], *, patient: str | None = None,
                      where: str | Path | None = None, max_gap_slices: int = MAX_MISSING_SLICES,
                      combine: Callable[[np.ndarray], np.ndarray] | None = None) -> sitk.Image:
    """The float32 3-D image of ``frames`` (one stack; see :func:`read_series_files`).

    ``combine``: frames that share a slice position (diffusion directions of one b-value) are
    read as a (k, rows, columns) stack and ``combine`` makes one (rows, columns) slice of them;
    every position must hold the same number k of frames. Without it such frames are an error.

    Raises
    ------
    InputError
        Bad slice geometry (see :func:`mrparotid.dicom.geometry.series_geometry`), positions that
        hold different numbers of frames, unreadable pixels.
    """
    groups = _by_position(frames) if combine is not None else [[f] for f in frames]
    if len({len(g) for g in groups}) > 1:
        raise InputError(f"slice positions hold different numbers of images ({min(map(len, groups))}"
                         f" to {max(map(len, groups))}): images of the series are missing",
                         patient=patient, path=where, fix="re-export the complete series")
    geom = series_geometry([g[0] for g in groups], where=where, patient=patient,
                           max_missing=max_gap_slices)
    if len(groups[0]) == 1:
        stack = read_frames(geom.frames, patient=patient)
    else:
        group_of = {g[0]: g for g in groups}
        flat = [f for first in geom.frames for f in group_of[first]]
        pixels = read_frames(flat, patient=patient).reshape((len(geom.frames), len(groups[0]))
                                                            + geom.frames[0].shape)
        stack = np.stack([combine(k_frames) for k_frames in pixels]).astype(np.float32)
    if geom.gaps:
        for g in geom.gaps:
            warnings.warn(f"{where}: slice gap of {g.gap_mm:.1f} mm at slice position "
                          f"{g.start_mm:.1f} mm ({g.missing} missing slice(s)); resampled onto "
                          f"even {geom.step_mm:.2f} mm spacing by linear interpolation",
                          SliceGapWarning, stacklevel=3)
        stack = fill_gaps(stack, geom.positions_mm, geom.step_mm, geom.n_slices)
    image = sitk.GetImageFromArray(stack)
    image.SetOrigin(geom.origin)
    image.SetSpacing(geom.spacing)
    image.SetDirection(geom.direction.ravel().tolist())
    filled = filled_positions(geom.positions_mm, geom.step_mm, geom.n_slices) if geom.gaps else ()
    return mark_interpolated(image, filled)


def _by_position(frames: Sequence[Frame]) -> list[list[Frame]]:
    """Frames grouped by slice position (0.01 mm along the first frame's normal), in input order."""
    normal = slice_normal(frames[0].orientation)
    groups: dict[float, list[Frame]] = {}
    for f in frames:
        groups.setdefault(round(float(np.dot(f.position, normal)), 2), []).append(f)
    return list(groups.values())


def read_dicom_series(folder: Path, *, patient: str | None = None,
                      max_gap_slices: int = MAX_MISSING_SLICES) -> sitk.Image:
    """Read the one DICOM series in ``folder`` as a 3-D image.

    Parameters
    ----------
    folder : Path
        A folder holding the files of exactly one image series (sub-folders are not searched);
        non-image objects (Raw Data, RTSTRUCT, ...) and non-DICOM files beside them are ignored.
    patient : str, optional
        Patient id, used only in error messages.
    max_gap_slices : int
        Most missing slices in a row that are filled in by interpolation.

    Returns
    -------
    SimpleITK.Image
        float32 3-D image with rescale slope/intercept applied; geometry in LPS mm; slices sorted
        by ImagePositionPatient; dropped slices (at most ``max_gap_slices`` in a row) filled in
        with a warning and recorded (:func:`interpolated_positions`).

    Raises
    ------
    InputError
        No readable series, more than one series in the folder, or bad slice geometry.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("DICOM folder not found", patient=patient, path=folder,
                         fix="check the path")
    return read_series_headers(scan_folder(folder, patient=patient), patient=patient, where=folder,
                               max_gap_slices=max_gap_slices)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1][:160] if lines else type(exc).__name__
