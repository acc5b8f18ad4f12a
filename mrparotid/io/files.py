"""Patient folder → its series and masks as SimpleITK images (LPS world coordinates, mm).

The folder layout is the contract users follow (README, "Data layout"):

- three series, each one image file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``, ``.mhd``) or a
  folder holding the DICOM files of that one series, named (any letter case)
  ``T1``/``T1W``; ``CE-T1``/``CE_T1``/``T1C``/``T1CE``/``T1+C``; ``T2``/``T2W``; an image FILE
  may also carry the protocol name a scanner writes (``t2_tse_ax.nii``, ``t1_vibe_fs_tra_post``,
  ``T1_FS_GD``, ...), read by the role rules of DICOM descriptions
  (:func:`mrparotid.dicom.roles.role_of_name`, ``configs/dicom_roles.yaml``); an exact name above
  wins over a protocol name for the same role;
- optional series beyond the paper's, read only when a model's channels name them:
  ``T2FS``/``T2_FS``/``STIR``; ``DWI``/``DIFFUSION``/``TRACE`` (a 4-D image, one volume per
  b-value, with the b-values in ``<same name>.bval`` beside it, as dcm2niix writes; or a 3-D image
  of one b-value with a ``.bval`` holding it); ``ADC``/``ADC_MAP`` (unit detected:
  :func:`mrparotid.data.diffusion.adc_unit`); ``DCE`` (one dynamic phase);
- ``parotid.*`` (``gland.*``, ``parotid_mask.*``): nonzero = parotid gland (1/2 may mark sides);
- ``tumor.*`` (``tumour.*``, ``lesion.*``): nonzero = tumour; required to train.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrparotid.constants import PAPER_SERIES

#: The series a patient folder must hold unless told otherwise (the paper's three).
SERIES_ROLES: tuple[str, ...] = PAPER_SERIES
from mrparotid.dicom.roles import role_of_name
from mrparotid.errors import InputError, MissingSeriesError

IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")

#: Role → accepted names (upper case, without suffix).
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "T1": ("T1", "T1W"),
    "CE-T1": ("CE-T1", "CE_T1", "T1C", "T1CE", "T1+C"),
    "T2": ("T2", "T2W"),
    "T2FS": ("T2FS", "T2_FS", "T2-FS", "STIR", "T2_STIR"),
    "DWI": ("DWI", "DIFFUSION", "TRACE"),
    "ADC": ("ADC", "ADC_MAP"),
    "DCE": ("DCE", "DCE_LATE"),
    "gland": ("PAROTID", "GLAND", "PAROTID_MASK"),
    "tumour": ("TUMOR", "TUMOUR", "LESION"),
}
MASK_ROLES = ("gland", "tumour")
#: Scanner protocol names the role rules accept, shown in the missing-series message.
PROTOCOL_EXAMPLES: dict[str, tuple[str, ...]] = {
    "T1": ("t1_tse_tra", "T1W_SE"), "CE-T1": ("t1_vibe_fs_tra_post", "T1_FS_GD"),
    "T2": ("t2_tse_ax", "T2W_TSE"), "T2FS": ("t2_tse_fs_ax", "T2W_SPAIR"),
    "DWI": ("ep2d_diff_tra",), "ADC": ("ep2d_diff_tra_ADC",), "DCE": ("dyn_ax",)}
#: A file name holding one of these words is never a series by protocol name (a mask, a label).
NOT_A_SERIES = re.compile(r"(?i)(mask|seg|label|roi|contour|parotid|gland|tumou?r|lesion)")


@dataclass(frozen=True)
class PatientFiles:
    """Where one patient's inputs are. ``paths`` maps role → file or DICOM folder."""

    patient_id: str
    patient_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)

    def fingerprint(self) -> list[tuple[str, str, int, int]]:
        """(role, name, size in bytes, mtime in ns) of every input file, for cache keys."""
        rows = []
        for role in sorted(self.paths):
            path = self.paths[role]
            files = (sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir()
                     else [path, *_mhd_data_file(path), *sidecars(path)])
            for f in files:
                st = f.stat()
                rows.append((role, str(f.relative_to(self.patient_dir)), st.st_size, st.st_mtime_ns))
        return rows


