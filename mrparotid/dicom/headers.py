"""DICOM files → headers (pydicom, no pixel data) → :class:`Frame` image planes with geometry.

Headers are read with ``stop_before_pixels=True``. Files that are not DICOM (by suffix, or
without the ``DICM`` preamble and unreadable or without a SOP class and series) give no header.
A file WITH the preamble is DICOM: when it does not parse, lacks its SOP Class UID, or (an image)
ends before its pixel data, that is an :class:`~mrparotid.errors.InputError` naming the file,
never a file quietly left out (a left-out slice would be filled in by interpolation).
:func:`is_image` tells image
objects from non-image ones (Philips Raw Data Storage, MR spectroscopy, RTSTRUCT, presentation
states, DICOMDIR). :func:`frames_of` turns one image header into its planes: one for a classic
file, one per frame for an enhanced multi-frame file, with per-frame position, orientation,
pixel spacing and rescale from the functional groups (per-frame group first, then the shared one).
Every number is checked (:func:`header_numbers`: count, finite, whole, positive; the orientation
cosines unit and perpendicular): a damaged value is an InputError naming the file.
The frames go on to :mod:`mrparotid.dicom.geometry` (sorting, spacing checks) and their pixels
are read by :mod:`mrparotid.dicom.series`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pydicom

from mrparotid.errors import InputError

#: Suffixes of files that are never DICOM (skipped without reading).
NOT_DICOM_SUFFIXES = (".nii", ".gz", ".nrrd", ".mha", ".mhd", ".json", ".txt", ".csv", ".yaml",
                      ".yml", ".xml", ".pdf", ".jpg", ".jpeg", ".png", ".html", ".zip", ".py")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: SOP classes that carry Rows/Columns but no image planes (Raw Data, MR Spectroscopy).
NON_IMAGE_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.4.2"})
#: Media Storage Directory (DICOMDIR): a DICOM file with no SOP Class UID in its data set.
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Largest deviation of the ImageOrientationPatient cosines from unit length and from
#: perpendicular (exports round them to a few decimals; nibabel allows 5e-5 on R R^T).
ORIENTATION_TOLERANCE = 1e-3
DAMAGED_FIX = "re-export the series (the file is damaged or cut short), or move the file out of the folder"


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
    #: The file's frames do not all share one rescale (an enhanced file): its pixels are then read
    #: stored and rescaled per frame, whichever of its frames a caller reads (one b-value, one phase).
    file_rescale_varies: bool = False


def read_header(path: Path, *, patient: str | None = None) -> pydicom.Dataset | None:
    """DICOM header of ``path`` (no pixel data); None when it is not a DICOM file.

    Raises
    ------
    InputError
        The file has the DICOM preamble (``DICM`` at byte 128) but its header does not parse, has
        no SOP Class UID, or (an image) ends before its pixel data; ``patient`` is named in it.
    """
    path = Path(path)
    if path.name.startswith(".") or path.name.lower().endswith(NOT_DICOM_SUFFIXES):
        return None
    if has_preamble(path):
        return _read_dicom_file(path, patient)
    try:  # no preamble: keep it only if it names a series
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        return ds if "SOPClassUID" in ds and "SeriesInstanceUID" in ds else None
    except Exception:  # noqa: BLE001 - any file may sit in a folder; without a preamble it is not DICOM
        return None


def has_preamble(path: Path) -> bool:
    """True when ``path`` holds ``DICM`` at byte 128 (the DICOM Part 10 file preamble)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _read_dicom_file(path: Path, patient: str | None) -> pydicom.Dataset:
    """The header of a file with the DICOM preamble, checked to be whole (see :func:`read_header`)."""
    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            at_end = fh.tell() >= os.fstat(fh.fileno()).st_size
        meta_sop = str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "") or "")
        sop = str(ds.get("SOPClassUID", "") or "")
    except Exception as exc:  # noqa: BLE001 - pydicom raises OSError, struct.error, ValueError, ...
        raise _damaged(path, patient, f"the DICOM header does not parse ({_reason(exc)})") from None
    if meta_sop == DICOMDIR_SOP_CLASS:
        return ds
    if not sop:
        raise _damaged(path, patient, "the DICOM header has no SOP Class UID (cut short or damaged)")
    if at_end and "PixelData" not in ds and "Image Storage" in pydicom.uid.UID(sop).name:
        raise _damaged(path, patient, "the DICOM image file ends before its pixel data (cut short)")
    return ds


