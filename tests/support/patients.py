"""Small hand-made patients for the data-stage tests, written with SimpleITK into ``tmp_path``.

The default patient is a 40 x 40 x 12 voxel slab (x, y, z), 2 x 2 x 3 mm, identity direction, so
array index x grows towards patient Left (LPS +x). Two box-shaped glands (x 6..13 right,
x 26..33 left, y 12..27, slices 2..9) and a tumour on slices 4..6 of one gland::

    arrays = patient_arrays(tumour_side="L")        # (z, y, x) numpy arrays by role
    write_patient(tmp_path / "patients" / "P001")   # T1/CE-T1/T2 + parotid + tumour .nii.gz
    write_cohort(tmp_path, [("P001", "warthin", {}), ("P002", "malignant", {"tumour_side": "R"})])
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrparotid.data.grid import Study
from mrparotid.dicom.writer import write_dicom_series

SHAPE = (12, 40, 40)                 # (z, y, x)
SPACING = (2.0, 2.0, 3.0)            # (x, y, z) mm
ORIGIN = (-39.0, -39.0, -16.5)       # LPS mm of voxel (0, 0, 0): the slab is centred on 0
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

GLAND_SLICES = slice(2, 10)
GLAND_Y = slice(12, 28)
GLAND_X = {"L": slice(26, 34), "R": slice(6, 14)}
TUMOUR_SLICES = (4, 7)               # half-open: slices 4, 5, 6
TUMOUR_X = {"L": slice(28, 32), "R": slice(8, 12)}
TUMOUR_Y = slice(16, 22)

# (background, gland, tumour) intensity per series: the tumour is bright on T2 and CE-T1
INTENSITY = {"T1": (100.0, 300.0, 150.0), "CE-T1": (100.0, 250.0, 400.0), "T2": (80.0, 200.0, 500.0)}
FILE_NAMES = {"T1": "T1", "CE-T1": "CE-T1", "T2": "T2", "gland": "parotid", "tumour": "tumour"}


def patient_arrays(*, tumour_side: str | None = "L", tumour_slices: tuple[int, int] = TUMOUR_SLICES,
                   bilateral: bool = False, gland_labels: bool = False) -> dict[str, np.ndarray]:
    """(z, y, x) arrays by role: three series (float32) and the gland/tumour masks (uint8).

    ``gland_labels`` marks the left gland 2 and the right gland 1 (as the phantom does).
    ``tumour_side=None`` gives an empty tumour mask.
    """
    gland = np.zeros(SHAPE, np.uint8)
    gland[GLAND_SLICES, GLAND_Y, GLAND_X["L"]] = 2 if gland_labels else 1
    gland[GLAND_SLICES, GLAND_Y, GLAND_X["R"]] = 1
    tumour = np.zeros(SHAPE, np.uint8)
    k0, k1 = tumour_slices
    sides = [] if tumour_side is None else [tumour_side]
    if bilateral:
        sides = ["L", "R"]
    for side in sides:
        tumour[k0:k1, TUMOUR_Y, TUMOUR_X[side]] = 1
    z, y, x = np.indices(SHAPE)
    ripple = (5.0 * np.sin(x / 3.0) + 3.0 * np.cos(y / 4.0) + z).astype(np.float32)
    out = {}
    for role, (bg, gl, tu) in INTENSITY.items():
        vol = np.full(SHAPE, bg, np.float32) + ripple
        vol[gland > 0] = gl + ripple[gland > 0]
        vol[tumour > 0] = tu + ripple[tumour > 0]
        out[role] = vol
    out["gland"] = gland
    out["tumour"] = tumour
    return out


def to_image(array: np.ndarray, spacing=SPACING, origin=ORIGIN, direction=IDENTITY) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(direction).ravel()))
    return image


def write_patient(patient_dir: Path, *, arrays: dict[str, np.ndarray] | None = None,
                  names: dict[str, str] | None = None, omit: tuple[str, ...] = (),
                  suffix: str = ".nii.gz", spacing=SPACING, origin=ORIGIN, direction=IDENTITY,
                  **array_options) -> Path:
    """Write one patient folder (every role as ``<name><suffix>``) and return it."""
    patient_dir = Path(patient_dir)
    patient_dir.mkdir(parents=True, exist_ok=True)
    arrays = arrays if arrays is not None else patient_arrays(**array_options)
    names = {**FILE_NAMES, **(names or {})}
    for role, array in arrays.items():
        if role in omit:
            continue
        sitk.WriteImage(to_image(array, spacing, origin, direction),
                        str(patient_dir / f"{names[role]}{suffix}"), useCompression=True)
    return patient_dir


def write_cohort(root: Path, rows: list[tuple], *, name: str = "manifest.csv",
                 comment: str | None = None) -> Path:
    """Patients under ``root/patients`` and a manifest. ``rows``: (pid, diagnosis, options[, split]);
    ``options`` go to :func:`write_patient` (``None`` writes no folder)."""
    root = Path(root)
    lines = [f"# {comment}"] if comment else []
    lines.append("patient_id,diagnosis,patient_dir,split")
    for row in rows:
        pid, diagnosis, options = row[:3]
        split = row[3] if len(row) > 3 else ""
        if options is not None:
            write_patient(root / "patients" / pid, **options)
        lines.append(f"{pid},{diagnosis},patients/{pid},{split}")
    path = root / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_study(arrays: dict[str, np.ndarray] | None = None, *, spacing=SPACING, origin=ORIGIN,
               direction=IDENTITY, patient_id: str = "P001", **array_options) -> Study:
    """A :class:`Study` straight from arrays (no files), on the default grid."""
    arrays = arrays if arrays is not None else patient_arrays(**array_options)
    return Study(patient_id, {r: arrays[r] for r in ("T1", "CE-T1", "T2") if r in arrays},
                 arrays["gland"], arrays.get("tumour"), tuple(float(s) for s in spacing),
                 tuple(float(o) for o in origin), np.asarray(direction, float).reshape(3, 3))


# --------------------------------------------------------------------------------------------
# Bad inputs: each turns a good patient folder into a bad one. Shared by the library tests
# (error class and message) and the CLI tests (exit code 2, one line).
# name -> (break the folder, expected error class name, a file name the message must carry)

def _missing_series(d: Path) -> None:
    (d / "T2.nii.gz").unlink()


def _two_files(d: Path) -> None:
    sitk.WriteImage(to_image(patient_arrays()["T1"]), str(d / "t1w.nrrd"))


def _truncated(d: Path) -> None:
    path = d / "T2.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _not_an_image(d: Path) -> None:
    (d / "T2.nii.gz").write_bytes(b"this is not an image at all\n" * 20)


def _dicom_two_series(d: Path) -> None:
    (d / "CE-T1.nii.gz").unlink()
    image = to_image(patient_arrays()["CE-T1"])
    write_dicom_series(image, d / "CE-T1", "1.2.826.0.1.3680043.10.1999.7.1", prefix="A")
    write_dicom_series(image, d / "CE-T1", "1.2.826.0.1.3680043.10.1999.7.2", prefix="B")


def _moved(role_file: str):
    def apply(d: Path) -> None:
        path = d / role_file
        image = sitk.ReadImage(str(path))
        image.SetOrigin(tuple(o + 1000.0 for o in image.GetOrigin()))   # 1 m away
        sitk.WriteImage(image, str(path), useCompression=True)
    return apply


def _emptied(role_file: str):
    def apply(d: Path) -> None:
        path = d / role_file
        image = sitk.ReadImage(str(path))
        sitk.WriteImage(image * 0, str(path), useCompression=True)
    return apply


def _nan(d: Path) -> None:
    path = d / "T2.nii.gz"
    image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image)
    array[6, 20, 20] = np.nan
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path), useCompression=True)


def _no_folder(d: Path) -> None:
    shutil.rmtree(d)


BAD_PATIENTS = {
    "missing_series": (_missing_series, "InputError", "T2"),
    "two_files_one_series": (_two_files, "InputError", "t1w.nrrd"),
    "truncated_file": (_truncated, "InputError", "T2.nii.gz"),
    "not_an_image": (_not_an_image, "InputError", "T2.nii.gz"),
    "dicom_folder_two_series": (_dicom_two_series, "InputError", "CE-T1"),
    "series_off_grid": (_moved("T2.nii.gz"), "InputError", "T2.nii.gz"),
    "mask_off_grid": (_moved("tumour.nii.gz"), "InputError", "tumour.nii.gz"),
    "empty_gland": (_emptied("parotid.nii.gz"), "InputError", "parotid.nii.gz"),
    "empty_tumour": (_emptied("tumour.nii.gz"), "InputError", "tumour.nii.gz"),
    "nan_voxels": (_nan, "InputError", "T2.nii.gz"),
    "patient_dir_missing": (_no_folder, "InputError", "P002"),
}
