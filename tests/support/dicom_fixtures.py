"""Real DICOM fixtures (../shared/fixtures/real_dicom) for the DICOM tests, decompressed once.

The fixtures hold public QA headers with placeholder patient fields: never print header values.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid
from shared_dir import SHARED_DIR

FIXTURE_ROOT = SHARED_DIR / "fixtures" / "real_dicom"
SERIES = ("ge_mprage_3d_ax_oblique", "siemens_t1_fl2d_sag_classic",
          "siemens_xa30_t1_tfl3d_sag_enhanced", "philips_t1_ffe_ax_classic",
          "philips_t1_ffe_ax_enhanced")
IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName")

_CACHE: dict[str, dict[str, Path]] = {}


def require_fixtures() -> Path:
    """The fixture root, or skip the test when ../shared is absent."""
    if not FIXTURE_ROOT.is_dir():
        pytest.skip(f"real DICOM fixtures not found at {FIXTURE_ROOT} "
                    "(needs the ../shared checkout beside the repo)")
    return FIXTURE_ROOT


def materialize_all(tmp_path_factory) -> dict[str, Path]:
    """Decompress every fixture series once per session → {series name: folder of .dcm files}."""
    root = require_fixtures()
    if "series" not in _CACHE:
        base = tmp_path_factory.mktemp("real_dicom")
        out = {}
        for name in SERIES:
            folder = base / name
            folder.mkdir()
            for f in sorted((root / name / "dicom").iterdir()):
                with gzip.open(f, "rb") as fi, open(folder / f.name[:-3], "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            out[name] = folder
        _CACHE["series"] = out
    return _CACHE["series"]


def reference_nifti(name: str) -> Path:
    return next((require_fixtures() / name / "reference").glob("*.nii.gz"))


def image_files(folder: Path) -> list[Path]:
    """The image files of a fixture folder (without Philips' Raw Data object)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and "_Raw" not in p.name)


def copy_series(files: Sequence[Path], dst: Path, *, description: str | None = None,
                series_number: int | None = None, contrast_agent: str | None = None,
                image_type: Sequence[str] | None = None, new_uids: bool = True,
                names: Sequence[str] | None = None) -> list[Path]:
    """Copy DICOM files into ``dst`` as a new series (new Series/SOP Instance UIDs), optionally
    with a new description/protocol name, series number, ContrastBolusAgent or ImageType."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    out = []
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        if new_uids:
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if description is not None:
            ds.SeriesDescription = description
            ds.ProtocolName = description
        if series_number is not None:
            ds.SeriesNumber = series_number
        if contrast_agent is not None:
            ds.ContrastBolusAgent = contrast_agent
        if image_type is not None:
            ds.ImageType = list(image_type)
        path = dst / (names[n] if names is not None else f"IM{n:04d}")
        ds.save_as(path)
        out.append(path)
    return out


def identifying_values(files: Sequence[Path]) -> set[bytes]:
    """Non-empty PatientName/ID/BirthDate/InstitutionName values of the files (not printed)."""
    values = set()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for kw in IDENTIFYING:
            text = str(ds.get(kw, "") or "").strip()
            if text:
                values.add(text.encode())
    return values


def ellipsoid(reference, centre_offset_mm, radii_mm) -> np.ndarray:
    """Boolean (z, y, x) ellipsoid on ``reference``'s grid, centred ``centre_offset_mm`` (LPS)
    from the centre of its field of view."""
    from mrparotid.dicom.rtstruct import index_to_lps

    nx, ny, nz = reference.GetSize()
    zz, yy, xx = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    pts = index_to_lps(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1), reference)
    centre = index_to_lps(np.array([[(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2]]), reference)[0]
    d = (pts - centre - np.asarray(centre_offset_mm)) / np.asarray(radii_mm)
    return ((d ** 2).sum(1) <= 1).reshape(nz, ny, nx)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))
