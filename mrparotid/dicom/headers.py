"""DICOM files → headers (pydicom, no pixel data) → :class:`Frame` image planes with geometry.

Headers are read with ``stop_before_pixels=True``. Files that are not DICOM (by suffix, or
unreadable, or without a SOP class and series) give no header; :func:`is_image` tells image
objects from non-image ones (Philips Raw Data Storage, MR spectroscopy, RTSTRUCT, presentation
states, DICOMDIR). :func:`frames_of` turns one image header into its planes: one for a classic
file, one per frame for an enhanced multi-frame file, with per-frame position, orientation,
pixel spacing and rescale from the functional groups (per-frame group first, then the shared one).
The frames go on to :mod:`mrparotid.dicom.geometry` (sorting, spacing checks) and their pixels
are read by :mod:`mrparotid.dicom.series`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

#: Suffixes of files that are never DICOM (skipped without reading).
NOT_DICOM_SUFFIXES = (".nii", ".gz", ".nrrd", ".mha", ".mhd", ".json", ".txt", ".csv", ".yaml",
                      ".yml", ".xml", ".pdf", ".jpg", ".jpeg", ".png", ".html", ".zip", ".py")
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: SOP classes that carry Rows/Columns but no image planes (Raw Data, MR Spectroscopy).
NON_IMAGE_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.4.2"})


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


def printable(value) -> str:
    """A header value as one line of printable text (control characters become spaces)."""
    return "".join(ch if ch.isprintable() else " " for ch in str(value or "")).strip()
