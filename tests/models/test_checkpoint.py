"""Loading checkpoints: anything that is not an mrparotid checkpoint is one clear line."""

from __future__ import annotations

import pytest
import torch

from mrparotid.errors import CheckpointError
from mrparotid.models.checkpoint import load_checkpoint


@pytest.mark.parametrize("content", [b"epoch,loss\n1,0.5\n", b"", b"not a checkpoint at all"])
def test_a_text_file_is_not_an_mrparotid_checkpoint(tmp_path, content):
    path = tmp_path / "metrics.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    text = str(exc.value)
    assert "not an mrparotid checkpoint" in text and "weights_only" not in text and "\n" not in text
    assert "checkpoints/best.ckpt" in text and str(path) in text


def test_a_pickle_with_objects_and_a_foreign_checkpoint(tmp_path):
    unsafe, foreign = tmp_path / "unsafe.ckpt", tmp_path / "foreign.ckpt"
    torch.save({"a": object()}, unsafe)
    torch.save({"state_dict": {}}, foreign)
    for path in (unsafe, foreign):
        with pytest.raises(CheckpointError, match="not an mrparotid checkpoint"):
            load_checkpoint(path)


# ----------------------------------------------------------------------------------------------
# tampered records: every section load_checkpoint reads is checked (mrparotid.models.checkpoint_schema)

def _tampered(tmp_path, change):
    """A real tiny checkpoint (tests/support/checkpoints.py) with ``change(ckpt)`` applied."""
    from checkpoints import tiny_checkpoint

    path = tmp_path / "m.ckpt"
    tiny_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)
    return path


def _nan_weight(ckpt):
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name] = torch.full_like(ckpt["state_dict"][name], float("nan"))


TAMPERED = {
    "state_dict": lambda c: c.pop("state_dict"),
    '"model"': lambda c: c["mrparotid"].pop("model"),
    '"channels"': lambda c: c["mrparotid"].update(channels="T1,T2"),
    '"preprocess"': lambda c: c["mrparotid"].pop("preprocess"),
    '"preprocess.image_size"': lambda c: c["mrparotid"]["preprocess"].update(image_size=10 ** 9),
    '"preprocess.percentiles"': lambda c: c["mrparotid"]["preprocess"].update(percentiles=[99, 1]),
    '"rule.malignant_min_slices"': lambda c: c["mrparotid"]["rule"].update(malignant_min_slices=-3),
    '"synthetic"': lambda c: c["mrparotid"].pop("synthetic"),     # outputs would lose SYNTHETIC
    '"series_flags"': lambda c: c["mrparotid"].update(series_flags=["T2"]),
    "'unexpected'": lambda c: c["mrparotid"].update(unexpected=1),
    "model.fc.weight": lambda c: c["state_dict"].update({"model.fc.weight": "weights"}),
    "non-finite": _nan_weight,
}


@pytest.mark.parametrize("section", sorted(TAMPERED))
def test_a_tampered_section_is_one_checkpoint_error_line_naming_it(tmp_path, section):
    path = _tampered(tmp_path, TAMPERED[section])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    text = str(exc.value)
    assert section in text and str(path) in text and "\n" not in text
    assert "re-train with 'mrparotid fit'" in text


def test_sections_the_loader_passes_through_stay_unchecked(tmp_path):
    """calibration and decision records are checked by their own readers, not here."""
    path = _tampered(tmp_path, lambda c: c["mrparotid"].update(calibration={"any": "thing"},
                                                               decision=[1, 2]))
    assert load_checkpoint(path).meta["decision"] == [1, 2]


def test_checkpoints_as_written_today_load(tmp_path):
    from checkpoints import tiny_checkpoint

    from mrparotid.data.splits import split_record
    from mrparotid.io.manifest import PatientCase

    cases = [PatientCase(p, "warthin", tmp_path / p, "train" if p == "A" else None) for p in "ABC"]
    split = split_record({"train": ["A"], "val": ["B"], "test": ["C"]}, cases)
    for name, extra in (("plain", []), ("options", ["--data.gland_channel", "t1",
                                                    "--data.series_mask", "gland"])):
        _, loaded = tiny_checkpoint(tmp_path / f"{name}.ckpt", *extra, split=split)
        assert loaded.meta["split"] == split
