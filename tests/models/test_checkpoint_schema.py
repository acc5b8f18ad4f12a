"""The checkpoint record schema: the segmenter's loader refuses a tampered section in one line as
the classifier's does, and the checks between sections (network size, splits, series flags)."""

from __future__ import annotations

import copy

import pytest
import torch

from mrparotid.errors import CheckpointError


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    from segmenters import untrained_segmenter

    path = untrained_segmenter(tmp_path_factory.mktemp("seg") / "s.ckpt")
    return torch.load(path, weights_only=True)


SEGMENTER_TAMPERED = {
    "state_dict": lambda c: c.pop("state_dict"),
    '"model"': lambda c: c["mrparotid"].pop("model"),
    '"series"': lambda c: c["mrparotid"].update(series="T1"),
    '"postprocess.threshold"': lambda c: c["mrparotid"]["postprocess"].update(threshold="0.5"),
    '"spacing_mm"': lambda c: c["mrparotid"].update(spacing_mm=0.0),
    '"model.norm"': lambda c: c["mrparotid"]["model"].update(norm="group"),
    '"model"-strides': lambda c: c["mrparotid"]["model"].update(strides=[2, 2]),
    "'extra'": lambda c: c["mrparotid"]["postprocess"].update(extra=1),
}


@pytest.mark.parametrize("section", sorted(SEGMENTER_TAMPERED))
def test_a_tampered_segmenter_section_is_one_checkpoint_error_line(segmenter, tmp_path, section):
    from mrparotid.segmentation.infer import load_segmenter

    ckpt = copy.deepcopy(segmenter)
    SEGMENTER_TAMPERED[section](ckpt)
    path = tmp_path / "s.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as exc:
        load_segmenter(path, device="cpu")
    text = str(exc.value)
    assert section.split("-")[0] in text and "\n" not in text and str(path) in text
    assert "re-train with 'mrparotid segment fit'" in text


def _classifier_meta(*overrides: str) -> dict:
    from mrparotid.config import load_config
    from mrparotid.models.checkpoint import checkpoint_meta

    return checkpoint_meta(load_config(None, ["--model.name", "tiny_resnet", *overrides]), True)


def test_a_record_of_a_huge_network_is_refused_before_it_is_built():
    from mrparotid.models.checkpoint_schema import check_record

    meta = _classifier_meta()
    meta["model"].update(name="resnet", layers=[16] * 6, channels=[2048] * 6)
    with pytest.raises(CheckpointError, match="describes a network of"):
        check_record(meta, "m.ckpt", "re-train")


def test_a_patient_in_two_splits_is_refused():
    from mrparotid.models.checkpoint_schema import check_record

    meta = _classifier_meta()
    meta["split"] = {"splits": {"train": ["A", "B"], "val": [], "test": ["B"]}}
    with pytest.raises(CheckpointError, match="holds patient 'B' twice"):
        check_record(meta, "m.ckpt", "re-train")


@pytest.mark.parametrize("dropout, flags, ok", [(0.3, ["T1", "CE-T1", "T2"], True), (0.0, [], True),
                                                (0.3, [], False), (0.0, ["T1", "CE-T1", "T2"], False),
                                                (0.3, ["T2", "T1", "CE-T1"], False)])
def test_series_flags_follow_the_channels_and_the_dropout(dropout, flags, ok):
    from mrparotid.models.checkpoint_schema import check_record

    meta = dict(_classifier_meta(), series_dropout=dropout, series_flags=flags)
    if ok:
        check_record(meta, "m.ckpt", "re-train")
    else:
        with pytest.raises(CheckpointError, match="series_flags"):
            check_record(meta, "m.ckpt", "re-train")