def _mhd_data_file(path: Path) -> list[Path]:
    """The voxel file (``ElementDataFile``) a ``.mhd`` header points to, if it is one file."""
    if not path.name.lower().endswith(".mhd"):
        return []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ElementDataFile":
            data = path.parent / value.strip()
            return [data] if value.strip() != "LOCAL" and data.is_file() else []
    return []


def gives_role(paths, role: str) -> bool:
    """Whether located entries (role → path(s)) give ``role``: its own entry, or for the ADC a
    DWI to compute it from (:func:`mrparotid.data.diffusion.adc_from_dwi`)."""
    return role in paths or (role == "ADC" and "DWI" in paths)


def bval_path(path: Path) -> Path:
    """The ``.bval`` file beside a diffusion image (``DWI.nii.gz`` → ``DWI.bval``)."""
    stem = _strip_suffix(path.name) or path.name
    return path.with_name(stem + ".bval")


def sidecars(path: Path) -> list[Path]:
    """Files beside an image that are part of it: a diffusion image's ``.bval``."""
    bval = bval_path(path)
    return [bval] if bval.is_file() else []


def _strip_suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def role_of(path: Path) -> str | None:
    """Role (``T1``, ``CE-T1``, ``T2``, ``gland``, ``tumour``) that a file or folder name gives.

    >>> role_of(Path("t1+c.nii.gz")), role_of(Path("Tumour.nrrd")), role_of(Path("notes.txt"))
    ('CE-T1', 'tumour', None)
    >>> role_of(Path("t2_tse_ax.nii")), role_of(Path("t1_vibe_fs_tra_post.nii.gz"))
    ('T2', 'CE-T1')
    """
    return name_role(path)[0]


def name_role(path: Path) -> tuple[str | None, bool]:
    """(role, whether by an exact name of :data:`ROLE_NAMES`) of a file or folder name; a
    protocol name counts for image files only (a DICOM study's folders carry protocol names)."""
    is_dir = path.is_dir()
    stem = path.name if is_dir else _strip_suffix(path.name)
    if stem is None:
        return None, False
    key = stem.upper()
    for role, names in ROLE_NAMES.items():
        if key in names:
            # masks are files only; a folder named like a mask is not a DICOM series
            if is_dir and role in MASK_ROLES:
                return None, False
            return role, True
    if is_dir or NOT_A_SERIES.search(stem):
        return None, False
    return role_of_name(stem), False


def accepted_names(role: str) -> str:
    """The names a role's entry may have, for messages."""
    if role in MASK_ROLES:
        return "/".join(n.lower() for n in ROLE_NAMES[role]) + " (.nii/.nii.gz/.nrrd/.mha/.mhd)"
    return ("/".join(ROLE_NAMES[role]) + " (a file .nii/.nii.gz/.nrrd/.mha/.mhd or a DICOM folder), "
            f"or a scanner protocol name the {role} role rule of configs/dicom_roles.yaml "
            f"matches (a file, e.g. {' or '.join(n + '.nii.gz' for n in PROTOCOL_EXAMPLES[role])})")


#: Fix for a missing patient folder, by where the folder was named (``hint``).
MISSING_FOLDER_FIX = {"manifest": "check patient_dir in the manifest (relative to the manifest file)",
                      "folder": "check the folder path"}


