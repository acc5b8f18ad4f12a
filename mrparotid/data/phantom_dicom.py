"""A SYNTHETIC phantom patient as one DICOM MR study, the way a modality sends it (for ``serve``
tests, the DICOM output tests and ``tools/bench_serve.py``).

The three series (T1, CE-T1, T2) are rendered by :func:`mrparotid.data.phantom.render` on three
grids (different spacing, origin, a slight tilt of T2, as the phantom cohort has) and written with
pydicom as classic MR Image Storage, one file per slice: one study, one frame of reference, full
patient/study/series identity, so highdicom can build a SEG and an SR that reference them.
SeriesDescription says the role (``T1 AX SYNTHETIC``, ``T1 AX +C SYNTHETIC``, ``T2 AX
SYNTHETIC``) and CE-T1 carries ContrastBolusAgent, so ``configs/dicom_roles.yaml`` finds the roles.
Pixels are uint16 (0..4095), stored values (no rescale). The patient name is ``SYNTHETIC^PHANTOM``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrparotid.constants import DIAGNOSES
from mrparotid.data.phantom import Grid, centred_grid, draw_spec, render

#: Prefix of every UID written here (the phantom cohort's own root).
UID_ROOT = "1.2.826.0.1.3680043.10.1999.7."
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
#: (role, series number, description, contrast agent) of the three series.
SERIES = (("T1", 3, "T1 AX SYNTHETIC", None), ("CE-T1", 7, "T1 AX +C SYNTHETIC", "GADOLINIUM"),
          ("T2", 5, "T2 AX SYNTHETIC", None))


@dataclass(frozen=True)
class PhantomStudy:
    """What was written: the study folder, its StudyInstanceUID, the files per role and the
    patient's (SYNTHETIC) diagnosis."""

    folder: Path
    study_uid: str
    files: dict[str, list[Path]]
    diagnosis: str


def phantom_uid(*parts: object) -> str:
    """A stable UID under :data:`UID_ROOT` from ``parts`` (at most 64 characters)."""
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"{UID_ROOT}{digest}"[:64]


def study_grids(slices: int, seed: int) -> list[Grid]:
    """The three series grids (T1, CE-T1, T2) of a study with ``slices`` T1 slices; each series
    covers the same ~80-120 mm of z as the phantom cohort's."""
    rng = np.random.default_rng(seed + 1)
    shift = tuple(rng.uniform(-3, 3, 3))
    dz = max(2.0, min(5.0, 90.0 / slices))
    return [centred_grid((150, 170, slices), (1.0, 1.0, dz)),
            centred_grid((160, 180, slices), (0.95, 0.95, dz), shift=shift),
            centred_grid((130, 150, max(3, int(slices * dz / 5.0))), (1.15, 1.15, 5.0),
                         shift=shift[::-1], tilt_deg=float(rng.uniform(-5, 5)))]


def write_phantom_study(folder: str | Path, *, patient_id: str = "SYN001", seed: int = 0,
                        slices: int = 20, diagnosis: str | None = None) -> PhantomStudy:
    """Render one SYNTHETIC phantom patient and write its study into ``folder/<role>/``.

    ``diagnosis`` defaults to one drawn from ``seed``; UIDs are stable for a given
    (``patient_id``, ``seed``, ``slices``), so writing it twice gives the same instances.
    """
    rng = np.random.default_rng(seed)
    diagnosis = diagnosis or DIAGNOSES[int(rng.integers(len(DIAGNOSES)))]
    spec = draw_spec(rng, diagnosis)
    folder = Path(folder)
    study_uid = phantom_uid(patient_id, seed, slices, "study")
    ident = {"patient_id": patient_id, "study_uid": study_uid,
             "frame_uid": phantom_uid(patient_id, seed, slices, "frame")}
    files = {}
    for s, (grid, (role, number, description, agent)) in enumerate(zip(study_grids(slices, seed),
                                                                       SERIES)):
        volume = render(spec, grid, s)
        files[role] = write_mr_series(volume, grid, folder / role, number=number,
                                      description=description, contrast_agent=agent,
                                      series_uid=phantom_uid(patient_id, seed, slices, role), **ident)
    return PhantomStudy(folder, study_uid, files, diagnosis)


def write_mr_series(volume: np.ndarray, grid: Grid, folder: Path, *, patient_id: str,
                    study_uid: str, frame_uid: str, series_uid: str, number: int, description: str,
                    contrast_agent: str | None = None) -> list[Path]:
    """Write a (z, y, x) volume on ``grid`` as classic MR Image Storage files, slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.rint(volume / 2.0), 0, 4095).astype(np.uint16)   # phantom: ~0..3000
    d = np.asarray(grid.direction, float)
    written = []
    for k in range(pixels.shape[0]):
        ds = _mr_header(patient_id, study_uid, frame_uid, series_uid, number, description,
                        contrast_agent, grid)
        ds.SOPInstanceUID = f"{series_uid}.{k + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        position = np.asarray(grid.origin) + k * grid.spacing[2] * d[:, 2]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.SliceLocation = f"{float(position @ d[:, 2]):.6f}"
        ds.PixelData = pixels[k].tobytes()
        path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


def _mr_header(patient_id: str, study_uid: str, frame_uid: str, series_uid: str, number: int,
               description: str, contrast_agent: str | None, grid: Grid):
    """The attributes every slice of one series shares (MR Image IOD, classic)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.StudyDate, ds.StudyTime, ds.ContentDate, ds.ContentTime = "20240101", "120000", "20240101", "120000"
    ds.SeriesDate, ds.SeriesTime = "20240101", "120000"
    ds.AccessionNumber, ds.Modality, ds.Manufacturer = "", "MR", "mrparotid phantom (SYNTHETIC)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription, ds.SeriesDescription = "SYNTHETIC phantom parotid MR", description
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
        "SYNTHETIC^PHANTOM", patient_id, "", "O")
    ds.BodyPartExamined = "HEAD"
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "SE", "NONE", "", "2D"
    ds.SliceThickness = f"{grid.spacing[2]:.4f}"
    ds.SpacingBetweenSlices = f"{grid.spacing[2]:.4f}"
    ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "500", "10", 1
    ds.MagneticFieldStrength = "1.5"
    if contrast_agent:
        ds.ContrastBolusAgent = contrast_agent
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.StudyID, ds.SeriesNumber = "1", number
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_uid, ""
    d = np.asarray(grid.direction, float)
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = grid.size[1], grid.size[0]
    ds.PixelSpacing = [f"{grid.spacing[1]:.4f}", f"{grid.spacing[0]:.4f}"]   # row, column spacing
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds
