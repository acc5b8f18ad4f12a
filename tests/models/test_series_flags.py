"""A checkpoint trained with series dropout records its flags and loads with the flag planes; one
without (and an older one without the keys) keeps today's input; predict_probs appends the flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrparotid.config import load_config
from mrparotid.models.checkpoint import checkpoint_meta, load_checkpoint
from mrparotid.models.lit_module import SliceClassifier
from mrparotid.inference.predict import predict_probs

TINY = ["--model.name", "tiny_resnet", "--data.image_size", "32"]


def save_module(path, *overrides: str, drop_keys: tuple[str, ...] = ()):
    """A SliceClassifier built as fit builds it, saved in the checkpoint format."""
    cfg = load_config(None, [*TINY, *overrides])
    meta = checkpoint_meta(cfg, synthetic=True)
    torch.manual_seed(0)
    module = SliceClassifier(cfg["model"], cfg["optim"], cfg["data"]["channels"], 1, meta=meta)
    for key in drop_keys:
        meta.pop(key)
    torch.save({"state_dict": module.state_dict(), "mrparotid": meta}, path)
    return module


def test_round_trip_with_flags(tmp_path):
    module = save_module(tmp_path / "d.ckpt", "--augment.series_dropout", "0.3",
                         "--data.channels", "[CE-T1,T2,mask]")
    assert module.model.conv1.in_channels == 3 + 2
    loaded = load_checkpoint(tmp_path / "d.ckpt")
    assert loaded.meta["series_dropout"] == 0.3
    assert loaded.series_flags == ("CE-T1", "T2") == loaded.model.series_flags
    assert loaded.model.conv1.in_channels == 5
    for a, b in zip(module.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("drop_keys", [(), ("series_dropout", "series_flags")])
def test_without_dropout_the_input_is_unchanged(tmp_path, drop_keys):
    save_module(tmp_path / "p.ckpt", drop_keys=drop_keys)       # also: a checkpoint from before
    loaded = load_checkpoint(tmp_path / "p.ckpt")
    assert loaded.series_flags == () and loaded.model.conv1.in_channels == 4
    x = np.random.default_rng(0).integers(0, 255, (3, 4, 32, 32), dtype=np.uint8)
    assert predict_probs(loaded.model, x, precision="32-true").shape == (3, 4)


def test_predict_probs_appends_the_present_flags(tmp_path):
    save_module(tmp_path / "d.ckpt", "--augment.series_dropout", "0.5")
    loaded = load_checkpoint(tmp_path / "d.ckpt")
    torch.nn.init.normal_(loaded.model.conv1.weight)           # make the flag planes matter
    x = np.random.default_rng(0).integers(0, 255, (4, 4, 32, 32), dtype=np.uint8)
    every = predict_probs(loaded.model, x, precision="32-true")
    same = predict_probs(loaded.model, x, present=np.ones(3, bool), precision="32-true")
    np.testing.assert_allclose(every, same)                     # default: every series present
    no_ce = predict_probs(loaded.model, x, present=np.array([True, False, True]), precision="32-true")
    assert not np.allclose(no_ce, every)
    rows = np.array([[True, True, True], [True, False, True]] * 2)
    per_row = predict_probs(loaded.model, x, present=rows, batch_size=3, precision="32-true")
    np.testing.assert_allclose(per_row[0], every[0], rtol=1e-5)
    np.testing.assert_allclose(per_row[1], no_ce[1], rtol=1e-5)
    with pytest.raises(ValueError, match="flagged"):
        predict_probs(loaded.model, x, present=np.ones(2, bool))