def find_patient_files(patient_dir: Path, patient_id: str | None = None, *,
                       require_tumour: bool = False, series: tuple[str, ...] = SERIES_ROLES,
                       hint: str = "manifest", require_gland: bool = True) -> PatientFiles:
    """Find the series and masks in ``patient_dir`` by name.

    ``series`` lists the series that must be present (T1, the reference grid, always is).
    ``hint`` says where the folder was named: ``"manifest"`` (a manifest's patient_dir) or
    ``"folder"`` (a path on the command line); it picks the fix of a missing-folder error.
    ``require_gland=False`` accepts a folder without a gland mask (series only, for the segmenter).

    Raises
    ------
    InputError
        Folder missing or empty, a series or (``require_gland``) the gland mask missing, two
        entries for one role, or (``require_tumour``) the tumour mask missing.
    """
    patient_dir = Path(patient_dir)
    pid = patient_id or patient_dir.name
    if not patient_dir.is_dir():
        raise InputError("patient folder not found", patient=pid, path=patient_dir,
                         fix=MISSING_FOLDER_FIX[hint])
    entries = sorted(patient_dir.iterdir())
    if not entries:
        raise InputError("patient folder is empty", patient=pid, path=patient_dir,
                         fix="put T1, CE-T1, T2 and parotid/tumour masks in it (see README)")
    exact: dict[str, list[Path]] = {}
    by_protocol: dict[str, list[Path]] = {}
    for entry in entries:
        role, is_exact = name_role(entry)
        if role is not None:
            (exact if is_exact else by_protocol).setdefault(role, []).append(entry)
    found = {**by_protocol, **exact}            # an exact name wins over protocol names
    for role, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InputError(f"{len(paths)} entries match the {role} role ({names})", patient=pid,
                             path=paths[1], fix="keep exactly one and rename or move the others")
    required = (["T1"] + [r for r in series if r != "T1"] + (["gland"] if require_gland else [])
                + (["tumour"] if require_tumour else []))
    for role in required:
        if not gives_role(found, role):
            seen = _listing(entries)
            what = "mask" if role in MASK_ROLES else "series"
            where = dict(patient=pid, path=patient_dir,
                         fix=f"name the {role} {what} {accepted_names(role)}")
            message = f"no {role} {what} found among the entries {seen}"
            if role in MASK_ROLES:
                raise InputError(message, **where)
            raise MissingSeriesError(message, role=role, **where)
    return PatientFiles(pid, patient_dir, {role: paths[0] for role, paths in found.items()})


def _listing(entries: list[Path], most: int = 12) -> str:
    """``(a.nii.gz, b/, ...)``: the names of ``entries`` (folders with a slash), at most ``most``."""
    names = [e.name + ("/" if e.is_dir() else "") for e in entries]
    more = f", ... {len(names) - most} more" if len(names) > most else ""
    return f"({', '.join(names[:most])}{more})"


def read_image(path: Path, *, patient: str | None = None,
               max_gap_slices: int | None = None, volumes: bool = False) -> sitk.Image | list[sitk.Image]:
    """Read one series or mask (file or DICOM folder) as a 3-D float32 image, LPS mm geometry.
    ``max_gap_slices``: a DICOM folder's most missing slices in a row filled in by interpolation
    (default :data:`mrparotid.dicom.geometry.MAX_MISSING_SLICES`); the image records where
    (:func:`mrparotid.dicom.series.interpolated_positions`).

    Raises
    ------
    InputError
        Unreadable/truncated file, not 3-D, non-finite voxel values, a zero or negative spacing,
        a direction matrix that is not a rotation, or a DICOM folder with a damaged file or too
        long a gap.

    ``volumes=True``: a list of 3-D volumes, one per volume of a 4-D image (a diffusion series,
    one volume per b-value), each checked as above; a 3-D image gives a list of one.
    """
    from mrparotid.dicom.geometry import MAX_MISSING_SLICES
    from mrparotid.dicom.series import interpolated_positions, mark_interpolated, read_dicom_series

    path = Path(path)
    filled: tuple[float, ...] = ()
    if path.is_dir():
        image = read_dicom_series(path, patient=patient, max_gap_slices=MAX_MISSING_SLICES
                                  if max_gap_slices is None else max_gap_slices)
        filled = interpolated_positions(image)
    else:
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            reason = _short_reason(exc)
            raise InputError(f"cannot read the image ({reason})", patient=patient, path=path,
                             fix="re-export it (the file may be truncated or not an image)") from None
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    _check_finite(image, path, patient)          # once per file, every volume of a 4-D image at once
    if volumes:
        parts = ([image[:, :, :, i] for i in range(image.GetSize()[3])]
                 if image.GetDimension() == 4 and image.GetNumberOfComponentsPerPixel() == 1 else [image])
        return [_checked(part, path, patient) for part in parts]
    return mark_interpolated(_checked(image, path, patient), filled)


