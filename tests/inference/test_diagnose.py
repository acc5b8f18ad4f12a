"""``diagnose`` without training: a tiny model with fixed weights on hand-made patients.

The model input that ``diagnose`` builds is caught where it enters the model
(``predict_probs``) and compared with the crop cache's (``prepare``) input.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from checkpoints import carved_arrays, tiny_checkpoint
from model_input import catch_model_input
from patients import write_cohort, write_patient
from mrparotid.cli.main import main
from mrparotid.config import CONFIG_DIR, channel_options, load_config
from mrparotid.data.crops import PLANES, select_channels
from mrparotid.data.preprocess import load_study, prepare_patient, slices_of_study
from mrparotid.errors import InputError
from mrparotid.inference.diagnose import diagnose_case, format_report
from mrparotid.io.manifest import PatientCase, read_manifest
from mrparotid.models.checkpoint import load_checkpoint

SERIES_MASKS = ("none", "gland", "tumour")


@pytest.fixture
def model_input(monkeypatch):
    """Catches every array ``diagnose`` feeds the model (uint8 (n, C, H, W))."""
    return catch_model_input(monkeypatch)


@pytest.mark.parametrize("series_mask", SERIES_MASKS)
def test_diagnose_input_is_the_caches_byte_for_byte(tmp_path, model_input, series_mask):
    manifest = write_cohort(tmp_path, [("P001", "warthin", {"arrays": carved_arrays()})])
    cfg, loaded = tiny_checkpoint(tmp_path / "m.ckpt", "--data.series_mask", series_mask)
    case = read_manifest(manifest).cases[0]
    cached = prepare_patient(case, cfg)                       # what prepare puts in the cache
    want = select_channels(cached.crops, cfg["data"]["channels"], series_mask, **channel_options(cfg["data"]))
    report = diagnose_case(case, loaded)
    (got,) = model_input
    # the one slice procedure: the same slices, in the same order, with the same bytes
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert report["view"] == "procedure" and report["masks"] == {"gland": "given", "tumour": "given"}
    assert sorted((s["side"], s["index"]) for s in report["slices"]) == sorted(
        (str(s), int(k)) for s, k in zip(cached.sides, cached.slice_index))
    assert sum(report["counts"].values()) == len(cached)     # the rule counts exactly these


def test_all_slices_is_the_screening_view_with_the_same_bytes(tmp_path, model_input):
    manifest = write_cohort(tmp_path, [("P001", "warthin", {"arrays": carved_arrays()})])
    cfg, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    case = read_manifest(manifest).cases[0]
    cached = prepare_patient(case, cfg)
    want = select_channels(cached.crops, cfg["data"]["channels"], "none", **channel_options(cfg["data"]))
    report = diagnose_case(case, loaded, all_slices=True)
    (got,) = model_input
    assert len(got) == len(report["slices"]) > len(cached)    # every gland slice
    every = slices_of_study(load_study(case, mode="all"), case.diagnosis, cfg["data"], mode="all")
    at = {(str(s), int(k)): i for i, (s, k) in enumerate(zip(every.sides, every.slice_index))}
    for j, (side, k) in enumerate(zip(cached.sides, cached.slice_index)):
        np.testing.assert_array_equal(got[at[(str(side), int(k))]], want[j], err_msg=f"{side}{k}")
    assert report["view"] == "screening" and "screening view" in report["notes"][0]
    assert "SCREENING" in format_report(report)


def test_gland_mask_without_a_tumour_mask_keeps_the_tumour(tmp_path, model_input):
    arrays = carved_arrays()
    folder = write_patient(tmp_path / "P002", arrays=arrays, omit=("tumour",))
    cfg, loaded = tiny_checkpoint(tmp_path / "m.ckpt", "--data.series_mask", "gland")
    report = diagnose_case(PatientCase("P002", None, folder), loaded, all_slices=True)
    (x,) = model_input
    # where the tumour is in those crops: the same patient with its tumour mask (same box, slices)
    known = write_patient(tmp_path / "P002m", arrays=arrays)
    crops = slices_of_study(load_study(PatientCase("P002m", None, known), mode="all"), None,
                            cfg["data"], mode="all").crops
    tumour = crops[:, PLANES.index("tumour")] > 0
    assert tumour.sum() > 50 and x.shape[0] == len(crops)
    assert (x[:, 2][tumour] > 0).all(), "T2 survives on every tumour pixel"   # was 0 % here
    assert report["masks"]["tumour"] == "none" and "kept whole" in report["notes"][1]
    assert "note: no tumour mask" in format_report(report)


def test_gland_channel_t1_reaches_the_model(tmp_path, model_input):
    folder = write_patient(tmp_path / "P003")
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt", "--data.gland_channel", "t1")
    diagnose_case(PatientCase("P003", None, folder), loaded)
    (x,) = model_input
    mask = x[:, 3]
    assert set(np.unique(mask)) - {0, 255}, "the 4th channel holds T1 intensities, not 0/255"
    np.testing.assert_array_equal(mask[x[:, 0] == 0], 0)


def test_paper_config_reads_the_paper_input():
    cfg = load_config(CONFIG_DIR / "paper.yaml")
    assert (cfg["data"]["series_mask"], cfg["data"]["gland_channel"]) == ("tumour", "t1")
    assert load_config(None)["data"]["gland_channel"] == "mask"


def test_report_headers_are_whole_and_the_dash_is_explained(tmp_path):
    folder = write_patient(tmp_path / "P004")
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    text = format_report(diagnose_case(PatientCase("P004", None, folder), loaded))
    header = next(line for line in text.splitlines() if line.strip().startswith("side"))
    assert header.split()[-4:] == ["p_none", "p_PA", "p_Warthin", "p_malig"]
    assert "p_pleomo" not in text
    assert "'-' = not known" in text


def test_missing_folder_on_the_command_line_names_the_folder(tmp_path, capfd):
    tiny_checkpoint(tmp_path / "m.ckpt")
    assert main(["diagnose", str(tmp_path / "no" / "such" / "P1"), "--checkpoint",
                 str(tmp_path / "m.ckpt"), "-q"]) == 2
    err = capfd.readouterr().err
    assert "check the folder path" in err and "manifest" not in err
    with pytest.raises(InputError, match="check patient_dir in the manifest"):
        diagnose_case(PatientCase("P1", "warthin", tmp_path / "nowhere"), load_checkpoint(tmp_path / "m.ckpt"))


def test_csv_has_every_predicted_slice_with_and_without_masks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # no runs/ here: no default segmenter
    write_patient(tmp_path / "A")
    write_patient(tmp_path / "B", omit=("tumour",))
    tiny_checkpoint(tmp_path / "m.ckpt")
    out = tmp_path / "out" / "slices.csv"
    assert main(["diagnose", str(tmp_path / "A"), str(tmp_path / "B"), "--checkpoint",
                 str(tmp_path / "m.ckpt"), "--json", str(tmp_path / "r.json"), "--csv", str(out),
                 "--all-slices", "-q"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# SYNTHETIC")
    rows = list(csv.DictReader(lines[1:]))
    reports = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert len(rows) == sum(len(r["slices"]) for r in reports) == 2 * 16   # 8 gland slices a side
    b = [r for r in rows if r["patient_id"] == "B"]
    assert len(b) == 16 and all(r["true"] == "" for r in b)                 # no masks: unknown
    a = {(r["side"], int(r["index"])): r["true"] for r in rows if r["patient_id"] == "A"}
    assert a[("R", 2)] == "no_tumour" and a[("L", 3)] == ""                  # no diagnosis given


def test_a_temperature_at_a_search_bound_is_a_warning_in_every_output(tmp_path, capsys):
    import dataclasses

    from calibration_data import five_malignant
    from mrparotid.decision.fit import fit_decision
    from mrparotid.evaluation.metrics import patient_slices
    from mrparotid.training.decision import store_decision

    manifest = write_cohort(tmp_path, [("P001", "warthin", {"arrays": carved_arrays()})])
    _, _ = tiny_checkpoint(tmp_path / "m.ckpt")
    record = dataclasses.replace(fit_decision(patient_slices(five_malignant())[0], warn=False),
                                 temperature=20.0, temperature_note="the temperature reached its upper bound 20")
    store_decision(tmp_path / "m.ckpt", record.to_dict())
    report = diagnose_case(read_manifest(manifest).cases[0], load_checkpoint(tmp_path / "m.ckpt"))
    assert report["decision"]["temperature_note"] == record.temperature_note
    assert record.temperature_note in report["warnings"]
    assert f"WARNING: {record.temperature_note}" in format_report(report)
