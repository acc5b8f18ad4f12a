"""RTSTRUCT contours ↔ label masks on the grid of the series they were drawn on.

Reading: each CLOSED_PLANAR contour's points (LPS mm) are mapped to continuous voxel indices of
the referenced series; the contour goes on the nearest slice, which must lie within half a slice
step of every point; ``skimage.draw.polygon`` fills it in (row, column) and contours of one ROI on
one slice combine by XOR, so inner contours cut holes (the usual RTSTRUCT convention).

Writing (:func:`build_rtstruct`, :func:`write_rtstruct`): per slice,
``skimage.measure.find_contours`` at level 0.5 traces each mask's boundary halfway between inside
and outside pixel centres; the points become LPS mm, each contour referencing its image (and
frame, for enhanced files).

Mask conventions (see ``configs/dicom_roles.yaml``, ``rois``): gland label 1 = right parotid,
2 = left parotid; tumour 0/1. Arrays are (z, y, x) as from ``sitk.GetArrayFromImage``.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrparotid.dicom.geometry import SeriesGeometry
from mrparotid.dicom.headers import RTSTRUCT_SOP_CLASS
from mrparotid.errors import InputError

#: Gland labels in the written mask.
GLAND_RIGHT, GLAND_LEFT = 1, 2
_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (by convention)


def roi_contours(ds: pydicom.Dataset, *, patient: str | None = None,
                 path: str | Path | None = None) -> dict[str, list[np.ndarray]]:
    """ROI name → its CLOSED_PLANAR contours, each an (n, 3) array of LPS points in mm.

    Contours of fewer than three points (empty ones included) enclose nothing and are left out.

    Raises
    ------
    InputError
        ContourData that is not a list of finite (x, y, z) triplets.
    """
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    out: dict[str, list[np.ndarray]] = {}
    for roi in ds.get("ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber), f"ROI {roi.ReferencedROINumber}")
        for contour in roi.get("ContourSequence", []):
            if contour.get("ContourGeometricType", "CLOSED_PLANAR") != "CLOSED_PLANAR":
                continue
            try:
                points = np.asarray(contour.get("ContourData") or [], dtype=float).reshape(-1, 3)
            except (ValueError, TypeError):
                points = np.full((1, 3), np.nan)
            if not np.isfinite(points).all():
                raise InputError(f"ROI {name!r}: a contour's ContourData is not a list of (x, y, z) "
                                 "points in mm", patient=patient, path=path,
                                 fix="re-export the structure set")
            if len(points) >= 3:
                out.setdefault(name, []).append(points)
    return out


def referenced_series_uids(ds: pydicom.Dataset) -> list[str]:
    """SeriesInstanceUIDs named in ReferencedFrameOfReferenceSequence (in order, no repeats)."""
    uids: list[str] = []
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uid = str(series.get("SeriesInstanceUID", ""))
                if uid and uid not in uids:
                    uids.append(uid)
    return uids


def referenced_sop_uids(ds: pydicom.Dataset) -> set[str]:
    """SOPInstanceUIDs of the images the contours (or the referenced series) name."""
    uids = set()
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uids |= _sops(series)
    for roi in ds.get("ROIContourSequence", []):
        for contour in roi.get("ContourSequence", []):
            uids |= _sops(contour)
    return uids


def _sops(item: pydicom.Dataset) -> set[str]:
    return {str(i.ReferencedSOPInstanceUID) for i in item.get("ContourImageSequence", [])}


def frame_of_reference_uids(ds: pydicom.Dataset) -> set[str]:
    """FrameOfReferenceUIDs the structure set refers to."""
    uids = {str(f.FrameOfReferenceUID) for f in ds.get("ReferencedFrameOfReferenceSequence", [])
            if "FrameOfReferenceUID" in f}
    uids |= {str(r.ReferencedFrameOfReferenceUID) for r in ds.get("StructureSetROISequence", [])
             if "ReferencedFrameOfReferenceUID" in r}
    return uids


def lps_to_index(points: np.ndarray, reference: sitk.Image) -> np.ndarray:
    """(n, 3) LPS points in mm → (n, 3) continuous voxel indices (x, y, z) of ``reference``."""
    direction = np.asarray(reference.GetDirection(), dtype=float).reshape(3, 3)
    scaled = direction * np.asarray(reference.GetSpacing(), dtype=float)
    return np.linalg.solve(scaled, (np.asarray(points) - np.asarray(reference.GetOrigin())).T).T


def index_to_lps(index_xyz: np.ndarray, reference: sitk.Image) -> np.ndarray:
    """(n, 3) continuous voxel indices (x, y, z) → (n, 3) LPS points in mm."""
    direction = np.asarray(reference.GetDirection(), dtype=float).reshape(3, 3)
    scaled = direction * np.asarray(reference.GetSpacing(), dtype=float)
    return np.asarray(reference.GetOrigin()) + np.asarray(index_xyz, dtype=float) @ scaled.T


def rasterise(contours: Sequence[np.ndarray], reference: sitk.Image, *, name: str = "ROI",
              patient: str | None = None, path: str | Path | None = None) -> np.ndarray:
    """Fill closed planar contours (LPS mm) into a boolean (z, y, x) mask on ``reference``'s grid.

    Raises
    ------
    InputError
        A contour with a point more than half a slice step from its nearest slice (not drawn on
        this series' planes, or outside its slices).
    """
    from skimage.draw import polygon

    nx, ny, nz = reference.GetSize()
    mask = np.zeros((nz, ny, nx), dtype=bool)
    for points in contours:
        idx = lps_to_index(points, reference)
        k = int(round(float(np.median(idx[:, 2]))))
        off = np.abs(idx[:, 2] - k).max()
        if off > 0.5 + 1e-3 or not 0 <= k < nz:
            step = reference.GetSpacing()[2]
            raise InputError(f"ROI {name!r}: a contour lies {off * step:.1f} mm from the nearest "
                             f"slice plane of the referenced series (slice {k} of {nz})",
                             patient=patient, path=path,
                             fix="export the contours on the series they were drawn on")
        rr, cc = polygon(idx[:, 1], idx[:, 0], shape=(ny, nx))
        plane = np.zeros((ny, nx), dtype=bool)
        plane[rr, cc] = True
        mask[k] ^= plane
    return mask


def match_roi(name: str, rules: Mapping[str, Sequence[str]]) -> str | None:
    """The first rule key (``tumour``, ``gland_right``, ...) with a pattern found in ``name``."""
    for key, patterns in rules.items():
        if any(re.search(p, name) for p in patterns):
            return key
    return None


def masks_from_rtstruct(ds: pydicom.Dataset, reference: sitk.Image,
                        rules: Mapping[str, Sequence[str]], *, patient: str | None = None,
                        path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Gland (uint8: 1 right, 2 left) and tumour (uint8 0/1) masks, (z, y, x) on ``reference``.

    Only roles with a matching, non-empty ROI are returned. ROIs matching no rule are ignored.
    """
    by_key: dict[str, np.ndarray] = {}
    for name, contours in roi_contours(ds, patient=patient, path=path).items():
        key = match_roi(name, rules)
        if key is None:
            continue
        mask = rasterise(contours, reference, name=name, patient=patient, path=path)
        by_key[key] = by_key[key] | mask if key in by_key else mask
    out: dict[str, np.ndarray] = {}
    sided = [k for k in ("gland_right", "gland_left") if by_key.get(k) is not None]
    if sided:
        gland = np.zeros(reference.GetSize()[::-1], dtype=np.uint8)
        if "gland_right" in by_key:
            gland[by_key["gland_right"]] = GLAND_RIGHT
        if "gland_left" in by_key:
            gland[by_key["gland_left"]] = GLAND_LEFT
        if "gland" in by_key:
            warnings.warn(f"{path}: unsided gland ROI ignored beside sided gland ROIs",
                          UserWarning, stacklevel=2)
        out["gland"] = gland
    elif "gland" in by_key:
        out["gland"] = by_key["gland"].astype(np.uint8)
    if "tumour" in by_key:
        out["tumour"] = by_key["tumour"].astype(np.uint8)
    return {k: v for k, v in out.items() if v.any()}


def mask_image(mask: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A (z, y, x) uint8 array as an image with ``reference``'s geometry."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    image.CopyInformation(reference)
    return image


def mask_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed boundary contours of a 2-D boolean mask as (n, 2) (row, col) arrays, no repeat."""
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask2d, dtype=float), 1)
    return [c[:-1] - 1 for c in find_contours(padded, 0.5) if len(c) > 3]


def build_rtstruct(rois: Mapping[str, np.ndarray], reference: sitk.Image, geometry: SeriesGeometry,
                   header: pydicom.Dataset, *, label: str = "mrparotid") -> pydicom.Dataset:
    """An RTSTRUCT dataset for boolean (z, y, x) masks on the grid of a series.

    Parameters
    ----------
    rois : mapping
        ROI name (e.g. ``Parotid_R``, ``Parotid_L``, ``GTV``) → boolean (z, y, x) mask.
    reference : SimpleITK.Image
        The series as read by :func:`mrparotid.dicom.series.read_series_files` (its grid).
    geometry : SeriesGeometry
        That series' sorted frames (:func:`mrparotid.dicom.geometry.series_geometry`), for image
        references.
    header : pydicom.Dataset
        One image header of the series: study, frame of reference and patient module are copied
        from it (so the structure set attaches to that patient and study in a PACS).
    """
    now = datetime.datetime.now()
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
               "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ds, kw, header.get(kw, ""))
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 9999
    ds.SeriesDescription = label
    ds.Manufacturer = "mrparotid"
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for_uid = str(header.FrameOfReferenceUID)
    refs = _slice_refs(geometry)
    image_refs = [_image_ref(r) for r in dict.fromkeys(r for r in refs if r is not None)]
    series_ref = pydicom.Dataset()
    series_ref.SeriesInstanceUID = str(header.SeriesInstanceUID)
    series_ref.ContourImageSequence = DicomSequence(image_refs)
    study_ref = pydicom.Dataset()
    study_ref.ReferencedSOPClassUID = _STUDY_SOP_CLASS
    study_ref.ReferencedSOPInstanceUID = str(header.StudyInstanceUID)
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = pydicom.Dataset()
    frame_ref.FrameOfReferenceUID = for_uid
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_ref])
    ds.StructureSetROISequence, ds.ROIContourSequence = DicomSequence(), DicomSequence()
    ds.RTROIObservationsSequence = DicomSequence()
    for number, (name, mask) in enumerate(rois.items(), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, for_uid
        roi.ROIName, roi.ROIGenerationAlgorithm = name, "AUTOMATIC"
        ds.StructureSetROISequence.append(roi)
        item = pydicom.Dataset()
        item.ReferencedROINumber = number
        is_target = re.search(r"(?i)gtv|tum|lesion", name) is not None
        item.ROIDisplayColor = [255, 0, 0] if is_target else [0, 200, 0]
        item.ContourSequence = DicomSequence(_contours(np.asarray(mask, bool), reference, refs))
        ds.ROIContourSequence.append(item)
        obs = pydicom.Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType = "GTV" if is_target else "ORGAN"
        obs.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(obs)
    return ds


def _slice_refs(geometry: SeriesGeometry) -> list[tuple[str, str, int | None] | None]:
    """Per slice of the even grid: (SOP class, SOP instance, frame number) of its image, if any."""
    refs: list[tuple[str, str, int | None] | None] = []
    positions = np.asarray(geometry.positions_mm)
    for k in range(geometry.n_slices):
        t = positions[0] + k * geometry.step_mm
        j = int(np.argmin(np.abs(positions - t)))
        f = geometry.frames[j]
        near = abs(positions[j] - t) <= 0.1 * geometry.step_mm
        refs.append((f.sop_class_uid, f.sop_instance_uid, None if f.index is None else f.index + 1)
                    if near else None)
    return refs


def _image_ref(ref: tuple[str, str, int | None]) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ref[0], ref[1]
    if ref[2] is not None:
        item.ReferencedFrameNumber = ref[2]
    return item


def _contours(mask: np.ndarray, reference: sitk.Image, refs: list) -> list[pydicom.Dataset]:
    items = []
    for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        for rc in mask_contours(mask[k]):
            xyz = np.stack([rc[:, 1], rc[:, 0], np.full(len(rc), float(k))], axis=1)
            lps = index_to_lps(xyz, reference)
            c = pydicom.Dataset()
            if refs[k] is not None:
                c.ContourImageSequence = DicomSequence([_image_ref(refs[k])])
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(lps)
            c.ContourData = [f"{v:.4f}"[:16] for v in lps.ravel()]
            items.append(c)
    return items


def write_rtstruct(rois: Mapping[str, np.ndarray], series_files: Sequence[Path], out_path: Path,
                   *, label: str = "mrparotid") -> Path:
    """Write boolean (z, y, x) masks on the grid of a DICOM series as an RTSTRUCT file.

    The masks must be on the grid that :func:`mrparotid.dicom.series.read_series_files` gives for
    ``series_files`` (same size and geometry). Returns ``out_path``.
    """
    from mrparotid.dicom.series import read_series_files
    from mrparotid.dicom.geometry import series_geometry
    from mrparotid.dicom.headers import frames_of, is_image, read_header

    reference = read_series_files(series_files)
    headers = [(Path(p), ds) for p in series_files for ds in [read_header(p)]
               if ds is not None and is_image(ds)]
    frames = [fr for p, ds in headers for fr in frames_of(ds, p)]
    geometry = series_geometry(frames)
    for name, mask in rois.items():
        if np.asarray(mask).shape != reference.GetSize()[::-1]:
            raise ValueError(f"ROI {name!r}: mask shape {np.asarray(mask).shape} is not the "
                             f"series grid {reference.GetSize()[::-1]} (z, y, x)")
    ds = build_rtstruct(rois, reference, geometry, headers[0][1], label=label)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _save(ds, out_path)
    return out_path


def _save(ds: pydicom.Dataset, path: Path) -> None:
    """Save as a DICOM Part-10 file (preamble + file meta) with pydicom 3 or 2.4, atomically."""
    from mrparotid.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        try:
            ds.save_as(tmp, enforce_file_format=True)
        except TypeError:  # pydicom < 3
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.save_as(tmp, write_like_original=False)
