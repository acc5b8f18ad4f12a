"""The source T1 DICOM series of a patient, and masks on the T1 reference grid → its frames.

A DICOM SEG references the images it was drawn on, instance by instance, so the T1 must be DICOM:
a series folder in the named layout (``T1/``) or the T1 of a study folder (chosen by the roles
rules, :mod:`mrparotid.dicom.discovery`). A T1 given as NIfTI/NRRD/MHA has no instances: refused.

Frames are sampled back from the reference grid (:mod:`mrparotid.data.grid`: the T1 grid with its
axes permuted/flipped) at each source pixel's centre (LPS mm), by nearest voxel, so no voxel
changes: (rows, columns) of frame ``f`` hold the mask values of the voxels that pixel is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from mrparotid.data.grid import Study
from mrparotid.dicom.headers import Frame, frames_of, is_image, scan_folder
from mrparotid.errors import InputError

NIFTI_FIX = ("give the T1 as its DICOM series folder (or the study folder) to write DICOM results, "
             "or leave out --dicom-out")


@dataclass(frozen=True)
class SourceSeries:
    """The T1's DICOM headers (no pixel data) and its planes, in stored frame order: one frame per
    classic file, or the frames of one enhanced multi-frame file."""

    datasets: tuple[pydicom.Dataset, ...]
    frames: tuple[Frame, ...]

    @property
    def series_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def multiframe(self) -> bool:
        return self.frames[0].index is not None


def t1_files(patient_dir: Path, patient_id: str, t1_path: Path | None, *,
             roles_file: str | Path | None = None) -> list[Path]:
    """The T1 series' files: those of ``t1_path`` (a DICOM folder of the named layout), or, with
    ``t1_path`` None (a study folder), those of the series the roles rules make the T1.

    Raises
    ------
    InputError
        The T1 is an image file (NIfTI, NRRD, MHA), or the study folder's roles are ambiguous.
    """
    if t1_path is not None:
        if not Path(t1_path).is_dir():
            raise InputError(f"the T1 is an image file ({Path(t1_path).name}), not a DICOM series: "
                             "a DICOM SEG must reference the T1's instances", patient=patient_id,
                             path=t1_path, fix=NIFTI_FIX)
        return [p for p, _ in scan_folder(Path(t1_path))]
    from mrparotid.dicom.discovery import discover_headers, select_roles
    from mrparotid.dicom.roles import load_roles

    roles = load_roles(Path(roles_file) if roles_file else None)
    infos = discover_headers(scan_folder(Path(patient_dir), recursive=True), roles)
    chosen = select_roles(infos, roles, patient=patient_id, patient_dir=patient_dir,
                          required=("T1",), among=("T1",))      # the SEG references the T1 alone
    return list(chosen["T1"].files)


def read_source(files: list[Path], *, patient: str | None = None) -> SourceSeries:
    """Headers and frames of one T1 series (non-image objects beside it are skipped).

    Raises
    ------
    InputError
        No image file, several series, or several enhanced files.
    """
    headers = [(p, pydicom.dcmread(p, stop_before_pixels=True)) for p in files]
    headers = [(p, ds) for p, ds in headers if is_image(ds)]
    where = Path(files[0]).parent if files else None
    if not headers:
        raise InputError("no DICOM image files in the T1 series", patient=patient, path=where,
                         fix=NIFTI_FIX)
    if len({str(ds.SeriesInstanceUID) for _, ds in headers}) > 1:
        raise InputError("the T1 folder holds several series", patient=patient, path=where,
                         fix="keep one series per folder (mrparotid inspect)")
    frames = [f for p, ds in headers for f in frames_of(ds, p)]
    if frames[0].index is not None and len(headers) > 1:
        raise InputError(f"the T1 is {len(headers)} enhanced multi-frame files; a SEG can "
                         "reference one", patient=patient, path=where,
                         fix="export the T1 as one enhanced file or as classic single-frame files")
    if frames[0].index is None:      # classic: keep slice order along the normal (stable output)
        normal = np.cross(frames[0].orientation[:3], frames[0].orientation[3:])
        order = np.argsort([np.dot(f.position, normal) for f in frames], kind="stable")
        headers = [headers[i] for i in order]
        frames = [frames[i] for i in order]
        return SourceSeries(shared_orientation([ds for _, ds in headers], patient), tuple(frames))
    return SourceSeries((shared_groups(headers[0][1]),), tuple(frames))


def shared_groups(ds: pydicom.Dataset) -> pydicom.Dataset:
    """An enhanced header whose pixel measures and plane orientation, when every frame has the
    same ones, also sit in the shared functional groups (where highdicom reads them; some
    vendors put them per frame only). Returns a copy when anything moves."""
    per = ds.PerFrameFunctionalGroupsSequence
    shared = ds.get("SharedFunctionalGroupsSequence", [pydicom.Dataset()])
    missing = [name for name in ("PixelMeasuresSequence", "PlaneOrientationSequence")
               if name not in shared[0] and all(name in f for f in per)
               and all(f[name].value == per[0][name].value for f in per)]
    if not missing:
        return ds
    ds = copy.deepcopy(ds)
    if "SharedFunctionalGroupsSequence" not in ds:
        ds.SharedFunctionalGroupsSequence = [pydicom.Dataset()]
    for name in missing:
        setattr(ds.SharedFunctionalGroupsSequence[0], name, copy.deepcopy(per[0][name].value))
    return ds


def shared_orientation(datasets: list[pydicom.Dataset], patient: str | None) -> tuple:
    """Classic headers whose ImageOrientationPatient differ only by rounding (< 1e-4, as some
    vendors write them) get the first one's value, which the SEG shares over its frames.

    Raises
    ------
    InputError
        The slices are not parallel.
    """
    first = np.asarray(datasets[0].ImageOrientationPatient, float)
    if all(np.allclose(np.asarray(ds.ImageOrientationPatient, float), first, atol=1e-4)
           for ds in datasets):
        if any(list(ds.ImageOrientationPatient) != list(datasets[0].ImageOrientationPatient)
               for ds in datasets):
            datasets = [copy.deepcopy(ds) for ds in datasets]
            for ds in datasets:
                ds.ImageOrientationPatient = datasets[0].ImageOrientationPatient
        return tuple(datasets)
    raise InputError("the T1 slices are not parallel (ImageOrientationPatient differs)",
                     patient=patient, fix="export the T1 as one volume (one orientation)")


def frame_indices(frame: Frame, study: Study) -> np.ndarray:
    """Int (rows, columns, 3) reference-grid voxel (z, y, x) of each pixel centre of ``frame``.

    Pixel (r, c) lies at ``position + c * dc * row_cosine + r * dr * column_cosine`` (LPS mm;
    PixelSpacing = (dr, dc)); its continuous grid index is ``(D diag(s))^-1 (p - origin)``.
    """
    rows, cols = frame.shape
    o = np.asarray(frame.orientation, float)
    dr, dc = frame.pixel_spacing
    to_index = np.linalg.inv(np.asarray(study.direction, float) @ np.diag(study.spacing))
    start = to_index @ (np.asarray(frame.position, float) - np.asarray(study.origin, float))
    step_c, step_r = to_index @ (o[:3] * dc), to_index @ (o[3:] * dr)
    xyz = (start + np.arange(rows)[:, None, None] * step_r
           + np.arange(cols)[None, :, None] * step_c)
    return np.rint(xyz[..., ::-1]).astype(np.int64)


def frames_from_grid(volume: np.ndarray, source: SourceSeries, study: Study) -> np.ndarray:
    """(n_frames, rows, columns) of ``volume`` ((z, y, x) on the reference grid) at the source
    frames' pixels, in the source's frame order; pixels outside the grid get 0."""
    out = np.zeros((len(source.frames),) + source.frames[0].shape, volume.dtype)
    shape = np.asarray(volume.shape)
    for n, frame in enumerate(source.frames):
        idx = frame_indices(frame, study)
        inside = ((idx >= 0) & (idx < shape)).all(-1)
        z, y, x = (np.where(inside, idx[..., a], 0) for a in range(3))
        out[n] = np.where(inside, volume[z, y, x], 0)
    return out


def frames_of_slices(source: SourceSeries, study: Study, slice_index: list[int]) -> dict[int, list[int]]:
    """Reference-grid axial index k → the source frames (0-based) that hold voxels of slice k (one
    frame for an axial T1; every frame crossing it for a sagittal or coronal one)."""
    wanted = set(int(k) for k in slice_index)
    found: dict[int, list[int]] = {k: [] for k in sorted(wanted)}
    for n, frame in enumerate(source.frames):
        for k in set(np.unique(frame_indices(frame, study)[..., 0]).tolist()) & wanted:
            found[k].append(n)
    return found
