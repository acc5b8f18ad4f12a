"""Prepared crops on disk: reuse, per-patient rebuilds, bad patients, the counts table."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from patients import BAD_PATIENTS, write_cohort
from mrparotid import errors
from mrparotid.data.cache import cohort_table, default_cache_dir, format_table, load_slices, prepare_cohort, save_slices
from mrparotid.data.preprocess import prepare_patient
from mrparotid.config import load_config
from mrparotid.constants import CLASSES
from mrparotid.errors import CohortError
from mrparotid.io.manifest import read_manifest

ROWS = [("P001", "pleomorphic_adenoma", {}), ("P002", "warthin", {"tumour_side": "R"}),
        ("P003", "malignant", {"bilateral": True})]


def small_config(*overrides: str) -> dict:
    return load_config(None, ["--data.image_size", "32", *overrides])


@pytest.fixture
def cohort(tmp_path):
    return read_manifest(write_cohort(tmp_path, ROWS), check_dirs=False)


def built_names(prepared) -> dict[str, str]:
    return {pid: path.name for pid, path in prepared.entries.items()}


def test_prepare_patient_labels(cohort):
    cfg = small_config()
    p1, p2, p3 = (prepare_patient(c, cfg) for c in cohort.cases)
    assert sorted(np.bincount(p1.labels, minlength=4).tolist()) == [0, 0, 3, 8]
    assert p1.labels[p1.sides == "L"].tolist() == [1, 1, 1]
    assert p2.labels[p2.sides == "R"].tolist() == [2, 2, 2]
    assert p3.labels.tolist() == [3] * 6                              # bilateral: no negatives
    assert p1.crops.shape == (11, 5, 32, 32)


def test_second_run_reuses_everything(cohort):
    cfg = small_config()
    first = prepare_cohort(cohort, cfg, progress=False)
    assert first.built == 3 and not first.bad
    assert first.cache_dir == default_cache_dir(cohort, cfg) == cohort.path.parent / ".mrparotid_cache"
    mtimes = {p: p.stat().st_mtime_ns for p in first.entries.values()}
    second = prepare_cohort(cohort, cfg, progress=False)
    assert second.built == 0 and built_names(second) == built_names(first)
    assert {p: p.stat().st_mtime_ns for p in second.entries.values()} == mtimes


def test_touching_one_file_rebuilds_only_that_patient(cohort):
    cfg = small_config()
    first = prepare_cohort(cohort, cfg, progress=False)
    t2 = cohort.cases[1].patient_dir / "T2.nii.gz"
    st = t2.stat()
    os.utime(t2, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = prepare_cohort(cohort, cfg, progress=False)
    assert second.built == 1
    changed = {pid for pid in first.entries if first.entries[pid] != second.entries[pid]}
    assert changed == {"P002"}
    # a changed size (same mtime) also counts
    tumour = cohort.cases[2].patient_dir / "tumour.nii.gz"
    st = tumour.stat()
    with open(tumour, "ab") as fh:
        fh.write(b"\0")
    os.utime(tumour, ns=(st.st_atime_ns, st.st_mtime_ns))
    third = prepare_cohort(cohort, cfg, progress=False)
    assert third.built == 1 and third.entries["P003"] != second.entries["P003"]


def test_preprocessing_settings_rebuild_all_but_load_time_settings_do_not(cohort):
    base = prepare_cohort(cohort, small_config(), progress=False)
    for override in (["--data.image_size", "48"], ["--data.margin_mm", "4"],
                     ["--data.percentiles", "[2,98]"]):
        assert prepare_cohort(cohort, small_config(*override), progress=False).built == 3, override
    same = prepare_cohort(cohort, small_config("--data.channels", "T2", "--data.series_mask", "tumour",
                                               "--data.batch_size", "2"), progress=False)
    assert same.built == 0 and built_names(same) == built_names(base)
    assert load_slices(prepare_cohort(cohort, small_config("--data.image_size", "48"),
                                      progress=False).entries["P001"])[0].crops.shape[2:] == (48, 48)


def test_manifest_row_is_part_of_the_key(tmp_path):
    path = write_cohort(tmp_path, ROWS)
    first = prepare_cohort(read_manifest(path), small_config(), progress=False)
    path.write_text(path.read_text(encoding="utf-8").replace("P003,malignant", "P003,warthin"))
    second = prepare_cohort(read_manifest(path), small_config(), progress=False)
    assert second.built == 1 and second.entries["P003"] != first.entries["P003"]
    assert load_slices(second.entries["P003"])[0].labels.tolist() == [2] * 6


def test_cache_dir_from_config(cohort, tmp_path):
    cfg = small_config("--data.cache_dir", str(tmp_path / "elsewhere"))
    prepared = prepare_cohort(cohort, cfg, progress=False)
    assert prepared.cache_dir == tmp_path / "elsewhere"
    assert all(p.parent == tmp_path / "elsewhere" for p in prepared.entries.values())


def test_save_load_round_trip_and_no_temp_files(cohort):
    cfg = small_config()
    prepared = prepare_cohort(cohort, cfg, progress=False)
    slices, prov = load_slices(prepared.entries["P002"])
    assert prov["patient_id"] == "P002" and prov["diagnosis"] == "warthin"
    assert prov["preprocess"] == {"image_size": 32, "margin_mm": 10.0, "percentiles": [1.0, 99.0]}
    assert prov["synthetic"] is False
    again = prepare_patient(cohort.cases[1], cfg)
    for field in ("crops", "labels", "sides", "slice_index", "z_mm"):
        np.testing.assert_array_equal(getattr(slices, field), getattr(again, field))
    out = prepared.cache_dir / "copy.npz"
    save_slices(out, slices, prov)
    assert load_slices(out)[1] == prov
    assert not [p for p in prepared.cache_dir.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("case", list(BAD_PATIENTS))
def test_bad_patient_is_named_with_its_file(tmp_path, case):
    breaker, error_class, file_name = BAD_PATIENTS[case]
    manifest = read_manifest(write_cohort(tmp_path, ROWS), check_dirs=False)
    bad_dir = manifest.cases[1].patient_dir
    breaker(bad_dir)
    cfg = small_config()
    with pytest.raises(CohortError) as exc:
        prepare_cohort(manifest, cfg, progress=False)
    assert len(exc.value.bad) == 1
    err = exc.value.bad[0]
    assert isinstance(err, getattr(errors, error_class))
    text = str(err)
    assert text.startswith("patient P002: file ") and str(bad_dir) in text and file_name in text
    assert "\n" not in text and "->" in text
    prepared = prepare_cohort(manifest, cfg, skip_bad=True, progress=False)
    assert set(prepared.entries) == {"P001", "P003"} and [str(e) for e in prepared.bad] == [text]
    summary = cohort_table(prepared, cfg)
    assert summary["bad_patients"] == [text]
    assert sum(s["patients"] for s in summary["splits"].values()) == 2


def test_cohort_error_lists_every_bad_patient(tmp_path):
    manifest = read_manifest(write_cohort(tmp_path, ROWS), check_dirs=False)
    BAD_PATIENTS["missing_series"][0](manifest.cases[0].patient_dir)
    BAD_PATIENTS["empty_gland"][0](manifest.cases[2].patient_dir)
    with pytest.raises(CohortError) as exc:
        prepare_cohort(manifest, small_config(), progress=False)
    text = str(exc.value)
    assert text.startswith("2 bad patient(s): patient P001: ") and "; patient P003: " in text
    assert text.endswith("-> fix them, or pass --skip-bad to go on without them")
    cfg = small_config("--data.skip_bad", "true")      # the config key works like --skip-bad
    assert len(prepare_cohort(manifest, cfg, progress=False).bad) == 2


def test_cohort_table_shape_and_counts(tmp_path):
    rows = [(f"P{i:03d}", d, {"tumour_side": "L"}, s) for i, (d, s) in enumerate(
        [("pleomorphic_adenoma", "train"), ("warthin", "train"), ("malignant", "val"),
         ("warthin", "test")])]
    manifest = read_manifest(write_cohort(tmp_path, rows))
    cfg = small_config()
    summary = cohort_table(prepare_cohort(manifest, cfg, progress=False), cfg)
    json.dumps(summary)
    assert set(summary) == {"splits", "bad_patients", "synthetic", "outside_manifest_folder"}
    assert summary["outside_manifest_folder"] == {}
    assert summary["bad_patients"] == [] and summary["synthetic"] is False
    train = summary["splits"]["train"]
    assert train["patients"] == 2
    assert train["diagnoses"] == {"pleomorphic_adenoma": 1, "warthin": 1, "malignant": 0}
    assert train["slices"] == {"no_tumour": 16, "pleomorphic_adenoma": 3, "warthin": 3, "malignant": 0}
    assert summary["splits"]["val"]["slices"]["malignant"] == 3
    assert summary["splits"]["test"]["slices"] == dict(zip(CLASSES, [8, 0, 3, 0]))
    table = format_table(summary)
    assert table.splitlines()[0].split()[:3] == ["split", "|", "patients"] and "bad patient" not in table
