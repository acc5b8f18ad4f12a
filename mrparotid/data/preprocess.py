"""One patient: folder → study on the T1 grid → labelled, cropped slices (:class:`PatientSlices`).

:func:`prepare_patient` is the one preparation used by the crop cache (training, ``prepare``,
``evaluate``) and by ``diagnose``: given the same masks, both give byte-identical crops.
Volumes are indexed (z, y, x) on the reference grid; sides are ``"L"`` (LPS +x) and ``"R"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrparotid.constants import PAPER_SERIES, QUANTITATIVE_SERIES
from mrparotid.data.crops import (ADC_RANGE, PLANES, crop_box, extract_crops, normalise_percentiles,
                                  normalise_range, plane_series, planes_of, to_uint8)
from mrparotid.data.grid import Study
from mrparotid.data.labels import label_side_slices
from mrparotid.data.sides import side_regions
from mrparotid.errors import InputError, MissingSeriesError
from mrparotid.io.files import PatientFiles, find_patient_files, gives_role
from mrparotid.io.manifest import PatientCase

TUMOUR_FIX = "contour the tumour (tumour.nii.gz, nonzero = tumour) or use the patient only for diagnosis"
PROCEDURE_FIX = ("add tumour.nii.gz, pass --segmenter SEG (a run of 'mrparotid segment fit'), "
                 "or use --all-slices (every gland slice, a screening view)")


@dataclass(frozen=True)
class PatientSlices:
    """All crops of one patient. ``crops`` is uint8 (n, len(planes), size, size) in ``planes``
    order (:data:`PLANES` for the paper's three series)."""

    patient_id: str
    crops: np.ndarray
    labels: np.ndarray          # int64 (n,), index into CLASSES, or UNLABELLED
    sides: np.ndarray           # str (n,), "L" or "R"
    slice_index: np.ndarray     # int64 (n,), axial index k on the reference grid
    z_mm: np.ndarray            # float64 (n,), LPS z of the slice centre in mm
    planes: tuple[str, ...] = PLANES

    def plane(self, name: str) -> np.ndarray:
        """uint8 (n, size, size): the crops' plane ``name`` (a series role, ``gland`` or ``tumour``)."""
        return self.crops[:, self.planes.index(name)]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def tumour_on_slices(self) -> np.ndarray:
        """Bool (n,): the slices whose crop holds tumour-mask pixels (what p(malignant) pools)."""
        return self.plane("tumour").any(axis=(1, 2))


@dataclass(frozen=True)
class SideSlices:
    """The slices of one side: every slice with gland or tumour (``all_index``, the set each
    series is normalised over), the chosen ones with their labels, and the crop box of the side."""

    side: str
    all_index: np.ndarray                # int64 (m,), every slice of the side's region
    slice_index: np.ndarray              # int64 (n,), the chosen ones (a subset of all_index)
    labels: np.ndarray                   # int64 (n,)
    box: tuple[int, int, int, int]       # (y0, y1, x0, x1) pixels, half-open


def select_side_slices(study: Study, diagnosis: str | None, *, margin_mm: float,
                       mode: str = "train") -> list[SideSlices]:
    """Slices per side (sides without gland or tumour are left out), each with its side's box."""
    chosen = []
    for side, region in side_regions(study).items():
        everything, all_labels = label_side_slices(region, study.tumour, diagnosis, mode="all")
        idx, labels = ((everything, all_labels) if mode == "all"
                       else label_side_slices(region, study.tumour, diagnosis, mode=mode))
        if len(everything):
            chosen.append(SideSlices(side, everything, idx, labels,
                                     crop_box(region, study.spacing, margin_mm)))
    return chosen


def patient_slices(study: Study, diagnosis: str | None, *, image_size: int = 224,
                   margin_mm: float = 10.0, percentiles: tuple[float, float] = (1.0, 99.0),
                   mode: str = "train", series: tuple[str, ...] = PAPER_SERIES,
                   adc_range: tuple[float, float] = ADC_RANGE) -> PatientSlices:
    """The slices of the slice procedure (``mode="train"``: labelled; ``"diagnose"``: the same
    slices, diagnosis and tumour optional) or every side slice (``"all"``, the screening view),
    cropped (see :mod:`mrparotid.data.labels`).

    Each series is normalised to [0, 1] by ``percentiles`` over the crops of *every* slice of
    both sides' regions (gland ∪ tumour), whatever ``mode`` keeps, so a slice gets the same bytes
    in every mode (``prepare`` and ``diagnose`` agree given the same masks). A quantitative
    series (the ADC, x 10⁻³ mm²/s) is mapped by the fixed window ``adc_range`` instead, the same in
    every patient. ``series``: the MR planes of the crops (:func:`planes_of`). A series the study
    lacks stays 0.

    Raises
    ------
    InputError
        ``mode="train"`` and the tumour mask is missing or empty; ``mode="diagnose"`` and there
        is no tumour mask at all (given or automatic).
    """
    if mode == "train" and (study.tumour is None or not study.tumour.any()):
        raise InputError("tumour mask is empty or missing; a training patient needs one",
                         patient=study.patient_id, fix=TUMOUR_FIX)
    if mode == "diagnose" and study.tumour is None:
        raise InputError("no tumour mask: the slice procedure selects the tumour slices by it",
                         patient=study.patient_id, fix=PROCEDURE_FIX)
    per_side = select_side_slices(study, diagnosis, margin_mm=margin_mm, mode=mode)
    rows = (np.concatenate([np.isin(s.all_index, s.slice_index) for s in per_side]) if per_side
            else np.zeros(0, bool))
    planes = planes_of(tuple(series))
    crops = np.zeros((len(rows), len(planes), image_size, image_size), np.uint8)
    for role in (r for r in series if r in study.series):
        if len(rows):
            raw = np.concatenate([extract_crops(study.series[role], s.all_index, s.box, image_size,
                                                is_mask=False) for s in per_side])
            unit = (normalise_range(raw, *adc_range) if role in QUANTITATIVE_SERIES
                    else normalise_percentiles(raw, *percentiles))
            crops[:, planes.index(role)] = to_uint8(unit)
    masks = {"gland": study.gland, "tumour": study.tumour}
    start = 0
    for s in per_side:
        side_rows = slice(start, start + len(s.all_index))
        for plane, volume in masks.items():
            if volume is not None:
                crops[side_rows, planes.index(plane)] = to_uint8(extract_crops(
                    (volume > 0).astype(np.float32), s.all_index, s.box, image_size, is_mask=True))
        start += len(s.all_index)
    slice_index = (np.concatenate([s.slice_index for s in per_side]) if per_side
                   else np.zeros(0, np.int64))
    return PatientSlices(
        patient_id=study.patient_id,
        crops=crops[rows],
        labels=np.concatenate([s.labels for s in per_side]) if per_side else np.zeros(0, np.int64),
        sides=np.array([s.side for s in per_side for _ in s.slice_index], dtype="<U1"),
        slice_index=slice_index,
        z_mm=study.slice_z_mm()[slice_index] if len(slice_index) else np.zeros(0),
        planes=planes,
    )


def patient_files(case: PatientCase, *, require_tumour: bool, series: tuple[str, ...] = PAPER_SERIES,
                  hint: str = "manifest", require_gland: bool = True) -> PatientFiles:
    """Where a patient's inputs are, without reading them: files by role in the named layout,
    or the whole folder as one ``"study"`` entry when it holds a DICOM study export. ``hint``:
    ``"manifest"`` or ``"folder"`` (given on the command line), for the missing-folder fix.
    ``require_gland=False``: a named-layout folder may lack the gland mask (series only)."""
    from mrparotid.dicom import study as dicom_study

    if case.patient_dir.is_dir() and dicom_study.is_study_folder(case.patient_dir, case.patient_id):
        return PatientFiles(case.patient_id, case.patient_dir, {"study": case.patient_dir})
    return find_patient_files(case.patient_dir, case.patient_id, require_tumour=require_tumour,
                              series=series, hint=hint, require_gland=require_gland)


def read_study_images(files: PatientFiles, *, require_tumour: bool,
                      roles_file: str | Path | None = None, series: tuple[str, ...] = PAPER_SERIES,
                      require_gland: bool = True, max_gap_slices: int | None = None,
                      read_series: tuple[str, ...] = PAPER_SERIES) -> dict | None:
    """Images by role of a DICOM study folder; None for the named layout (read by the grid).
    ``series``: the roles that must be found (T1 always; others no series matches are left out,
    as in a named folder); ``read_series``: the roles read where found (others, e.g. a second
    STIR, are never read nor a reason to stop); ``require_gland=False``: no gland contours needed."""
    if "study" not in files.paths:
        return None
    from mrparotid.dicom import study as dicom_study
    from mrparotid.dicom.geometry import MAX_MISSING_SLICES

    return dicom_study.load_study(files.patient_dir, files.patient_id, require_tumour=require_tumour,
                                  roles_file=Path(roles_file) if roles_file else None,
                                  series=series, require_gland=require_gland,
                                  max_gap_slices=MAX_MISSING_SLICES if max_gap_slices is None
                                  else int(max_gap_slices), read_series=tuple(read_series))


def load_study(case: PatientCase, *, mode: str = "train", files: PatientFiles | None = None,
               roles_file: str | Path | None = None, require_gland: bool = True,
               series: tuple[str, ...] | None = None, max_gap_slices: int | None = None,
               read_series: tuple[str, ...] = PAPER_SERIES) -> Study:
    """Read one patient onto the T1 grid; ``files`` if already located. ``require_gland=False``
    (not with ``mode="train"``) reads a folder without a gland mask: ``Study.gland`` is None.
    ``series``: the series a DICOM study must have (default: all three to train, else T1 only,
    so a series-dropout model answers without the others, as for a named folder, whose ``files``
    the caller locates with the series it needs). ``read_series``: the series read where present
    (those of ``series`` always; :func:`mrparotid.data.crops.plane_series` of the config: other
    series in the folder are never read). ``max_gap_slices``: ``data.max_gap_slices``
    (default 1). ``Study.notes`` names DICOM slices filled in by interpolation.

    Raises
    ------
    InputError
        ``mode="train"`` and the tumour mask is empty; the gland mask missing while required; a
        damaged DICOM file or a DICOM gap longer than ``max_gap_slices``.
    """
    from mrparotid.data.grid import build_study

    train = mode == "train"
    require_gland = require_gland or train
    if series is None:
        series = read_series if train else ("T1",)
    read_series = tuple(dict.fromkeys((*read_series, *series)))
    if files is None:
        files = patient_files(case, require_tumour=train, require_gland=require_gland,
                              series=series if train else ("T1",))
    elif train and "study" not in files.paths and not all(gives_role(files.paths, r) for r in series):
        patient_files(case, require_tumour=True, require_gland=True, series=series)   # raises, naming it
    images = read_study_images(files, require_tumour=train, roles_file=roles_file, series=series,
                               require_gland=require_gland, max_gap_slices=max_gap_slices,
                               read_series=read_series)
    study = build_study(files, images, require_gland=require_gland, max_gap_slices=max_gap_slices,
                        series=read_series)
    unread = [r for r in series if r not in study.series]    # located, yet not readable as that role
    if unread:
        raise MissingSeriesError(f"no {unread[0]} could be read" + (
            ": no ADC map, and the DWI holds no low (b <= 100 s/mm²) b-value to compute it"
            if unread[0] == "ADC" else ""), role=unread[0], patient=case.patient_id,
            path=files.paths.get("DWI" if unread[0] == "ADC" else unread[0], case.patient_dir),
            fix="add the series (for the ADC: the ADC map or the DWI's b = 0 images)")
    if train and (study.tumour is None or not study.tumour.any()):
        raise InputError("tumour mask is empty; a training patient needs one", patient=case.patient_id,
                         path=files.paths.get("tumour", case.patient_dir), fix=TUMOUR_FIX)
    return study


def slices_of_study(study: Study, diagnosis: str | None, cfg_data: dict, *,
                    mode: str = "train") -> PatientSlices:
    """:func:`patient_slices` with the preprocessing settings of a config's ``data`` section
    (or of a checkpoint's ``preprocess`` record: ``image_size``, ``margin_mm``, ``percentiles``)."""
    return patient_slices(study, diagnosis if mode == "train" or study.tumour is not None else None,
                          image_size=int(cfg_data["image_size"]), margin_mm=float(cfg_data["margin_mm"]),
                          percentiles=tuple(cfg_data["percentiles"]), mode=mode,
                          series=plane_series(cfg_data),
                          adc_range=tuple(cfg_data.get("adc_range") or ADC_RANGE))


def prepare_patient(case: PatientCase, cfg: dict, *, mode: str = "train",
                    files: PatientFiles | None = None) -> PatientSlices:
    """Read, put on one grid and crop one patient (no caching); ``files`` if already located."""
    study = load_study(case, mode=mode, files=files, roles_file=cfg["data"].get("dicom_roles"),
                       max_gap_slices=cfg["data"].get("max_gap_slices"),
                       read_series=plane_series(cfg["data"]))
    return slices_of_study(study, case.diagnosis, cfg["data"], mode=mode)