def _damaged(path: Path, patient: str | None, what: str) -> InputError:
    return InputError(what, patient=patient, path=path, fix=DAMAGED_FIX)


def _reason(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1][:120] if lines else type(exc).__name__)


def scan_folder(folder: Path, *, recursive: bool = False,
                patient: str | None = None) -> list[tuple[Path, pydicom.Dataset]]:
    """(path, header) of every DICOM file in ``folder``, sorted by path (any depth if recursive).

    Raises
    ------
    InputError
        A damaged DICOM file (see :func:`read_header`); ``patient`` is named in it.
    """
    folder = Path(folder)
    paths = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in sorted(p for p in paths if p.is_file()):
        ds = read_header(path, patient=patient)
        if ds is not None:
            found.append((path, ds))
    return found


def is_image(ds: pydicom.Dataset) -> bool:
    """True for image objects (not Raw Data, spectroscopy, RTSTRUCT, SR, DICOMDIR, ...)."""
    return ("Rows" in ds and "Columns" in ds and "SeriesInstanceUID" in ds
            and str(ds.get("SOPClassUID", "")) not in NON_IMAGE_SOP_CLASSES)


def is_rtstruct(ds: pydicom.Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) == RTSTRUCT_SOP_CLASS or ds.get("Modality") == "RTSTRUCT"


