"""Series and masks onto one grid: the T1 grid, reoriented to the closest axial (LPS) layout.

The reference grid is the T1 grid with its axes permuted/flipped (no interpolation) so that array
index order is (z, y, x) with x towards patient Left, y towards Posterior and z towards Superior
(DICOM LPS). Axial slices of the reference are ``volume[k]``. Every other series is resampled onto
it by physical position (linear), masks by nearest neighbour; voxels outside a series' field of
view become 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrparotid.constants import PAPER_SERIES, SERIES
from mrparotid.errors import InputError
from mrparotid.io.files import PatientFiles, read_image


@dataclass(frozen=True)
class Study:
    """One patient's volumes on the reference grid.

    Arrays are indexed (z, y, x). ``spacing`` is (x, y, z) in mm, ``origin`` the LPS position of
    voxel (0, 0, 0) in mm and ``direction`` the 3x3 matrix whose columns are the x, y, z axes in
    LPS, all as in SimpleITK.
    """

    patient_id: str
    series: dict[str, np.ndarray]
    gland: np.ndarray | None        # None only when read with require_gland=False (series only)
    tumour: np.ndarray | None
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    #: What the reading changed that a report must show (e.g. DICOM slices filled in by
    #: interpolation: :func:`mrparotid.dicom.series.gap_note`).
    notes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.series["T1"].shape if self.gland is None else self.gland.shape

    def index_to_lps(self, zyx: np.ndarray) -> np.ndarray:
        """(n, 3) voxel indices in (z, y, x) order → (n, 3) LPS positions in mm."""
        xyz = np.asarray(zyx, dtype=float)[:, ::-1]
        return np.asarray(self.origin) + (xyz * np.asarray(self.spacing)) @ self.direction.T

    def slice_z_mm(self) -> np.ndarray:
        """LPS z (mm, towards Superior) of the centre of each axial slice, shape (n_z,)."""
        nz, ny, nx = self.shape
        centres = np.stack([np.arange(nz), np.full(nz, (ny - 1) / 2), np.full(nz, (nx - 1) / 2)], 1)
        return self.index_to_lps(centres)[:, 2]


def reference_grid(t1: sitk.Image) -> sitk.Image:
    """The T1 image with axes permuted/flipped to the closest LPS orientation (values untouched)."""
    return sitk.DICOMOrient(t1, "LPS")


def resample_onto(image: sitk.Image, reference: sitk.Image, *, is_mask: bool) -> sitk.Image:
    """Resample ``image`` onto ``reference``'s grid by physical position (0 outside its FOV)."""
    interp = sitk.sitkNearestNeighbor if is_mask else sitk.sitkLinear
    return sitk.Resample(image, reference, sitk.Transform(), interp, 0.0, sitk.sitkFloat32)


def coverage(image: sitk.Image, reference: sitk.Image) -> float:
    """Fraction of reference voxel centres that fall inside ``image``'s field of view."""
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(image)
    inside = sitk.Resample(ones, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                           sitk.sitkUInt8)
    return float(sitk.GetArrayViewFromImage(inside).mean())


def geometry_line(role: str, image: sitk.Image) -> str:
    """One line describing an image's grid: size, spacing (mm), origin (LPS mm), direction."""
    d = np.round(np.array(image.GetDirection()).reshape(3, 3), 3).tolist()
    sp = ", ".join(f"{s:.3g}" for s in image.GetSpacing())
    org = ", ".join(f"{o:.1f}" for o in image.GetOrigin())
    return f"{role}: size {image.GetSize()} spacing ({sp}) mm origin ({org}) direction {d}"


def read_images(files: PatientFiles, series: tuple[str, ...] = PAPER_SERIES, *,
                max_gap_slices: int | None = None) -> dict[str, sitk.Image]:
    """Read a named-layout folder's T1, the roles of ``series`` it has, and its masks. A diffusion
    series (``DWI``: 4-D, b-values in its ``.bval``) gives the ``DWI`` (high b) and, with ``ADC``
    in ``series``, the ``ADC`` channel (the given map in x 10⁻³ mm²/s, else computed from the low
    and high b): :func:`mrparotid.data.diffusion.diffusion_images`."""
    from mrparotid.data.diffusion import diffusion_images

    pid = files.patient_id
    wanted = {"T1", "gland", "tumour", *series}
    images = {role: read_image(path, patient=pid, max_gap_slices=max_gap_slices)
              for role, path in files.paths.items() if role in wanted and role != "DWI"}
    adc = images.pop("ADC", None)
    # the DWI is read for its channel, or for an ADC the folder does not give as a map
    need_dwi = "DWI" in files.paths and ("DWI" in series or ("ADC" in series and adc is None))
    by_b = b_images_of(files.paths["DWI"], pid, max_gap_slices) if need_dwi else None
    if by_b or adc is not None:
        where = files.paths["DWI"] if need_dwi else files.paths["ADC"]
        diffusion = diffusion_images(by_b, adc, patient=pid, path=where)
        images.update({r: im for r, im in diffusion.items() if r in series})
    return images


