"""Cohort manifest (CSV) → patient cases, with leakage and duplicate checks.

Format, one patient a row (lines starting with ``#`` are comments)::

    patient_id,diagnosis,patient_dir[,split][,centre]
    P001,pleomorphic_adenoma,patients/P001,train,A

``diagnosis`` ∈ {pleomorphic_adenoma, warthin, malignant}; ``split`` ∈ {train, val, test} or empty;
``patient_dir`` is relative to the manifest file. The centre (scanner, site) column may be named
``centre``, ``center``, ``site``, ``scanner`` or ``institution`` in any letter case (one of them);
it is kept in :attr:`PatientCase.center`.
"""

from __future__ import annotations

import csv
import io as _io
import os
from dataclasses import dataclass
from pathlib import Path

from mrparotid.constants import DIAGNOSES
from mrparotid.errors import ManifestError
from mrparotid.io.atomic import atomic_path

SPLITS = ("train", "val", "test")   # the values of the manifest's split column
REQUIRED_COLUMNS = ("patient_id", "diagnosis", "patient_dir")
SYNTHETIC_MARK = "SYNTHETIC"
#: Header names of the centre column (compared in lower case); a manifest has at most one.
CENTRE_COLUMNS = ("centre", "center", "site", "scanner", "institution")
COLUMNS_HELP = "patient_id,diagnosis,patient_dir[,split][,centre]"


@dataclass(frozen=True)
class PatientCase:
    """One manifest row. ``patient_dir`` is absolute; ``split`` is None when not given; ``center``
    is the centre (scanner, site) column, None when empty (the name stays: cache keys hold it)."""

    patient_id: str
    diagnosis: str
    patient_dir: Path
    split: str | None = None
    center: str | None = None

    def row(self) -> dict:
        """The row as written in the manifest (used in cache keys)."""
        return {"patient_id": self.patient_id, "diagnosis": self.diagnosis,
                "patient_dir": str(self.patient_dir), "split": self.split, "center": self.center}


@dataclass(frozen=True)
class Manifest:
    path: Path
    cases: tuple[PatientCase, ...]
    synthetic: bool = False

    def __len__(self) -> int:
        return len(self.cases)

    def by_id(self) -> dict[str, PatientCase]:
        return {c.patient_id: c for c in self.cases}


def read_manifest(path: str | Path, *, check_dirs: bool = True) -> Manifest:
    """Read and validate a manifest.

    Raises
    ------
    ManifestError
        Missing file or columns, unknown diagnosis or split, duplicate ``patient_id``, or (with
        ``check_dirs``) a ``patient_dir`` that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError("manifest not found", path=path,
                            fix=f"pass a CSV with columns {COLUMNS_HELP}")
    try:
        text = path.read_text(encoding="utf-8-sig")   # -sig: a spreadsheet's byte-order mark is no header
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text (byte {exc.start})", path=path,
                            fix="save the CSV as UTF-8") from None
    synthetic = any(line.startswith("#") and SYNTHETIC_MARK in line.upper()
                    for line in text.splitlines())
    kept = [(no, ln) for no, ln in enumerate(text.splitlines(), start=1)
            if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(_io.StringIO("\n".join(ln for _, ln in kept)))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(f"missing column(s) {', '.join(missing)}", path=path,
                            fix=f"the header must be {COLUMNS_HELP}")
    centre_col = centre_column(columns, path)
    cases, seen = [], {}
    for raw in reader:
        lineno = kept[reader.line_num - 1][0]   # the line in the file, comments counted
        row = {k.strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in raw.items()
               if k is not None}
        pid = row["patient_id"]
        where = f"{path.name} row {lineno}"
        if any("\x00" in v for v in row.values()):
            raise ManifestError(f"{where}: a NUL byte in the row", path=path,
                                fix="save the manifest as plain UTF-8 text")
        if not pid:
            raise ManifestError(f"{where}: empty patient_id", path=path, fix="give every row an id")
        if pid in seen:
            raise ManifestError(f"duplicate patient_id (rows {seen[pid]} and {lineno})", patient=pid,
                                path=path, fix="give each patient one row with a unique id")
        seen[pid] = lineno
        diagnosis = row["diagnosis"].lower()
        if diagnosis not in DIAGNOSES:
            raise ManifestError(f"{where}: unknown diagnosis {row['diagnosis']!r}", patient=pid,
                                path=path, fix=f"use one of {', '.join(DIAGNOSES)}")
        split = row.get("split", "").lower() or None
        if split is not None and split not in SPLITS:
            raise ManifestError(f"{where}: unknown split {row['split']!r}", patient=pid, path=path,
                                fix="use train, val, test or leave it empty")
        if not row["patient_dir"]:
            raise ManifestError(f"{where}: empty patient_dir", patient=pid, path=path,
                                fix="give the patient's folder, relative to the manifest file")
        patient_dir = (path.parent / row["patient_dir"]).resolve()
        if check_dirs and not patient_dir.is_dir():
            raise ManifestError("patient_dir missing", patient=pid, path=patient_dir,
                                fix=f"fix patient_dir in {path.name} row {lineno} "
                                    "(it is relative to the manifest file)")
        cases.append(PatientCase(pid, diagnosis, patient_dir, split,
                                 (row.get(centre_col) or None) if centre_col else None))
    if not cases:
        raise ManifestError("manifest lists no patients", path=path, fix="add one row per patient")
    return Manifest(path.resolve(), tuple(cases), synthetic)


def centre_column(columns: list[str], path: Path) -> str | None:
    """The header's centre column (:data:`CENTRE_COLUMNS`, any letter case), None without one.

    Raises
    ------
    ManifestError
        Two centre columns (e.g. ``centre`` and ``site``): which one holds the centre is unknown.
    """
    found = [c for c in columns if c.lower() in CENTRE_COLUMNS]
    if len(found) > 1:
        raise ManifestError(f"two centre columns {found[0]!r} and {found[1]!r}", path=path,
                            fix="keep one centre column (centre, center, site, scanner or institution)")
    return found[0] if found else None


def case_centres(cases) -> dict[str, str]:
    """Patient id → centre of the cases that name one (empty when none does)."""
    return {c.patient_id: c.center for c in cases if c.center}


def outside_manifest_folder(manifest: Manifest) -> list[PatientCase]:
    """Cases whose ``patient_dir`` lies outside the manifest's folder, through ``..``, an
    absolute path or a symbolic link (``patient_dir`` is resolved). Allowed, but ``prepare``
    lists them so that it is visible."""
    root = manifest.path.parent.resolve()
    return [c for c in manifest.cases if not Path(c.patient_dir).resolve().is_relative_to(root)]


def write_manifest(path: Path, cases: list[PatientCase], *, comment: str | None = None) -> None:
    """Write cases with ``patient_dir`` relative to the manifest's folder (``..`` where it lies
    outside), the centre in the ``center`` column."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        if comment:
            for line in comment.splitlines():
                fh.write(f"# {line}\n")
        writer = csv.writer(fh)
        writer.writerow(["patient_id", "diagnosis", "patient_dir", "split", "center"])
        for c in cases:
            rel = Path(os.path.relpath(Path(c.patient_dir).resolve(), path.parent.resolve()))
            writer.writerow([c.patient_id, c.diagnosis, rel.as_posix(), c.split or "", c.center or ""])
