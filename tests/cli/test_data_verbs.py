"""The data verbs end to end: ``phantom`` and ``prepare`` (counts, cache reuse, bad input → exit 2)."""

from __future__ import annotations

import json
import os

import pytest

from patients import BAD_PATIENTS, write_cohort
from mrparotid.cli.main import main
from mrparotid.constants import CLASSES, DIAGNOSES

ROWS = [("P001", "pleomorphic_adenoma", {}), ("P002", "warthin", {"tumour_side": "R"}),
        ("P003", "malignant", {"bilateral": True})]
SMALL = ["--data.image_size", "32", "-q"]


def one_error_line(capfd) -> str:
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("mrparotid: error: ")
    return lines[0]


def test_phantom_verb_writes_a_synthetic_cohort(tmp_path, capsys):
    assert main(["phantom", str(tmp_path / "demo"), "--patients", "2", "--seed", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and str(tmp_path / "demo" / "manifest.csv") in out
    assert sorted(p.name for p in (tmp_path / "demo" / "patients").iterdir()) == ["SYN001", "SYN002"]
    assert main(["prepare", str(tmp_path / "demo" / "manifest.csv"), *SMALL]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SYNTHETIC phantom cohort - not patient data")


def test_prepare_prints_counts_and_writes_json(tmp_path, capfd):
    manifest = write_cohort(tmp_path, ROWS)
    assert main(["prepare", str(manifest), "--json", str(tmp_path / "counts.json"), *SMALL]) == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "cache: " in captured.out and "(3 patient(s) prepared, 0 reused)" in captured.out
    summary = json.loads((tmp_path / "counts.json").read_text(encoding="utf-8"))
    assert set(summary["splits"]) == {"train", "val", "test"}
    for split in summary["splits"].values():
        assert isinstance(split["patients"], int)
        assert list(split["slices"]) == list(CLASSES)
        assert list(split["diagnoses"]) == list(DIAGNOSES)
    assert summary["bad_patients"] == [] and summary["built"] == 3
    assert sum(s["patients"] for s in summary["splits"].values()) == 3
    total = {c: sum(s["slices"][c] for s in summary["splits"].values()) for c in CLASSES}
    assert total == {"no_tumour": 16, "pleomorphic_adenoma": 3, "warthin": 3, "malignant": 6}


def test_prepare_reuses_the_cache_and_rebuilds_what_changed(tmp_path, capsys):
    manifest = write_cohort(tmp_path, ROWS)
    counts = tmp_path / "c.json"

    def built(*extra) -> int:
        assert main(["prepare", str(manifest), "--json", str(counts), *SMALL, *extra]) == 0
        capsys.readouterr()
        return json.loads(counts.read_text(encoding="utf-8"))["built"]

    assert built() == 3
    assert built() == 0
    t1 = tmp_path / "patients" / "P002" / "T1.nii.gz"
    st = t1.stat()
    os.utime(t1, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert built() == 1
    assert built() == 0
    assert built("--data.image_size", "48") == 3
    assert built("--data.channels", "T1", "--data.series_mask", "gland") == 0


@pytest.mark.parametrize("case", list(BAD_PATIENTS))
def test_bad_patient_fails_the_run_unless_skipped(tmp_path, capfd, case):
    breaker, _, file_name = BAD_PATIENTS[case]
    manifest = write_cohort(tmp_path, ROWS)
    bad_dir = tmp_path / "patients" / "P002"
    breaker(bad_dir)
    assert main(["prepare", str(manifest), *SMALL]) == 2
    out = capfd.readouterr()
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in out.err, out.err
    assert err[0].startswith("mrparotid: error: 1 bad patient(s): patient P002: file ")
    assert str(bad_dir) in err[0] and file_name in err[0]
    assert err[0].endswith("-> fix them, or pass --skip-bad to go on without them")
    # the table is still printed, and the bad patients are listed at its end
    assert out.out.splitlines()[-3].startswith("1 bad patient(s) left out:")
    assert out.out.splitlines()[-2].startswith("  patient P002: file ")

    counts = tmp_path / "counts.json"
    assert main(["prepare", str(manifest), "--skip-bad", "--json", str(counts), *SMALL]) == 0
    out = capfd.readouterr()
    assert "Traceback" not in out.err
    summary = json.loads(counts.read_text(encoding="utf-8"))
    assert len(summary["bad_patients"]) == 1 and summary["bad_patients"][0].startswith("patient P002: ")
    assert sum(s["patients"] for s in summary["splits"].values()) == 2


def test_several_bad_patients_are_all_named(tmp_path, capfd):
    manifest = write_cohort(tmp_path, ROWS)
    BAD_PATIENTS["nan_voxels"][0](tmp_path / "patients" / "P001")
    BAD_PATIENTS["empty_tumour"][0](tmp_path / "patients" / "P003")
    assert main(["prepare", str(manifest), *SMALL]) == 2
    line = one_error_line(capfd)
    assert "2 bad patient(s): patient P001: " in line and "; patient P003: " in line


@pytest.mark.parametrize("rows,message,patient", [
    ([("P001", "warthin", {}), ("P001", "malignant", None)], "duplicate patient_id (rows 2 and 3)",
     "P001"),
    ([("P001", "warthin", {}), ("P002", "lipoma", {})], "unknown diagnosis 'lipoma'", "P002"),
])
def test_manifest_errors_are_one_line(tmp_path, capfd, rows, message, patient):
    manifest = write_cohort(tmp_path, rows)
    assert main(["prepare", str(manifest), *SMALL]) == 2
    line = one_error_line(capfd)
    assert line.startswith(f"mrparotid: error: patient {patient}: file {manifest}: ") and message in line


def test_missing_manifest_and_bad_override(tmp_path, capfd):
    assert main(["prepare", str(tmp_path / "none.csv"), *SMALL]) == 2
    assert "manifest not found" in one_error_line(capfd)
    manifest = write_cohort(tmp_path, ROWS[:1])
    assert main(["prepare", str(manifest), "--data.image_size", "8", "-q"]) == 2
    assert "data.image_size is 8" in one_error_line(capfd)
    assert main(["prepare", str(manifest), "--data.imagesize", "32", "-q"]) == 2
    assert "unknown config key 'data.imagesize'" in one_error_line(capfd)


def test_phantom_needs_a_patient(tmp_path, capfd):
    assert main(["phantom", str(tmp_path / "demo"), "--patients", "0", "-q"]) == 2
    assert "--patients is 0" in one_error_line(capfd)
    assert not (tmp_path / "demo").exists()
