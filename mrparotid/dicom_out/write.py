"""One patient's masks (and report) → ``SEG.dcm`` (and ``SR.dcm``) in its output folder, written
atomically. The one entry point of ``segment --dicom-out``, ``diagnose --dicom-out`` and ``serve``.

**Patient identifiers.** Both objects carry the source study's patient and study identity (patient
name and id, birth date, sex, study UID, date, accession number), copied by highdicom from the T1
headers, so that a PACS files them with the study. This is the only output of mrparotid that holds
identifiers; the JSON, text, HTML and logs keep none.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from mrparotid.data.grid import Study
from mrparotid.dicom_out.source import SourceSeries, read_source, t1_files
from mrparotid.errors import ConfigError
from mrparotid.io.atomic import atomic_path

SEG_FILE = "SEG.dcm"
SR_FILE = "SR.dcm"


@dataclass(frozen=True)
class DicomResult:
    """The files written (None where nothing was: no mask with voxels, or no report)."""

    seg: Path | None
    sr: Path | None

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.seg, self.sr) if p is not None]


def patient_source(case, *, roles_file: str | Path | None = None, hint: str = "folder") -> SourceSeries:
    """The T1 DICOM series of a patient (``case``: a :class:`~mrparotid.io.manifest.PatientCase`),
    found before any inference so that a refusal costs nothing.

    Raises
    ------
    InputError
        The T1 is not DICOM (NIfTI, NRRD, MHA), or its folder is unusable.
    """
    from mrparotid.data.preprocess import patient_files

    files = patient_files(case, require_tumour=False, series=("T1",), hint=hint, require_gland=False)
    t1 = None if "study" in files.paths else files.paths["T1"]
    return read_source(t1_files(case.patient_dir, case.patient_id, t1, roles_file=roles_file),
                       patient=case.patient_id)


def save(dataset, path: Path) -> Path:
    """Write a pydicom dataset atomically (DICOM file format, with its meta header)."""
    with atomic_path(path) as tmp:
        dataset.save_as(tmp, enforce_file_format=True)
    return path


def write_dicom_results(out_dir: str | Path, study: Study, source: SourceSeries,
                        mask_source: dict[str, str], *, segmenter: Path | None = None,
                        report: dict | None = None, synthetic: bool = False) -> DicomResult:
    """Write the SEG of ``study``'s masks (filled in, on the reference grid; ``mask_source``: role
    → ``auto``/``given``) and, given ``report`` (a ``diagnose`` report dict), the SR into
    ``out_dir`` (made if needed)."""
    import highdicom as hd

    from mrparotid.dicom_out.seg import build_seg, segment_masks
    from mrparotid.dicom_out.sr import build_sr

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    masks = segment_masks(study, mask_source, segmenter)
    with warnings.catch_warnings():       # highdicom's warning quotes the patient's name: not logged
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        seg = build_seg(source, masks, study, series_uid=hd.UID(), sop_uid=hd.UID(),
                        synthetic=synthetic)
        sr = None if report is None else build_sr(report, study, source, masks, seg,
                                                  series_uid=hd.UID(), sop_uid=hd.UID(),
                                                  synthetic=synthetic)
    seg_path = save(seg, out_dir / SEG_FILE) if seg is not None else None
    sr_path = save(sr, out_dir / SR_FILE) if sr is not None else None
    return DicomResult(seg_path, sr_path)


def write_evidence(out_root: str | Path, evidence, report: dict, source: SourceSeries, *,
                   quiet: bool = False) -> DicomResult:
    """``diagnose --dicom-out``: SEG and SR of one patient's evidence
    (:class:`~mrparotid.inference.diagnose.PatientEvidence`) into ``out_root/<patient_id>/``;
    prints where they went unless ``quiet``."""
    masks = evidence.masks
    result = write_dicom_results(Path(out_root) / evidence.case.patient_id, evidence.study, source,
                                 dict(masks.source), segmenter=masks.segmenter_path, report=report,
                                 synthetic=bool(report.get("synthetic")))
    if not quiet:
        print("DICOM (with the study's patient identity): "
              + ", ".join(str(p) for p in result.files))
    return result


def check_dicom_out(dicom_out: str | None, pseudonymise: bool) -> None:
    """``--dicom-out`` with ``--pseudonymise`` is refused: the SEG and SR must carry the study's
    patient identity (PACS files them by it).

    Raises
    ------
    ConfigError
        Both were given.
    """
    if dicom_out and pseudonymise:
        raise ConfigError("--dicom-out writes the study's patient identity into the SEG and SR (a "
                          "PACS files them by it), so it cannot be pseudonymised",
                          fix="run --dicom-out and --pseudonymise as two commands")
