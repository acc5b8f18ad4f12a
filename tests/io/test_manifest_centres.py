"""The manifest's centre column (centre, center, site, scanner, institution, any letter case) and
``--centre-from-dicom`` (the centre read from the patient's DICOM headers)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from mrparotid.cli.main import main
from mrparotid.errors import ManifestError
from mrparotid.io.manifest import read_manifest


def manifest(tmp_path: Path, header: str, *rows: str) -> Path:
    path = tmp_path / "cohort.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("column", ["centre", "CENTER", "site", "scanner", "institution",
                                    "Centre", "SITE", " Scanner "])       # ("center": test_manifest.py)
def test_each_alias_is_the_centre(tmp_path, column):
    path = manifest(tmp_path, f"patient_id,diagnosis,patient_dir,{column}",
                    "P1,warthin,p/P1,Hospital A", "P2,malignant,p/P2,")
    p1, p2 = read_manifest(path, check_dirs=False).cases
    assert (p1.center, p2.center) == ("Hospital A", None)
    assert p1.row()["center"] == "Hospital A"          # the cache keys' row keeps its key


@pytest.mark.parametrize("header", ["patient_id,diagnosis,patient_dir,centre,site",
                                    "patient_id,diagnosis,patient_dir,Center,INSTITUTION",
                                    "scanner,patient_id,diagnosis,patient_dir,centre"])
def test_two_centre_columns_are_refused_naming_both(tmp_path, header):
    path = manifest(tmp_path, header, "P1,warthin,p/P1,A,B" if header.startswith("patient")
                    else "A,P1,warthin,p/P1,B")
    with pytest.raises(ManifestError) as err:
        read_manifest(path, check_dirs=False)
    found = [c for c in header.split(",") if c.lower() in ("centre", "center", "site", "scanner", "institution")]
    assert "two centre columns" in str(err.value) and all(f"'{c}'" in str(err.value) for c in found)


def dicom_patient(folder: Path, **tags) -> Path:
    """A patient folder holding one small DICOM T1 series (in a sub-folder) with ``tags`` set and
    a patient name that must never reach any output."""
    from patients import patient_arrays, to_image

    from mrparotid.dicom.writer import write_dicom_series

    files = write_dicom_series(to_image(patient_arrays()["T1"][:3]), folder / "study" / "T1",
                               "1.2.826.0.1.3680043.10.1999.23.1", patient_name="Doe^Jane")
    for f in files:
        ds = pydicom.dcmread(f)
        for name in ("InstitutionName", "Manufacturer", "ManufacturerModelName"):
            if name in ds:
                delattr(ds, name)
        for name, value in tags.items():
            setattr(ds, name, value)
        ds.save_as(f)
    return folder


def test_centre_from_dicom_fills_rows_without_one(tmp_path, capsys):
    from patients import write_patient

    from mrparotid.dicom.centres import centre_manifest_path, dicom_centre, write_centre_manifest

    dicom_patient(tmp_path / "patients" / "D1", InstitutionName="St Elsewhere", Manufacturer="GE")
    dicom_patient(tmp_path / "patients" / "D2", Manufacturer="SIEMENS", ManufacturerModelName="Skyra")
    dicom_patient(tmp_path / "patients" / "D3", InstitutionName="Ignored")
    write_patient(tmp_path / "patients" / "N1")                      # named NIfTI files: no DICOM
    path = manifest(tmp_path, "patient_id,diagnosis,patient_dir,site",
                    "D1,warthin,patients/D1,", "D2,malignant,patients/D2,",
                    "D3,warthin,patients/D3,Given", "N1,pleomorphic_adenoma,patients/N1,")
    assert dicom_centre(tmp_path / "patients" / "D1") == ("St Elsewhere", "InstitutionName")
    out, lines = write_centre_manifest(path)
    assert out == centre_manifest_path(path) == tmp_path / "cohort.centres.csv"
    got = {c.patient_id: c.center for c in read_manifest(out).cases}
    assert got == {"D1": "St Elsewhere", "D2": "SIEMENS Skyra", "D3": "Given", "N1": None}
    assert any("N1" in line and "keep no centre" in line for line in lines)
    assert "Doe" not in out.read_text(encoding="utf-8") + "\n".join(lines)
    # the CLI: prepare goes on with the manifest with centres, and says so in one line each
    out.unlink()
    code = main(["prepare", str(path), "--centre-from-dicom", "--skip-bad", "-q", "--data.image_size", "32"])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()       # (the DICOM patients lack masks: skipped)
    assert "manifest with centres: " + str(out) in printed and "Doe" not in printed


def test_centre_from_dicom_needs_a_manifest(tmp_path, capsys):
    pred = tmp_path / "p.csv"
    pred.write_text("x\n")
    assert main(["evaluate", "--predictions", str(pred), "--out", str(tmp_path / "e"),
                 "--centre-from-dicom"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--centre-from-dicom" in err[0]
