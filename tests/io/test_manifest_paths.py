"""Untrusted manifests: a patient folder outside the manifest's folder (through ``..`` or a
symbolic link) is allowed but listed by ``prepare``; a NUL byte is one error line."""

from __future__ import annotations

import os

import pytest

from mrparotid.cli.main import main
from mrparotid.errors import ManifestError
from mrparotid.io.manifest import outside_manifest_folder, read_manifest
from patients import write_patient


def test_folders_outside_the_manifest_folder_are_shown(tmp_path, capsys):
    cohort = tmp_path / "cohort"
    write_patient(cohort / "patients" / "P001")
    write_patient(tmp_path / "elsewhere" / "P002", tumour_side="R")
    write_patient(tmp_path / "linked" / "P003")
    os.symlink(tmp_path / "linked" / "P003", cohort / "patients" / "P003")
    manifest = cohort / "manifest.csv"
    manifest.write_text("patient_id,diagnosis,patient_dir,split\n"
                        "P001,warthin,patients/P001,train\n"
                        "P002,malignant,../elsewhere/P002,train\n"
                        "P003,pleomorphic_adenoma,patients/P003,test\n", encoding="utf-8")
    assert [c.patient_id for c in outside_manifest_folder(read_manifest(manifest))] == ["P002", "P003"]
    assert main(["prepare", str(manifest), "-q", "--data.image_size", "32"]) == 0
    out = capsys.readouterr().out
    assert "2 patient folder(s) outside the manifest's folder" in out
    assert f"P002: {tmp_path / 'elsewhere' / 'P002'}" in out and "P003: " in out
    assert "P001: " not in out


def test_nul_byte_in_a_row_is_one_line(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("patient_id,diagnosis,patient_dir\nP001,warthin,pat\x00ients/P001\n",
                        encoding="utf-8")
    with pytest.raises(ManifestError, match="NUL byte"):
        read_manifest(manifest, check_dirs=False)
