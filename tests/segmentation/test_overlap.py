"""A segmenter that trained or validated on the classifier's test patients is refused (exit 2,
naming the count and --allow-overlap); with --allow-overlap it is a warning. A segmenter that
records no split is refused too, with the fix (segment fit --split-from)."""

from __future__ import annotations

import pytest
import torch
from checkpoints import tiny_checkpoint
from patients import write_patient

from mrparotid.cli.main import main
from mrparotid.errors import ConfigError

CLS = {"splits": {"train": ["A", "B", "C"], "val": ["D"], "test": ["E", "F", "G"]}}


def _record(train, val, test):
    return {"splits": {"train": list(train), "val": list(val), "test": list(test)}}


def test_overlap_is_the_classifier_test_patients_the_segmenter_trained_or_validated_on():
    from mrparotid.segmentation.overlap import segmenter_overlap

    seg = _record(["A", "E", "Z"], ["F"], ["G"])
    assert segmenter_overlap(seg, CLS) == ["E", "F"]
    assert segmenter_overlap({"split": seg}, {"split": CLS}) == ["E", "F"]     # checkpoint metas
    assert segmenter_overlap(seg["splits"], CLS["splits"]) == ["E", "F"]       # bare mappings
    assert segmenter_overlap(CLS, CLS) == []                                   # the same split


def test_check_refuses_with_the_count_and_the_flag_or_warns_when_allowed():
    from mrparotid.segmentation.overlap import check_segmenter_overlap

    seg_meta = {"format": "mrparotid-segmenter-1", "split": _record(["A", "E"], ["F"], ["G"])}
    with pytest.raises(ConfigError) as err:
        check_segmenter_overlap(seg_meta, {"split": CLS}, allow=False, seg_path="seg/checkpoints/best.ckpt",
                                cls_path="cls/checkpoints/best.ckpt")
    text = str(err.value)
    assert "2 of the classifier's 3 test patients" in text and "E, F" in text
    assert "--allow-overlap" in text and "segment fit --split-from cls" in text and "\n" not in text
    warning = check_segmenter_overlap(seg_meta, CLS, allow=True, seg_path="s", cls_path="c")
    assert "2 of the classifier's 3 test patients" in warning
    assert check_segmenter_overlap({"split": CLS}, CLS, allow=False, seg_path="s", cls_path="c") is None
    assert check_segmenter_overlap(seg_meta, {"format": "x"}, allow=False, seg_path="s", cls_path="c") is None


def test_a_segmenter_without_a_split_is_refused_unless_allowed():
    from mrparotid.segmentation.overlap import check_segmenter_overlap

    with pytest.raises(ConfigError, match="records no patient split.*--split-from"):
        check_segmenter_overlap({"format": "mrparotid-segmenter-1"}, CLS, allow=False, seg_path="s",
                                cls_path="c")
    assert "no patient split" in check_segmenter_overlap({}, CLS, allow=True, seg_path="s", cls_path="c")
    assert check_segmenter_overlap({}, _record(["A"], [], []), allow=False, seg_path="s", cls_path="c") is None


def _segmenter(path, split):
    """A tiny random-weight segmenter checkpoint whose meta records ``split`` (None: none)."""
    from mrparotid.segmentation.config import load_segment_config
    from mrparotid.segmentation.infer import segmenter_meta
    from mrparotid.segmentation.network import build_segmenter

    cfg = load_segment_config(None, ["--model.channels", "[4,8]", "--model.strides", "[2]"])
    torch.manual_seed(0)
    model = build_segmenter(cfg["model"], len(cfg["data"]["series"]))
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "mrparotid": segmenter_meta(cfg, synthetic=True, split=split)}, path)
    return str(path)


@pytest.mark.parametrize("seg_split", [_record(["P1", "Q"], [], ["R"]), _record(["Q"], ["P1"], []), None])
def test_diagnose_refuses_an_overlapping_segmenter(tmp_path, capsys, seg_split):
    folder = write_patient(tmp_path / "P1")                     # has its masks: segmenter unused
    ckpt = tmp_path / "m.ckpt"
    tiny_checkpoint(ckpt, split=_record(["Q"], [], ["P1", "R"]))
    seg = _segmenter(tmp_path / "seg.ckpt", seg_split)
    argv = ["diagnose", str(folder), "--checkpoint", str(ckpt), "--segmenter", seg, "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-overlap" in err and "seg.ckpt" in err
    assert ("1 of the classifier's 2 test patients (P1" in err) == (seg_split is not None)
    assert main(argv + ["--allow-overlap"]) == 0
    assert "WARNING" in capsys.readouterr().err


def test_diagnose_takes_a_segmenter_trained_on_the_classifier_split(tmp_path, capsys):
    folder = write_patient(tmp_path / "P1")
    split = _record(["Q"], [], ["P1", "R"])
    tiny_checkpoint(tmp_path / "m.ckpt", split=split)
    seg = _segmenter(tmp_path / "seg.ckpt", split)
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt"), "--segmenter", seg,
                 "-q"]) == 0
    assert "WARNING" not in capsys.readouterr().err
