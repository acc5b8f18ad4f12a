"""DICOM series → SimpleITK images (LPS world coordinates, mm), with the vendor quirks handled.

Headers are read with pydicom (``stop_before_pixels=True``); pixels with SimpleITK/GDCM, which
applies each file's RescaleSlope/Intercept. What this module adds on top of GDCM:

- slice order from ImagePositionPatient projected on the slice normal (row × column cosines),
  never from file names or InstanceNumber; the same for the frames of an enhanced multi-frame
  file, which GDCM stacks in stored order;
- enhanced multi-frame MR (one file, many frames; per-frame geometry and rescale from the
  functional groups), also when frames are stored out of order or rescale varies per frame;
- non-image objects (Philips Raw Data Storage, RTSTRUCT, presentation states, DICOMDIR, files
  that are not DICOM) are ignored;
- a slice-spacing check: steps that vary by more than 10 % are either a dropped slice (at most
  :data:`MAX_MISSING_SLICES` missing → linear resampling onto even spacing with a
  :class:`SliceGapWarning`) or an error naming the gap. GDCM alone would stretch the spacing.

Conventions: the output image has origin = ImagePositionPatient of the first slice, direction
columns (row cosine, column cosine, slice normal) with the normal = row × column (so the matrix is
right-handed), spacing (column spacing, row spacing, slice step) in mm. ``GetArrayFromImage``
gives (z, y, x) = (slice, row, column). Oblique and non-axial series keep their true geometry.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from mrparotid.errors import InputError

#: Relative deviation of a slice step from the median step that counts as uneven spacing.
MAX_SPACING_DEVIATION = 0.10
#: Largest number of consecutive missing slices that is filled by interpolation (else an error).
MAX_MISSING_SLICES = 2
#: Suffixes of files that are never DICOM (skipped without reading).
NOT_DICOM_SUFFIXES = (".nii", ".gz", ".nrrd", ".mha", ".mhd", ".json", ".txt", ".csv", ".yaml",
                      ".yml", ".xml", ".pdf", ".jpg", ".jpeg", ".png", ".html", ".zip", ".py")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: SOP classes that carry Rows/Columns but no image planes (Raw Data, MR Spectroscopy).
NON_IMAGE_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.4.2"})


class SliceGapWarning(UserWarning):
    """A dropped slice was filled by linear interpolation between its neighbours."""


@dataclass(frozen=True)
class Frame:
    """One image plane: a classic single-frame file, or one frame of an enhanced file.

    ``position`` is ImagePositionPatient (LPS mm, centre of the first pixel); ``orientation`` is
    ImageOrientationPatient (row cosine then column cosine); ``pixel_spacing`` is DICOM
    PixelSpacing (row spacing, column spacing) in mm; ``shape`` is (rows, columns);
    ``rescale`` is (slope, intercept); ``index`` is the 0-based frame number in an enhanced file
    (None for a classic file).
    """

    path: Path
    index: int | None
    position: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, float]
    shape: tuple[int, int]
    rescale: tuple[float, float]
    sop_class_uid: str
    sop_instance_uid: str


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


def read_header(path: Path) -> pydicom.Dataset | None:
    """DICOM header of ``path`` (no pixel data); None when it is not a readable DICOM file."""
    path = Path(path)
    if path.name.startswith(".") or path.name.lower().endswith(NOT_DICOM_SUFFIXES):
        return None
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        pass  # no 'DICM' preamble: try once more, keeping it only if it names a series
    except Exception:  # noqa: BLE001 - truncated or corrupt files are skipped like non-DICOM ones
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        return ds if "SOPClassUID" in ds and "SeriesInstanceUID" in ds else None
    except Exception:  # noqa: BLE001
        return None


def scan_folder(folder: Path, *, recursive: bool = False) -> list[tuple[Path, pydicom.Dataset]]:
    """(path, header) of every DICOM file in ``folder``, sorted by path (any depth if recursive)."""
    folder = Path(folder)
    paths = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in sorted(p for p in paths if p.is_file()):
        ds = read_header(path)
        if ds is not None:
            found.append((path, ds))
    return found


def is_image(ds: pydicom.Dataset) -> bool:
    """True for image objects (not Raw Data, spectroscopy, RTSTRUCT, SR, DICOMDIR, ...)."""
    return ("Rows" in ds and "Columns" in ds and "SeriesInstanceUID" in ds
            and str(ds.get("SOPClassUID", "")) not in NON_IMAGE_SOP_CLASSES)


def is_rtstruct(ds: pydicom.Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) == RTSTRUCT_SOP_CLASS or ds.get("Modality") == "RTSTRUCT"


def frames_of(ds: pydicom.Dataset, path: Path) -> list[Frame]:
    """The image planes of one header (one per frame for enhanced multi-frame files).

    Raises
    ------
    ValueError
        No plane geometry (ImagePositionPatient/ImageOrientationPatient/PixelSpacing), or colour.
    """
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise ValueError("colour (RGB) pixels")
    shape = (int(ds.Rows), int(ds.Columns))
    sop = (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")))
    if "PerFrameFunctionalGroupsSequence" not in ds:
        geo = _plane_geometry(ds, ds, ds, ds)
        return [Frame(Path(path), None, *geo[:3], shape, geo[3], *sop)]
    shared = ds.get("SharedFunctionalGroupsSequence", [pydicom.Dataset()])[0]
    frames = []
    for i, per in enumerate(ds.PerFrameFunctionalGroupsSequence):
        groups = [_group(per, shared, name) for name in ("PlanePositionSequence",
                  "PlaneOrientationSequence", "PixelMeasuresSequence",
                  "PixelValueTransformationSequence")]
        geo = _plane_geometry(*groups)
        frames.append(Frame(Path(path), i, *geo[:3], shape, geo[3], *sop))
    return frames


def _group(per: pydicom.Dataset, shared: pydicom.Dataset, name: str) -> pydicom.Dataset:
    for source in (per, shared):
        if name in source and len(source[name].value):
            return source[name].value[0]
    return pydicom.Dataset()


def _plane_geometry(pos, ori, meas, pix) -> tuple:
    if "ImagePositionPatient" not in pos or "ImageOrientationPatient" not in ori \
            or "PixelSpacing" not in meas:
        raise ValueError("no plane geometry (ImagePositionPatient/ImageOrientationPatient/"
                         "PixelSpacing)")
    return (tuple(float(v) for v in pos.ImagePositionPatient),
            tuple(float(v) for v in ori.ImageOrientationPatient),
            tuple(float(v) for v in meas.PixelSpacing),
            (float(pix.get("RescaleSlope", 1) or 1), float(pix.get("RescaleIntercept", 0) or 0)))


def _cosines(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    iop = np.asarray(orientation, dtype=float)
    return iop[:3], iop[3:]


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit slice normal (row cosine × column cosine) of an ImageOrientationPatient, LPS."""
    row, col = _cosines(orientation)
    n = np.cross(row, col)
    return n / np.linalg.norm(n)