def frames_of(ds: pydicom.Dataset, path: Path, *, patient: str | None = None) -> list[Frame]:
    """The image planes of one header (one per frame for enhanced multi-frame files).

    Empty or zero SamplesPerPixel and RescaleSlope read as 1 and an empty RescaleIntercept as 0
    (as GDCM reads them); every other number is checked by :func:`header_numbers`.

    Raises
    ------
    ValueError
        No plane geometry (ImagePositionPatient/ImageOrientationPatient/PixelSpacing), or colour.
    InputError
        A header value of the wrong type, count or range (see :func:`header_numbers`), or
        orientation cosines that are not unit and perpendicular; names ``path`` and ``patient``.
    """
    where = {"path": Path(path), "patient": patient}
    if (header_numbers(ds, "SamplesPerPixel", 1, default=(1,), integer=True, **where)[0] or 1) != 1:
        raise ValueError("colour (RGB) pixels")
    shape = tuple(header_numbers(ds, k, 1, integer=True, positive=True, **where)[0]
                  for k in ("Rows", "Columns"))
    sop = (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")))
    if "PerFrameFunctionalGroupsSequence" not in ds:
        geo = _plane_geometry(ds, ds, ds, ds, where)
        return [Frame(Path(path), None, *geo[:3], shape, geo[3], *sop)]
    shared = ds.get("SharedFunctionalGroupsSequence", [pydicom.Dataset()])[0]
    frames = []
    for i, per in enumerate(ds.PerFrameFunctionalGroupsSequence):
        groups = [_group(per, shared, name) for name in ("PlanePositionSequence",
                  "PlaneOrientationSequence", "PixelMeasuresSequence",
                  "PixelValueTransformationSequence")]
        geo = _plane_geometry(*groups, where)
        frames.append(Frame(Path(path), i, *geo[:3], shape, geo[3], *sop))
    if len({f.rescale for f in frames}) > 1:
        frames = [replace(f, file_rescale_varies=True) for f in frames]
    return frames


def _group(per: pydicom.Dataset, shared: pydicom.Dataset, name: str) -> pydicom.Dataset:
    for source in (per, shared):
        if name in source and len(source[name].value):
            return source[name].value[0]
    return pydicom.Dataset()


def _plane_geometry(pos, ori, meas, pix, where: dict) -> tuple:
    if "ImagePositionPatient" not in pos or "ImageOrientationPatient" not in ori \
            or "PixelSpacing" not in meas:
        raise ValueError("no plane geometry (ImagePositionPatient/ImageOrientationPatient/"
                         "PixelSpacing)")
    orientation = header_numbers(ori, "ImageOrientationPatient", 6, **where)
    check_cosines(orientation, **where)
    return (header_numbers(pos, "ImagePositionPatient", 3, **where), orientation,
            header_numbers(meas, "PixelSpacing", 2, positive=True, **where),
            (header_numbers(pix, "RescaleSlope", 1, default=(1.0,), **where)[0] or 1.0,
             header_numbers(pix, "RescaleIntercept", 1, default=(0.0,), **where)[0] or 0.0))


def header_numbers(ds: pydicom.Dataset, keyword: str, count: int, *, path: Path,
                   patient: str | None = None, default: tuple | None = None,
                   integer: bool = False, positive: bool = False) -> tuple:
    """The ``count`` numbers of header element ``keyword`` of ``ds``: finite floats, or ints
    with ``integer``, each > 0 with ``positive``; ``default`` when the element is absent or empty.

    Raises
    ------
    InputError
        The element is absent or empty without a ``default``, or holds another number of values,
        or a value that is no number, not finite, not whole (``integer``) or not > 0
        (``positive``); names ``path`` and ``patient``.
    """
    try:
        value = ds.get(keyword)
    except Exception as exc:  # noqa: BLE001 - pydicom converts the stored bytes here
        raise _damaged(path, patient, f"header element {keyword} does not parse ({_reason(exc)})") \
            from None
    if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
        if default is None:
            raise _damaged(path, patient, f"header element {keyword} has no value")
        return default
    items = [value] if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) \
        else list(value)
    if len(items) != count:
        raise _damaged(path, patient, f"header element {keyword} holds {len(items)} value(s) "
                                      f"where {count} {'is' if count == 1 else 'are'} expected")
    return tuple(_number(v, keyword, path, patient, integer=integer, positive=positive)
                 for v in items)


def _number(value, keyword: str, path: Path, patient: str | None, *, integer: bool,
            positive: bool) -> float | int:
    """One header value as a checked float (int with ``integer``); see :func:`header_numbers`."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    kind = ("a number" if number is None else "a finite number" if not math.isfinite(number)
            else "a whole number" if integer and not number.is_integer()
            else "a positive number" if positive and number <= 0 else None)
    if kind:
        raise _damaged(path, patient, f"header element {keyword} holds "
                                      f"'{printable(str(value))[:40]}', not {kind}")
    return int(number) if integer else number


def check_cosines(orientation: Sequence[float], *, path: Path, patient: str | None = None) -> None:
    """Check ImageOrientationPatient (row cosine, column cosine) is two unit, perpendicular
    vectors within :data:`ORIENTATION_TOLERANCE`, or raise an InputError naming ``path``."""
    row, col = orientation[:3], orientation[3:]
    off = max(abs(math.hypot(*row) - 1), abs(math.hypot(*col) - 1),
              abs(sum(r * c for r, c in zip(row, col))))
    if not off <= ORIENTATION_TOLERANCE:
        raise _damaged(path, patient, "header element ImageOrientationPatient is not two unit, "
                                      "perpendicular direction cosines (off by "
                                      f"{off:.3g})")


def printable(value) -> str:
    """A header value as one line of printable text (control characters become spaces)."""
    return "".join(ch if ch.isprintable() else " " for ch in str(value or "")).strip()
