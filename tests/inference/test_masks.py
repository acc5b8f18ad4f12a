"""Masks at diagnosis: from the folder where it has them, from the segmenter for what it lacks;
the edge cases of automatic masks (no gland, one gland, no tumour, wrong series, bad checkpoint).

A stand-in segmenter returns hand-made masks, so no network runs here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from checkpoints import carved_arrays, tiny_checkpoint
from model_input import catch_model_input
from patients import patient_arrays, write_cohort, write_patient
from segmenters import FakeSegmenter, untrained_segmenter
from mrparotid.config import channel_options
from mrparotid.cli.main import main
from mrparotid.constants import NO_TUMOUR_FOUND
from mrparotid.data.crops import select_channels
from mrparotid.data.preprocess import prepare_patient
from mrparotid.errors import InputError, MissingSeriesError
from mrparotid.inference.diagnose import diagnose_case, format_report
from mrparotid.inference.masks import NO_TUMOUR_BY_SEGMENTER, Segmenter, resolve_masks
from mrparotid.inference.runs import checkpoint_kind, default_classifier, newest_checkpoint
from mrparotid.io.manifest import PatientCase, read_manifest

SERIES_ONLY = ("gland", "tumour")


@pytest.fixture
def model_input(monkeypatch):
    """Catches every array ``diagnose`` feeds the model (uint8 (n, C, H, W))."""
    return catch_model_input(monkeypatch)


def test_given_masks_never_call_the_segmenter(tmp_path):
    folder = write_patient(tmp_path / "P1")
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    seg = FakeSegmenter(fn=lambda s: pytest.fail("segmenter called"))
    report = diagnose_case(PatientCase("P1", None, folder), loaded, segmenter=seg)
    assert seg.calls == 0 and report["masks"] == {"gland": "given", "tumour": "given"}
    assert report["tumour_found"] == {"L": True, "R": False} and "segmenter" not in report


@pytest.mark.parametrize("omit, auto", [(("tumour",), ["tumour"]), (("gland",), ["gland"]),
                                        (SERIES_ONLY, ["gland", "tumour"])])
def test_masks_a_folder_lacks_come_from_the_segmenter(tmp_path, omit, auto):
    arrays = patient_arrays(tumour_side="R")
    folder = write_patient(tmp_path / "P2", arrays=arrays, omit=omit)
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    seg = FakeSegmenter(arrays["gland"], arrays["tumour"])
    report = diagnose_case(PatientCase("P2", None, folder), loaded, segmenter=seg)
    assert seg.calls == 1
    assert report["masks"] == {r: "auto" if r in auto else "given" for r in ("gland", "tumour")}
    assert report["tumour_found"] == {"L": False, "R": True}
    assert report["segmenter"]["checkpoint"] == "fake-segmenter.ckpt"
    text = format_report(report)
    assert "AUTOMATIC (segmenter)" in text and all(f"{r} AUTOMATIC" in text for r in auto)


def test_series_only_folder_with_exact_masks_gives_the_caches_bytes(tmp_path, model_input):
    """Given the same masks, prepare (the cache) and diagnose give byte-identical model input,
    whether the masks come from the folder or from the segmenter."""
    arrays = carved_arrays()
    manifest = write_cohort(tmp_path, [("P3", "warthin", {"arrays": arrays})])
    series_only = write_patient(tmp_path / "only" / "P3", arrays=arrays, omit=SERIES_ONLY)
    cfg, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    cached = prepare_patient(read_manifest(manifest).cases[0], cfg)
    want = select_channels(cached.crops, cfg["data"]["channels"], "none", **channel_options(cfg["data"]))
    report = diagnose_case(PatientCase("P3", None, series_only), loaded,
                           segmenter=FakeSegmenter(arrays["gland"], arrays["tumour"]))
    (got,) = model_input
    assert got.tobytes() == want.tobytes() and len(report["slices"]) == len(cached)
    assert all("true" not in s for s in report["slices"])       # automatic masks are not truth


def test_no_mask_and_no_segmenter_is_one_line(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)                     # no runs/ here: no default segmenter
    folder = write_patient(tmp_path / "P4", omit=("tumour",))
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(InputError, match="no tumour .* mask and no segmenter"):
        diagnose_case(PatientCase("P4", None, folder), loaded)
    with pytest.raises(InputError, match="--segmenter"):
        diagnose_case(PatientCase("P4", None, folder), loaded, segmenter=Segmenter())
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt"), "-q"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0 and "patient P4" in err and "--segmenter" in err


def test_no_gland_found_is_an_error_that_names_the_fix(tmp_path):
    arrays = patient_arrays()
    folder = write_patient(tmp_path / "P5", arrays=arrays, omit=SERIES_ONLY)
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    empty = np.zeros_like(arrays["gland"])
    with pytest.raises(InputError, match="found no parotid gland") as err:
        diagnose_case(PatientCase("P5", None, folder), loaded, segmenter=FakeSegmenter(empty, empty))
    assert "series" in err.value.fix and "parotid.nii.gz" in err.value.fix


def test_gland_on_one_side_only_diagnoses_that_side_and_warns(tmp_path):
    arrays = patient_arrays(tumour_side="L")
    folder = write_patient(tmp_path / "P6", arrays=arrays, omit=SERIES_ONLY)
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    left = arrays["gland"].copy()
    left[..., :20] = 0                               # x < 20 is the right side
    report = diagnose_case(PatientCase("P6", None, folder), loaded,
                           segmenter=FakeSegmenter(left, arrays["tumour"]))
    assert {s["side"] for s in report["slices"]} == {"L"} and report["tumour_found"] == {"L": True}
    assert "side L only" in report["warnings"][0] and "side R is not diagnosed" in report["warnings"][0]
    assert "WARNING: the segmenter found a parotid gland on side L only" in format_report(report)


def test_no_tumour_found_gives_no_tumour_found_with_the_note(tmp_path):
    arrays = patient_arrays()
    folder = write_patient(tmp_path / "P7", arrays=arrays, omit=SERIES_ONLY)
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    report = diagnose_case(PatientCase("P7", None, folder), loaded,
                           segmenter=FakeSegmenter(arrays["gland"], np.zeros_like(arrays["tumour"])))
    assert report["diagnosis"] == NO_TUMOUR_FOUND and NO_TUMOUR_BY_SEGMENTER in report["notes"]
    assert report["tumour_found"] == {"L": False, "R": False}
    assert len(report["slices"]) == 16 and sum(report["counts"].values()) == 16   # both glands
    assert report["rule"]["branch"] == "no_tumour_slices"
    assert f"note: {NO_TUMOUR_BY_SEGMENTER}" in format_report(report)


def test_resolve_masks_all_automatic_for_scoring():
    from patients import make_study

    study = make_study()
    arrays = patient_arrays(tumour_side="R")
    masks = resolve_masks(study, FakeSegmenter(arrays["gland"], arrays["tumour"]), use_given=False)
    assert masks.source == {"gland": "auto", "tumour": "auto"}
    assert masks.tumour_found == {"L": False, "R": True}
    np.testing.assert_array_equal(masks.study.tumour, arrays["tumour"])


def test_segmenter_trained_on_other_series_is_one_line(tmp_path, capfd):
    folder = write_patient(tmp_path / "P8", omit=("T2", "gland", "tumour"))
    ckpt = tmp_path / "m.ckpt"
    _, loaded = tiny_checkpoint(ckpt, "--data.channels", "[T1,CE-T1,mask]")
    seg_path = untrained_segmenter(tmp_path / "seg.ckpt")
    with pytest.raises(MissingSeriesError, match="segmenter was trained on T1, CE-T1, T2"):
        diagnose_case(PatientCase("P8", None, folder), loaded, segmenter=Segmenter(seg_path))
    assert main(["diagnose", str(folder), "--checkpoint", str(ckpt), "--segmenter", str(seg_path),
                 "-q"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0 and "T2" in err and "segment fit" in err


@pytest.mark.parametrize("content", [b"not a checkpoint at all\n" * 10, b"PK\x03\x04broken zip"])
def test_corrupt_segmenter_checkpoint_is_one_line(tmp_path, capfd, content):
    folder = write_patient(tmp_path / "P9", omit=SERIES_ONLY)
    tiny_checkpoint(tmp_path / "m.ckpt")
    (tmp_path / "seg.ckpt").write_bytes(content)
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt"), "--segmenter",
                 str(tmp_path / "seg.ckpt")]) == 2
    err = capfd.readouterr().err.strip()
    assert err.count("\n") == 0 and "seg.ckpt" in err and "segmenter checkpoint" in err


def test_classifier_given_as_segmenter_is_refused(tmp_path, capfd):
    folder = write_patient(tmp_path / "P10", omit=SERIES_ONLY)
    tiny_checkpoint(tmp_path / "m.ckpt")
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt"), "--segmenter",
                 str(tmp_path / "m.ckpt")]) == 2
    assert "classifier checkpoint" in capfd.readouterr().err


def _run(root, name, ckpt_writer, mtime):
    path = root / "runs" / name / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True)
    ckpt_writer(path)
    (path.parent.parent / "summary.json").write_text("{}", encoding="utf-8")
    import os

    os.utime(path, (mtime, mtime))
    return path


def test_defaults_are_the_newest_runs_of_each_kind_by_format(tmp_path, monkeypatch):
    classifier = _run(tmp_path, "seg-looking-name", lambda p: tiny_checkpoint(p), 1000)
    segmenter = _run(tmp_path, "classifier-looking-name", untrained_segmenter, 2000)
    _run(tmp_path, "junk", lambda p: p.write_bytes(b"junk"), 3000)
    unfinished = tmp_path / "runs" / "unfinished" / "checkpoints" / "best.ckpt"
    unfinished.parent.mkdir(parents=True)
    tiny_checkpoint(unfinished)                      # no summary.json: not a candidate
    assert checkpoint_kind(classifier) == "classifier" and checkpoint_kind(segmenter) == "segmenter"
    assert newest_checkpoint("classifier", tmp_path / "runs") == classifier
    assert newest_checkpoint("segmenter", tmp_path / "runs") == segmenter
    monkeypatch.chdir(tmp_path)
    assert default_classifier() == classifier.relative_to(tmp_path)
    assert Segmenter().path == segmenter.relative_to(tmp_path)
    assert newest_checkpoint("segmenter", tmp_path / "nowhere") is None


def test_json_has_masks_and_tumour_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_patient(tmp_path / "P11")
    tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "r.json"
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt"), "--json",
                 str(out), "-q"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["masks"] == {"gland": "given", "tumour": "given"} and report["view"] == "procedure"
    assert report["tumour_found"] == {"L": True, "R": False} and report["warnings"] == []


def test_an_automatic_tumour_mask_is_never_shown_as_a_truth():
    from mrparotid.inference.diagnose import truth_cell

    row = {"tumour_in_mask": True}
    assert truth_cell(row, {"masks": {"gland": "auto", "tumour": "auto"}}) == "tumour (auto)"
    assert truth_cell(row, {"masks": {"gland": "given", "tumour": "given"}}) == "tumour"
    assert truth_cell({"tumour_in_mask": False}, {}) == "-"
    assert truth_cell({"true": "warthin", "tumour_in_mask": True}, {}) == "warthin"