def _checked(image: sitk.Image, path: Path, patient: str | None) -> sitk.Image:
    """``image`` as float32 after the per-volume checks of :func:`read_image` (3-D scalar, geometry)."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"expected a 3-D scalar volume, got {image.GetDimension()}-D with "
                         f"{image.GetNumberOfComponentsPerPixel()} component(s)", patient=patient,
                         path=path, fix="export a single 3-D volume per series")
    _check_geometry(image, path, patient)
    return sitk.Cast(image, sitk.sitkFloat32)


def _check_finite(image: sitk.Image, path: Path, patient: str | None) -> None:
    """InputError for NaN/inf voxels. ITK's NIfTI reader zero-fills a truncated file and reads NaN
    as 0, so a NIfTI file is checked as stored, with nibabel."""
    n_bad = (_nifti_non_finite(path, patient) if path.name.lower().endswith((".nii", ".nii.gz"))
             else int((~np.isfinite(sitk.GetArrayViewFromImage(image))).sum()))
    if n_bad:
        raise InputError(f"{n_bad} non-finite voxel value(s) (NaN/inf)", patient=patient, path=path,
                         fix="re-export the series; NaN/inf are not valid MR intensities")


def _check_geometry(image: sitk.Image, path: Path, patient: str | None) -> None:
    """InputError for a zero, negative or non-finite spacing (mm) or origin. ITK's NIfTI reader
    turns a zero pixdim into 1 and a negative one into its absolute value, so the NIfTI header
    is read as stored."""
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    stored = _stored_spacing(path)
    spacing = spacing if stored is None else stored
    if not (np.isfinite(spacing).all() and (spacing > 0).all()) or not np.isfinite(image.GetOrigin()).all():
        raise InputError(f"voxel spacing {tuple(float(s) for s in spacing)} mm (must be > 0) or "
                         f"origin {tuple(image.GetOrigin())} not finite", patient=patient, path=path,
                         fix="re-export the image with its true geometry")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-3):
        raise InputError(f"direction matrix {np.round(direction, 3).tolist()} is not a rotation "
                         "(columns must be orthonormal)", patient=patient, path=path,
                         fix="re-export the image with its true orientation")


def _stored_spacing(path: Path) -> np.ndarray | None:
    """Voxel spacing as written in a NIfTI-1 (pixdim[1:4]) or MetaImage (ElementSpacing) header,
    before any reader "fixes" it; None for other formats or an unreadable header."""
    import gzip
    import struct

    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            with (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")) as fh:
                head = fh.read(348)
            order = "<" if struct.unpack_from("<i", head, 0)[0] == 348 else ">"
            return np.asarray(struct.unpack_from(f"{order}3f", head, 80), dtype=float)
        if name.endswith((".mha", ".mhd")):
            with open(path, "rb") as fh:
                for line in fh.read(4096).split(b"\n"):
                    key, _, value = line.partition(b"=")
                    if key.strip() in (b"ElementSpacing", b"ElementSize"):
                        return np.asarray(value.split()[:3], dtype=float)
    except (OSError, EOFError, ValueError, struct.error):
        return None
    return None


def _nifti_non_finite(path: Path, patient: str | None) -> int:
    """Number of NaN/inf voxels in a NIfTI file, as stored; InputError if the data are cut short."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # EOFError, zlib.error, ValueError, ... from a truncated file
        raise InputError(f"cannot read the image ({_short_reason(exc)})", patient=patient, path=path,
                         fix="re-export it (the file may be truncated or not an image)") from None
    if not np.issubdtype(data.dtype, np.floating):
        return 0
    return int((~np.isfinite(data)).sum())


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "Unable to determine ImageIO reader" in text:
        return "no image reader recognises the file"
    m = re.search(r"ERROR: (?:\S+\(0x[0-9a-fA-F]+\): )?(.*)", text)
    return (m.group(1) if m else text or type(exc).__name__)[:120].strip()
