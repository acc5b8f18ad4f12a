"""``--centre-from-dicom``: a manifest's missing centres read from its patients' DICOM headers.

A row without a centre gets, from the first DICOM image header found in its patient folder (at
any depth, files in sorted path order), ``InstitutionName``, else ``Manufacturer`` +
``ManufacturerModelName``. Only those three elements are read into the centre; no patient name or
other identifier ever is. A folder of named image files (NIfTI, NRRD) has no DICOM header: the
patient keeps no centre and :func:`centre_lines` says so, nothing fails.

The centres travel as a manifest beside the original (``<name>.centres.csv``, written atomically),
so that every later stage, the run's ``config.yaml`` and the cache keys (which hold the manifest
row) all see the same centres.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mrparotid.io.manifest import SYNTHETIC_MARK, Manifest, PatientCase, read_manifest, write_manifest

SUFFIX = ".centres.csv"


@dataclass(frozen=True)
class CentreSource:
    """Where one patient's centre came from: ``how`` is ``manifest``, ``InstitutionName``,
    ``Manufacturer`` (manufacturer + model) or ``none`` (no DICOM image header with either)."""

    patient_id: str
    centre: str | None
    how: str


def header_centre(ds) -> tuple[str | None, str]:
    """(centre, how) of one DICOM header: InstitutionName, else Manufacturer + ManufacturerModelName."""
    from mrparotid.dicom.headers import printable

    institution = printable(ds.get("InstitutionName", ""))
    if institution:
        return institution, "InstitutionName"
    maker = " ".join(v for v in (printable(ds.get("Manufacturer", "")),
                                 printable(ds.get("ManufacturerModelName", ""))) if v)
    return (maker, "Manufacturer") if maker else (None, "none")


def dicom_centre(patient_dir: Path, patient: str | None = None) -> tuple[str | None, str]:
    """(centre, how) from the first DICOM image header under ``patient_dir`` (sorted paths, any
    depth); ``(None, "none")`` when there is none. A damaged DICOM file is passed over here (the
    stage that reads the series reports it)."""
    from mrparotid.dicom.headers import is_image, read_header
    from mrparotid.errors import InputError

    folder = Path(patient_dir)
    if not folder.is_dir():
        return None, "none"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = read_header(path, patient=patient)
        except InputError:
            continue
        if ds is not None and is_image(ds):
            return header_centre(ds)
    return None, "none"


def fill_centres(manifest: Manifest) -> tuple[Manifest, list[CentreSource]]:
    """The manifest with each row lacking a centre given its DICOM centre (:func:`dicom_centre`),
    and where every patient's centre came from."""
    cases: list[PatientCase] = []
    sources: list[CentreSource] = []
    for case in manifest.cases:
        if case.center:
            centre, how = case.center, "manifest"
        else:
            centre, how = dicom_centre(case.patient_dir, case.patient_id)
        cases.append(replace(case, center=centre))
        sources.append(CentreSource(case.patient_id, centre, how))
    return replace(manifest, cases=tuple(cases)), sources


def centre_lines(sources: list[CentreSource], written: Path) -> list[str]:
    """What ``--centre-from-dicom`` prints: how many centres came from where, the patients left
    without one (named-file folders), and the manifest the command goes on with."""
    count = {how: sum(s.how == how for s in sources) for how in ("manifest", "InstitutionName", "Manufacturer")}
    none = [s.patient_id for s in sources if s.how == "none"]
    centres = sorted({s.centre for s in sources if s.centre})
    lines = [f"centres: {count['manifest']} from the manifest, {count['InstitutionName']} from DICOM "
             f"InstitutionName, {count['Manufacturer']} from DICOM Manufacturer + model; "
             f"{len(centres)} centre(s): {', '.join(centres) or 'none'}"]
    if none:
        lines.append(f"no DICOM image header (named-file layout) in the folder of {len(none)} patient(s), "
                     f"who keep no centre: {', '.join(none)}")
    lines.append(f"manifest with centres: {written}")
    return lines


def centre_manifest_path(manifest_path: Path) -> Path:
    """``<folder>/<stem>.centres.csv`` beside ``manifest_path`` (so patient folders and the
    default cache folder stay where they were)."""
    path = Path(manifest_path)
    return path.with_name(path.name[:-len(path.suffix)] + SUFFIX if path.suffix else path.name + SUFFIX)


def write_centre_manifest(manifest_path: str | Path) -> tuple[Path, list[str]]:
    """Read ``manifest_path``, fill its missing centres from DICOM and write the result beside it
    (:func:`centre_manifest_path`; a SYNTHETIC manifest stays marked so). Returns (the written
    manifest, the lines to print).

    Raises
    ------
    ManifestError
        A bad manifest (:func:`~mrparotid.io.manifest.read_manifest`).
    """
    manifest = read_manifest(manifest_path, check_dirs=False)
    filled, sources = fill_centres(manifest)
    out = centre_manifest_path(manifest.path)
    note = (f"{SYNTHETIC_MARK} cohort (phantom): not patient data\n" if manifest.synthetic else "")
    write_manifest(out, list(filled.cases), comment=note + "the manifest of the same name with the missing "
                   "centres read from DICOM headers by mrparotid --centre-from-dicom (rewritten on each use)")
    return out, centre_lines(sources, out)
