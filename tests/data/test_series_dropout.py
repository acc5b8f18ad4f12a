"""Series dropout and present flags (mrparotid.data.series_dropout): what is zeroed is what is
flagged absent, at least one series is kept, and inference flags come from the series present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrparotid.config import load_config
from mrparotid.constants import PAPER_SERIES

CHANNELS = (*PAPER_SERIES, "mask")   # today's input: the three series and the mask
from mrparotid.data.augment import AugmentConfig
from mrparotid.data.series_dropout import (SeriesDropout, append_present_flags, draw_present,
                                           drop_series, flagged_series, mask_series, present_of,
                                           series_flags_for)
from mrparotid.errors import ConfigError


def batch(b: int = 4000, channels=CHANNELS, size: int = 4) -> torch.Tensor:
    """Every pixel > 0, so a zeroed plane is an all-zero plane."""
    torch.manual_seed(1)
    return 0.1 + 0.9 * torch.rand(b, len(channels), size, size)


def test_flagged_series_are_the_model_series_in_fixed_order():
    assert flagged_series(("T2", "mask", "T1")) == ("T1", "T2")
    assert series_flags_for(CHANNELS, 0.0) == ()            # no dropout: no flag planes
    assert series_flags_for(("T1", "CE-T1", "T2", "mask"), 0.3) == ("T1", "CE-T1", "T2")
    assert series_flags_for(("mask",), 0.3) == ()
    assert series_flags_for(("T2", "ADC", "mask", "DWI"), 0.3) == ("T2", "DWI", "ADC")   # any role


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_keeps_a_series_and_zeroes_at_rate_p(p):
    x = batch()
    torch.manual_seed(0)
    out, present = drop_series(x, CHANNELS, p)
    assert present.shape == (len(x), 3) and present.dtype == torch.bool
    assert present.any(1).all(), "every sample keeps at least one series"
    zeroed = (out[:, :3] == 0).flatten(2).all(2)              # (B, 3): planes that are all zero
    assert torch.equal(zeroed, ~present), "a series is zeroed exactly where it is flagged absent"
    assert torch.equal(out[:, 3], x[:, 3]), "the mask channel is never dropped"
    kept = present.unsqueeze(-1).unsqueeze(-1)
    assert torch.equal(out[:, :3][kept.expand_as(out[:, :3])], x[:, :3][kept.expand_as(x[:, :3])])
    expected = p - p ** 3 / 3                                  # the all-dropped rows keep one
    assert abs((~present).float().mean().item() - expected) < 0.02
    assert not torch.equal(out, x) and x.min() > 0             # the input is not modified


def test_one_series_is_never_dropped():
    x = batch(200, ("T2", "mask"))
    out, present = drop_series(x, ("T2", "mask"), 0.9)
    assert present.all() and torch.equal(out, x)


def test_draw_present_uses_the_global_rng():
    torch.manual_seed(3)
    a = draw_present(50, 3, 0.5)
    torch.manual_seed(3)
    assert torch.equal(a, draw_present(50, 3, 0.5))


def test_flags_are_constant_planes_after_the_channels():
    x = batch(3, size=5)
    present = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])
    out = append_present_flags(x, present)
    assert out.shape == (3, 7, 5, 5) and torch.equal(out[:, :4], x)
    assert torch.equal(out[:, 4:, 2, 3], present.float())
    assert (out[:, 4:] == out[:, 4:, :1, :1]).all()
    same = append_present_flags(x, np.array([True, False, True]))   # (k,): every sample
    assert torch.equal(same[:, 4:, 0, 0], torch.tensor([[1.0, 0.0, 1.0]] * 3))
    u8 = append_present_flags(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), [True])
    assert u8.dtype == torch.uint8 and (u8[:, 1] == 255).all()


def test_training_drops_and_flags_evaluation_flags_every_series_present():
    x = batch(300)
    step = SeriesDropout(CHANNELS, 0.4)
    torch.manual_seed(0)
    train = step(x, train=True)
    assert train.shape == (300, 7, 4, 4)
    absent = (train[:, :3] == 0).flatten(2).all(2)
    assert absent.any() and torch.equal(train[:, 4:, 0, 0] == 0, absent)   # flags match the zeroing
    evaluation = step(x, train=False)
    assert torch.equal(evaluation[:, :4], x) and (evaluation[:, 4:] == 1).all()
    off = SeriesDropout(CHANNELS, 0.0)
    assert off(x, train=True) is x and off(x, train=False) is x        # today's input exactly


def test_inference_flags_come_from_the_series_present():
    assert present_of(("T1", "CE-T1", "T2"), {"T1", "T2"}).tolist() == [True, False, True]
    crops = np.full((2, 4, 3, 3), 200, np.uint8)
    x, present = mask_series(crops, CHANNELS, ("T1", "T2"))
    assert present.tolist() == [True, False, True]
    assert (x[:, 1] == 0).all() and (x[:, [0, 2, 3]] == 200).all() and (crops == 200).all()
    t, present = mask_series(torch.as_tensor(crops), ("CE-T1", "T2", "mask"), ("CE-T1",))
    assert present.tolist() == [True, False] and (t[:, 1] == 0).all() and (t[:, 2] == 200).all()


def test_the_rate_is_a_config_key_with_a_range():
    assert load_config(None)["augment"]["series_dropout"] == 0.0
    assert AugmentConfig.from_any({"series_dropout": 0.3}).series_dropout == 0.3
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="series_dropout"):
            AugmentConfig.from_any({"series_dropout": bad})


def test_the_datamodule_appends_flags_to_evaluation_batches():
    from pathlib import Path

    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.io.manifest import Manifest

    cfg = load_config(None, ["--augment.series_dropout", "0.3"])
    dm = ParotidDataModule(cfg, Manifest(Path("m.csv"), ()), progress=False)
    x = torch.full((2, 4, 3, 3), 255, dtype=torch.uint8)
    out, _ = dm.on_after_batch_transfer((x, torch.zeros(2, dtype=torch.long)), 0)
    assert out.shape == (2, 7, 3, 3) and (out == 1).all()
    plain = ParotidDataModule(load_config(None), Manifest(Path("m.csv"), ()), progress=False)
    assert plain.on_after_batch_transfer((x, torch.zeros(2, dtype=torch.long)), 0)[0].shape == (2, 4, 3, 3)