def slice_gaps(positions_mm: Sequence[float], *, where: str | Path | None = None,
               patient: str | None = None) -> tuple[float, tuple[Gap, ...]]:
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
        that is no whole multiple of the median step, or more than :data:`MAX_MISSING_SLICES`
        missing slices in one gap.
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
        if m - 1 > MAX_MISSING_SLICES:
            raise InputError(f"slice gap of {steps[i]:.1f} mm at slice position {p[i]:.1f} mm "
                             f"({m - 1} missing slices of {median:.2f} mm; at most "
                             f"{MAX_MISSING_SLICES} are filled in)", **where_kw,
                             fix="re-export the complete series (slices were dropped)")
        gaps.append(Gap(int(i), float(p[i]), float(steps[i]), m - 1))
    n_steps = len(steps) + sum(g.missing for g in gaps)
    return float((p[-1] - p[0]) / n_steps), tuple(gaps)


def series_geometry(frames: Sequence[Frame], *, where: str | Path | None = None,
                    patient: str | None = None) -> SeriesGeometry:
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
    step, gaps = slice_gaps(along[order], where=where, patient=patient)
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


def read_frames(frames: Sequence[Frame], *, patient: str | None = None) -> np.ndarray:
    """Pixel values of ``frames`` as a float32 (n, rows, columns) stack, rescale applied.

    GDCM reads each file (applying its rescale); frames of enhanced files are picked by index.
    An enhanced file whose rescale varies per frame is decoded with pydicom and rescaled per
    frame, since GDCM applies the first frame's rescale to all.
    """
    by_file: dict[Path, np.ndarray] = {}
    per_file: dict[Path, set] = {}
    for f in frames:
        per_file.setdefault(f.path, set()).add(f.rescale)
    out = np.empty((len(frames),) + frames[0].shape, dtype=np.float32)
    for n, f in enumerate(frames):
        if f.path not in by_file:
            by_file[f.path] = _read_file(f.path, varying=len(per_file[f.path]) > 1,
                                         patient=patient)
        pixels = by_file[f.path]
        if len(per_file[f.path]) > 1:  # stored values: apply this frame's rescale
            out[n] = pixels[f.index] * f.rescale[0] + f.rescale[1]
        else:
            out[n] = pixels[f.index or 0]
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
                      where: str | Path | None = None) -> sitk.Image:
    """Read the image files of one series (any order, any names) as a float32 3-D image.

    Parameters
    ----------
    files : sequence of Path
        DICOM files of one series; non-image objects among them are ignored.
    patient : str, optional
        Patient id, used only in messages.
    where : str or Path, optional
        Folder named in messages and warnings (default: the first file's folder).

    Returns
    -------
    SimpleITK.Image
        float32, rescale applied, geometry in LPS mm (see the module docstring).

    Raises
    ------
    InputError
        No image files, several series, inconsistent or uneven slices, unreadable pixels.

    Warns
    -----
    SliceGapWarning
        Dropped slices were filled in by linear interpolation (the message names the gap in mm).
    """
    files = [Path(f) for f in files]
    headers = [(p, ds) for p in files for ds in [read_header(p)] if ds is not None]
    return read_series_headers(headers, patient=patient,
                               where=where if where is not None or not files else files[0].parent)


