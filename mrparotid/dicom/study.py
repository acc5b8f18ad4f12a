"""A folder holding a whole DICOM study (any depth) → its series by role and gland/tumour masks.

:func:`is_study_folder` tells such a folder from one in the named layout of :mod:`mrparotid.io.files`.
:func:`load_study` reads every header once (:mod:`mrparotid.dicom.headers`), finds the series and
their roles (:mod:`mrparotid.dicom.discovery`, rules from :mod:`mrparotid.dicom.roles`), reads the
chosen series (:mod:`mrparotid.dicom.series`; a DCE series' peak phase, :mod:`mrparotid.dicom.phases`;
the DWI series' images by b-value, :mod:`mrparotid.dicom.dwi`, which become the ``DWI`` and ``ADC``
channels through :func:`mrparotid.data.diffusion.diffusion_images`: an ADC map given, else computed
from the low and high b) and the masks: contours from an RTSTRUCT in the folder, rasterised on the
grid of the series they reference (:mod:`mrparotid.dicom.rtstruct`), or gland/tumour NIfTI files
named as in :mod:`mrparotid.io.files` beside the DICOM files. :func:`read_study` also returns the
DWI images of every b-value (``mrparotid convert`` writes them as ``DWI.nii.gz`` + ``DWI.bval``).

No patient identifier from the headers is read into anything this module returns or prints:
series are named by number, description, geometry and role only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from mrparotid.constants import PAPER_SERIES, SERIES as SERIES_ROLES
from mrparotid.dicom.geometry import MAX_MISSING_SLICES
from mrparotid.dicom.series import read_series_headers
from mrparotid.dicom.headers import is_image, is_rtstruct, printable, read_header, scan_folder
from mrparotid.errors import InputError, MissingSeriesError
from mrparotid.io.files import MASK_ROLES, read_image, role_of
from mrparotid.dicom.discovery import discover_headers, select_series
from mrparotid.dicom.roles import RolesConfig, load_roles
from mrparotid.dicom.types import SeriesInfo

__all__ = ["is_study_folder", "load_study", "read_study"]


def is_study_folder(patient_dir: Path, patient: str | None = None) -> bool:
    """True when ``patient_dir`` holds DICOM files (any depth) and no named series entry.

    Raises
    ------
    InputError
        A damaged DICOM file met on the way (:func:`mrparotid.dicom.headers.read_header`).
    """
    patient_dir = Path(patient_dir)
    if not patient_dir.is_dir():
        return False
    if any(role_of(entry) in SERIES_ROLES for entry in patient_dir.iterdir()):
        return False
    return any(p.is_file() and read_header(p, patient=patient) is not None
               for p in sorted(patient_dir.rglob("*")))


def load_study(patient_dir: Path, patient_id: str, *, roles_file: Path | None = None,
               require_tumour: bool = False, series: Sequence[str] = PAPER_SERIES,
               require_gland: bool = True, max_gap_slices: int = MAX_MISSING_SLICES,
               read_series: Sequence[str] = SERIES_ROLES) -> dict[str, sitk.Image]:
    """Read a study folder: its series by role and the masks from its RTSTRUCT.

    ``series``: the roles that must be found (T1, the reference grid, always is); a role outside
    it that no series matches is left out, as a NIfTI folder may lack it (a series-dropout model
    answers without it). ``read_series``: the roles read where present (default: every role);
    series of other roles are never read nor checked for ambiguity. ``require_gland=False``: a
    study without gland contours (the segmenter then draws them). ``max_gap_slices``: most
    missing slices in a row filled in by interpolation.

    Returns
    -------
    dict
        ``T1`` and those of ``CE-T1``, ``T2``, ``T2FS``, ``DCE`` (its peak phase), ``DWI`` (the
        high-b trace image) and ``ADC`` (x 10⁻³ mm²/s: the map given, else computed from DWI)
        found (float32, LPS mm geometry; interpolated slices recorded,
        :func:`mrparotid.dicom.series.interpolated_positions`; what reading changed in the notes
        of :func:`mrparotid.data.diffusion.notes_of`), ``gland`` (uint8, 1 right / 2 left, or 1
        when the ROI has no side) and, when contoured, ``tumour`` (uint8 0/1); each mask on the
        grid of the series its RTSTRUCT references.

    Raises
    ------
    InputError
        No DICOM series, ambiguous roles, no gland contours (``require_gland``), (``require_tumour``)
        no tumour contours, or unreadable series/contours or damaged files. The message names
        patient and folder. :class:`~mrparotid.errors.MissingSeriesError` when a role of
        ``series`` has no series.
    """
    return read_study(patient_dir, patient_id, roles_file=roles_file,
                      require_tumour=require_tumour, series=series, require_gland=require_gland,
                      max_gap_slices=max_gap_slices, read_series=read_series)[0]


def read_study(patient_dir: Path, patient_id: str, *, roles_file: Path | None = None,
               require_tumour: bool = False, series: Sequence[str] = PAPER_SERIES,
               require_gland: bool = True, max_gap_slices: int = MAX_MISSING_SLICES,
               read_series: Sequence[str] = SERIES_ROLES,
               ) -> tuple[dict[str, sitk.Image], dict[float, sitk.Image]]:
    """:func:`load_study`'s images, and the DWI trace images by b-value (s/mm²; empty without
    a DWI series, or when neither DWI nor ADC is read)."""
    patient_dir = Path(patient_dir)
    where = {"patient": patient_id, "path": patient_dir}
    if not patient_dir.is_dir():
        raise InputError("patient folder not found", **where,
                         fix="check patient_dir in the manifest (relative to the manifest file)")
    roles = load_roles(roles_file)
    headers = scan_folder(patient_dir, recursive=True, patient=patient_id)
    if not any(is_image(ds) for _, ds in headers):
        raise InputError("no DICOM image files found (at any depth)", **where,
                         fix="put the study's DICOM export in the folder, "
                             "or name T1/CE-T1/T2 files")
    infos = discover_headers(headers, roles)
    wanted = tuple(dict.fromkeys(("T1", *series, *read_series)))
    # the DWI is read for its channel, or for an ADC the study does not give as a map
    need_dwi = "DWI" in wanted or ("ADC" in wanted and not any(i.role == "ADC" for i in infos))
    groups = select_series(infos, roles, patient=patient_id, patient_dir=patient_dir,
                           required=("T1", *(r for r in series if r != "ADC")),
                           among=tuple(r for r in wanted if r != "DWI") + (("DWI",) if need_dwi else ()))
    chosen = {role: group[0] for role, group in groups.items()}
    reader = _SeriesReader(headers, infos, patient_id, patient_dir, max_gap_slices)
    images: dict[str, sitk.Image] = {role: reader.image(i.series_uid) for role, i in chosen.items()
                                     if role not in ("DWI", "ADC", "DCE")}
    if "DCE" in chosen:
        images["DCE"] = reader.dce(chosen["DCE"].series_uid)
    b_images = reader.b_images([i.series_uid for i in groups.get("DWI", ())])
    images.update(_diffusion(b_images, reader.image(chosen["ADC"].series_uid)
                             if "ADC" in chosen else None, patient_id, patient_dir))
    if "ADC" in series and "ADC" not in images:
        raise MissingSeriesError("no series matches the ADC role and no DWI series holds a low "
                                 "(b <= 100) and a high (b >= 500 s/mm²) b-value to compute it",
                                 role="ADC", **where,
                                 fix="export the ADC map or the b0 images of the DWI series, or "
                                     "pin `ADC: {series_number: N}` in a roles YAML (--roles FILE)")
    images = {role: images[role] for role in SERIES_ROLES if role in images and role in wanted}
    masks = _rtstruct_masks(headers, infos, chosen, roles, reader, patient_id)
    for role, image in _named_masks(patient_dir, patient_id).items():
        if role in masks:
            raise InputError(f"{role} given twice (RTSTRUCT and a {role} file)", **where,
                             fix="keep one of them")
        masks[role] = image
    if "gland" not in masks and require_gland:
        names = sorted({n for _, ds in headers if is_rtstruct(ds) for n in _roi_names(ds)})
        found = f" (RTSTRUCT ROIs: {', '.join(names)})" if names else " (no RTSTRUCT in the folder)"
        raise InputError(f"no parotid gland contours found{found}", **where,
                         fix="export an RTSTRUCT with ROIs named like Parotid_R/Parotid_L, add "
                             "`rois:` patterns to a roles YAML (--roles FILE), "
                             "or add parotid.nii.gz")
    if require_tumour and "tumour" not in masks:
        raise InputError("no tumour contours found", **where,
                         fix="contour the tumour (ROI named GTV*/Tumor*/Tumour*/Lesion*) or add "
                             "tumour.nii.gz")
    return {**images, **masks}, b_images


def _diffusion(b_images: dict[float, sitk.Image], adc: sitk.Image | None, patient: str,
               patient_dir: Path) -> dict[str, sitk.Image]:
    from mrparotid.data.diffusion import diffusion_images

    return diffusion_images(b_images, adc, patient=patient, path=patient_dir)


class _SeriesReader:
    """Reads series of one folder by SeriesInstanceUID, once each."""

    def __init__(self, headers, infos: Sequence[SeriesInfo], patient: str, patient_dir: Path,
                 max_gap_slices: int = MAX_MISSING_SLICES):
        self.header = dict(headers)
        self.infos = {i.series_uid: i for i in infos}
        self.patient, self.patient_dir = patient, patient_dir
        self.max_gap_slices = max_gap_slices
        self.cache: dict[str, sitk.Image] = {}

    def image(self, uid: str) -> sitk.Image:
        if uid not in self.cache:
            files = self.infos[uid].files
            self.cache[uid] = read_series_headers([(f, self.header[f]) for f in files],
                                                  patient=self.patient, where=self._folder(files),
                                                  max_gap_slices=self.max_gap_slices)
        return self.cache[uid]

    def dce(self, uid: str) -> sitk.Image:
        from mrparotid.dicom.phases import read_dce

        files = self.infos[uid].files
        return read_dce([(f, self.header[f]) for f in files], patient=self.patient,
                        where=self._folder(files), max_gap_slices=self.max_gap_slices)

    def b_images(self, uids: Sequence[str]) -> dict[float, sitk.Image]:
        from mrparotid.dicom.dwi import read_b_images

        if not uids:
            return {}
        series = [[(f, self.header[f]) for f in self.infos[u].files] for u in uids]
        return read_b_images(series, patient=self.patient,
                             where=self._folder([f for u in uids for f in self.infos[u].files]),
                             max_gap_slices=self.max_gap_slices)

    @staticmethod
    def _folder(files: Sequence[Path]) -> Path:
        return Path(os.path.commonpath([str(f.parent) for f in files]))

    def sop_uids(self, uid: str) -> set[str]:
        return {str(self.header[f].get("SOPInstanceUID", "")) for f in self.infos[uid].files}

    def frame_of_reference(self, uid: str) -> str:
        return str(self.header[self.infos[uid].files[0]].get("FrameOfReferenceUID", ""))


def _rtstruct_masks(headers, infos, chosen, roles: RolesConfig, reader: _SeriesReader,
                    patient: str) -> dict[str, sitk.Image]:
    from mrparotid.dicom.rtstruct import (frame_of_reference_uids, mask_image, masks_from_rtstruct,
                                    referenced_series_uids, referenced_sop_uids)

    masks: dict[str, sitk.Image] = {}
    for path, ds in headers:
        if not is_rtstruct(ds):
            continue
        candidates = [u for u in referenced_series_uids(ds) if u in reader.infos]
        if not candidates:
            sops = referenced_sop_uids(ds)
            candidates = [i.series_uid for i in infos if sops & reader.sop_uids(i.series_uid)]
        if not candidates:  # same frame of reference: role series first
            fors = frame_of_reference_uids(ds)
            order = [i.series_uid for i in chosen.values()] + [i.series_uid for i in infos]
            candidates = [u for u in dict.fromkeys(order) if reader.frame_of_reference(u) in fors
                          and reader.infos[u].orientation != "-"
                          and reader.infos[u].n_slices >= roles.min_slices]
        if not candidates:
            raise InputError("the RTSTRUCT references no image series in this folder",
                             patient=patient, path=path,
                             fix="export the series the contours were drawn on "
                                 "into the same folder")
        first_error = None
        for uid in candidates:
            reference = reader.image(uid)
            try:
                found = masks_from_rtstruct(ds, reference, roles.rois, patient=patient, path=path)
                break
            except InputError as exc:
                first_error = first_error or exc
        else:
            raise first_error
        for role, arr in found.items():
            if role in masks:
                raise InputError(f"two RTSTRUCTs hold {role} contours", patient=patient, path=path,
                                 fix="keep one structure set per patient in the folder")
            masks[role] = mask_image(arr, reference)
    return masks


def _roi_names(ds: pydicom.Dataset) -> list[str]:
    return [printable(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])]


def _named_masks(patient_dir: Path, patient: str) -> dict[str, sitk.Image]:
    """gland/tumour mask files named as in :mod:`mrparotid.io.files` at the top of the folder."""
    out = {}
    for entry in sorted(patient_dir.iterdir()):
        role = role_of(entry)
        if role in MASK_ROLES and entry.is_file():
            image = read_image(entry, patient=patient)
            arr = np.rint(sitk.GetArrayFromImage(image)).clip(0, 255).astype(np.uint8)
            out[role] = sitk.GetImageFromArray(arr)
            out[role].CopyInformation(image)
    return out