def b_images_of(path: Path, patient: str, max_gap_slices: int | None = None) -> dict[float, sitk.Image]:
    """b-value (s/mm²) → 3-D image of a DWI entry: a DICOM folder (by its headers), or a 4-D
    image whose ``.bval`` gives one b-value per volume.

    Raises
    ------
    InputError
        No ``.bval``, or not one b-value per volume.
    """
    from mrparotid.data.diffusion import read_bvals
    from mrparotid.io.files import bval_path

    if path.is_dir():
        return _dicom_b_images(path, patient, max_gap_slices)
    volumes = read_image(path, patient=patient, volumes=True)
    bval = bval_path(path)
    bvals = read_bvals(bval, patient=patient) if bval.is_file() else None
    if bvals is None or len(bvals) != len(volumes):
        raise InputError(f"DWI has {len(volumes)} volume(s) but " + (
            f"{len(bvals)} b-value(s) in {bval.name}" if bvals else f"no {bval.name} beside it"),
            patient=patient, path=path,
            fix=f"write {bval.name} with one b-value (s/mm²) per volume, as dcm2niix does")
    return dict(zip(bvals, volumes))


def _dicom_b_images(folder: Path, patient: str, max_gap_slices: int | None) -> dict:
    """b-value → image of a folder of DWI DICOM files (one series or one series per b-value),
    read by their headers (:func:`mrparotid.dicom.dwi.read_b_images`)."""
    from mrparotid.dicom.dwi import read_b_images
    from mrparotid.dicom.geometry import MAX_MISSING_SLICES
    from mrparotid.dicom.headers import is_image, scan_folder

    groups: dict[str, list] = {}
    for path, ds in scan_folder(folder, recursive=True, patient=patient):
        if is_image(ds):
            groups.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    return read_b_images(list(groups.values()), patient=patient, where=folder,
                         max_gap_slices=MAX_MISSING_SLICES if max_gap_slices is None else int(max_gap_slices))


def build_study(files: PatientFiles, images: dict[str, sitk.Image] | None = None, *,
                require_gland: bool = True, max_gap_slices: int | None = None,
                series: tuple[str, ...] = PAPER_SERIES) -> Study:
    """Read a patient's files (or take already-read ``images``) and bring all onto the T1 grid.
    With ``require_gland=False`` a patient without a gland mask gives ``Study.gland = None``.
    ``max_gap_slices``: a DICOM series' most missing slices in a row filled in by interpolation
    (``data.max_gap_slices``); ``Study.notes`` says which were, and what reading a diffusion
    series changed. ``series``: the series roles read (T1 always; others where present).

    Raises
    ------
    InputError
        A series or mask that does not overlap the T1 field of view, or an empty (or, with
        ``require_gland``, missing) gland mask; a DICOM series with too long a gap.
    """
    from mrparotid.data.diffusion import notes_of
    from mrparotid.dicom.series import gap_note

    pid = files.patient_id
    if images is None:
        images = read_images(files, series, max_gap_slices=max_gap_slices)
    images = {role: im for role, im in images.items() if role not in SERIES or role == "T1" or role in series}
    notes = tuple(n for role in SERIES if role in images for n in
                  [gap_note(role, images[role]), *notes_of(images[role])] if n)
    reference = reference_grid(images["T1"])
    series = {"T1": sitk.GetArrayFromImage(reference).astype(np.float32)}
    for role in SERIES[1:]:
        if role not in images:
            continue
        if coverage(images[role], reference) == 0.0:
            raise InputError(f"{role} does not overlap the T1 field of view "
                             f"({geometry_line(role, images[role])}; "
                             f"{geometry_line('T1', images['T1'])})", patient=pid,
                             path=_where(files, role), fix="check that both series come from the "
                             "same study and that their origins/orientations were exported")
        series[role] = sitk.GetArrayFromImage(resample_onto(images[role], reference, is_mask=False))
    masks = {}
    for role in ("gland", "tumour"):
        if role not in images:
            continue
        source_nonzero = bool(sitk.GetArrayViewFromImage(images[role]).any())
        arr = sitk.GetArrayFromImage(resample_onto(images[role], reference, is_mask=True))
        arr = np.rint(arr).clip(0, 255).astype(np.uint8)
        if source_nonzero and not arr.any():
            raise InputError(f"{role} mask does not overlap the T1 field of view", patient=pid,
                             path=_where(files, role), fix="export the mask on the grid of one "
                             "of the patient's series (same study, same frame of reference)")
        masks[role] = arr
    if "gland" not in masks and require_gland:
        raise InputError("no gland mask found", patient=pid, path=_where(files, "gland"),
                         fix="add parotid.nii.gz (nonzero = gland)")
    if "gland" in masks and not masks["gland"].any():
        raise InputError("gland mask is empty", patient=pid, path=_where(files, "gland"),
                         fix="contour the parotid glands (nonzero = gland)")
    direction = np.array(reference.GetDirection(), dtype=float).reshape(3, 3)
    return Study(pid, series, masks.get("gland"), masks.get("tumour"), tuple(reference.GetSpacing()),
                 tuple(reference.GetOrigin()), direction, notes)


def _where(files: PatientFiles, role: str) -> Path:
    return files.paths.get(role, files.patient_dir)