def read_series_headers(headers: Sequence[tuple[Path, pydicom.Dataset]], *,
                        patient: str | None = None, where: str | Path | None = None) -> sitk.Image:
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
        frames = [fr for p, ds in headers for fr in frames_of(ds, p)]
    except ValueError as exc:
        raise InputError(f"not a volume: {exc}", patient=patient, path=where,
                         fix="export the MR series itself, not a screenshot or derived object") \
            from None
    geom = series_geometry(frames, where=where, patient=patient)
    stack = read_frames(geom.frames, patient=patient)
    if geom.gaps:
        for g in geom.gaps:
            warnings.warn(f"{where}: slice gap of {g.gap_mm:.1f} mm at slice position "
                          f"{g.start_mm:.1f} mm ({g.missing} missing slice(s)); resampled onto "
                          f"even {geom.step_mm:.2f} mm spacing by linear interpolation",
                          SliceGapWarning, stacklevel=2)
        stack = fill_gaps(stack, geom.positions_mm, geom.step_mm, geom.n_slices)
    image = sitk.GetImageFromArray(stack)
    image.SetOrigin(geom.origin)
    image.SetSpacing(geom.spacing)
    image.SetDirection(geom.direction.ravel().tolist())
    return image


def read_dicom_series(folder: Path, *, patient: str | None = None) -> sitk.Image:
    """Read the one DICOM series in ``folder`` as a 3-D image.

    Parameters
    ----------
    folder : Path
        A folder holding the files of exactly one image series (sub-folders are not searched);
        non-image objects (Raw Data, RTSTRUCT, ...) and non-DICOM files beside them are ignored.
    patient : str, optional
        Patient id, used only in error messages.

    Returns
    -------
    SimpleITK.Image
        float32 3-D image with rescale slope/intercept applied; geometry in LPS mm; slices sorted
        by ImagePositionPatient; dropped slices (at most two in a row) filled in with a warning.

    Raises
    ------
    InputError
        No readable series, more than one series in the folder, or bad slice geometry.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("DICOM folder not found", patient=patient, path=folder,
                         fix="check the path")
    return read_series_headers(scan_folder(folder), patient=patient, where=folder)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1][:160] if lines else type(exc).__name__
