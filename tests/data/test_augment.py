"""Tests for batched training augmentation (mrparotid.data.augment)."""

from __future__ import annotations

import pytest
import torch

from mrparotid.data.augment import AugmentConfig, BatchAugment, affine_matrices
from mrparotid.constants import PAPER_SERIES

CHANNELS = (*PAPER_SERIES, "mask")   # today's input: the three series and the mask
from mrparotid.errors import ConfigError

NEUTRAL = dict(hflip_p=0.0, vflip_p=0.0, degrees=0.0, translate=0.0, scale=(1.0, 1.0),
               brightness=0.0, contrast=0.0, gamma=(1.0, 1.0), p=1.0)


def make_batch(b: int = 4, channels=CHANNELS, size: tuple[int, int] = (32, 40), seed: int = 0):
    """Random images in [0, 1]; the mask channel (if any) is a binary off-centre rectangle."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, len(channels), *size, generator=g)
    if "mask" in channels:
        m = channels.index("mask")
        x[:, m] = 0.0
        x[:, m, 5:20, 8:30] = 1.0
    return x


def augment(channels=CHANNELS, **cfg) -> BatchAugment:
    return BatchAugment(channels, cfg or None).train()


def test_shape_dtype_device_preserved():
    torch.manual_seed(0)
    x = make_batch()
    out = augment()(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x)
    out64 = augment()(x.double())
    assert out64.dtype == torch.float64


def test_eval_mode_is_identity():
    x = make_batch()
    aug = BatchAugment(CHANNELS, dict(hflip_p=1.0, degrees=30.0)).eval()
    assert aug(x) is x


def test_neutral_config_is_identity():
    torch.manual_seed(0)
    x = make_batch()
    assert torch.equal(augment(**NEUTRAL)(x), x)


def test_p_zero_is_identity():
    torch.manual_seed(0)
    x = make_batch()
    assert torch.equal(augment(p=0.0, hflip_p=1.0, brightness=0.3)(x), x)


def test_hflip_only_flips_exactly():
    x = make_batch()
    out = augment(**(NEUTRAL | dict(hflip_p=1.0)))(x)
    assert torch.equal(out, x.flip(-1))


@pytest.mark.parametrize("flip, dims", [(dict(hflip_p=1.0), (-1,)), (dict(vflip_p=1.0), (-2,)),
                                        (dict(hflip_p=1.0, vflip_p=1.0), (-2, -1))])
def test_flips_folded_into_the_affine_match_index_flips(flip, dims):
    """With an (identity-sized) affine part the flips ride on the sampling grid; same result."""
    x = make_batch()
    out = augment(**(NEUTRAL | flip | dict(degrees=1e-9)))(x)
    assert torch.allclose(out, x.flip(dims), atol=1e-5)


def test_vflip_only_flips_exactly():
    x = make_batch()
    out = augment(**(NEUTRAL | dict(vflip_p=1.0)))(x)
    assert torch.equal(out, x.flip(-2))


@pytest.mark.parametrize("cfg", [{}, dict(degrees=45.0, scale=(0.5, 1.5), translate=0.3)])
def test_mask_channel_stays_binary(cfg):
    torch.manual_seed(1)
    x = make_batch(b=8)
    out = augment(**cfg)(x)
    m = out[:, CHANNELS.index("mask")]
    assert torch.all((m == 0) | (m == 1))
    assert m.sum() > 0


def test_intensity_jitter_leaves_mask_untouched():
    torch.manual_seed(2)
    x = make_batch(b=8)
    cfg = NEUTRAL | dict(brightness=0.5, contrast=0.5, gamma=(0.5, 2.0))
    out = augment(**cfg)(x)
    m = CHANNELS.index("mask")
    assert torch.equal(out[:, m], x[:, m])
    assert not torch.allclose(out[:, :m], x[:, :m])


def test_intensity_matches_its_formula_per_sample_and_channel():
    """(y - mean) * f + mean + offset, clamped to [0, 1], then ** gamma; 0 stays 0, no NaN."""
    x = make_batch(b=5)
    x[:, 0, :4] = 0.0                                # exact zeros: gamma must keep them at 0
    cfg = NEUTRAL | dict(brightness=0.3, contrast=0.5, gamma=(0.5, 2.0))
    aug = augment(**cfg)
    torch.manual_seed(7)
    out = aug(x.clone())
    torch.manual_seed(7)                             # the same draws, in the module's order
    k, dev = 3, x.device
    f = 0.5 + torch.rand((5, k, 1, 1), device=dev)
    offset = -0.3 + 0.6 * torch.rand((5, k, 1, 1), device=dev)
    log_g = torch.log(torch.tensor(0.5)) + (torch.log(torch.tensor(2.0)) - torch.log(torch.tensor(0.5))) \
        * torch.rand((5, k, 1, 1), device=dev)
    y = x[:, :k]
    mean = y.mean(dim=(-2, -1), keepdim=True)
    want = ((y - mean) * f + mean + offset).clamp(0, 1) ** torch.exp(log_g)
    assert torch.allclose(out[:, :k], want, atol=1e-5)
    assert not torch.isnan(out).any()
    assert torch.all(out[:, 0, :4][want[:, 0, :4] == 0] == 0)


def test_geometry_is_shared_by_all_channels():
    torch.manual_seed(3)
    base = make_batch(b=6, channels=("T1",))
    x = base.repeat(1, 3, 1, 1)  # three identical series channels
    out = augment(channels=("T1", "CE-T1", "T2"),
                  **(NEUTRAL | dict(hflip_p=0.5, vflip_p=0.5, degrees=20.0, translate=0.1,
                                    scale=(0.8, 1.2))))(x)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], out[:, 2])
    assert not torch.allclose(out[:, 0], base[:, 0])


def test_samples_get_different_parameters():
    torch.manual_seed(4)
    x = make_batch(b=1, channels=("T1",)).repeat(4, 1, 1, 1)
    out = augment(channels=("T1",))(x)
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("channels", [("T1", "T2"), ("CE-T1",), ("T2", "mask")])
def test_output_in_unit_range_and_channel_subsets(channels):
    torch.manual_seed(5)
    x = make_batch(b=5, channels=channels)
    out = augment(channels=channels, brightness=0.5, contrast=0.8, degrees=30.0)(x)
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_seeded_rng_is_reproducible():
    x = make_batch()
    torch.manual_seed(7)
    a = augment()(x)
    torch.manual_seed(7)
    b = augment()(x)
    assert torch.equal(a, b)


def test_affine_matrices_identity_and_rot180():
    one = torch.ones(2)
    theta = affine_matrices(torch.zeros(2), torch.zeros(2, 2), one, 32, 40)
    assert torch.allclose(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3))
    x = make_batch(b=2, channels=("T1",))
    theta = affine_matrices(torch.full((2,), 180.0), torch.zeros(2, 2), one, 32, 40)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    assert torch.allclose(out, x.flip(-1).flip(-2), atol=1e-5)


def test_affine_matrices_rot90_square_and_shift():
    x = make_batch(b=1, channels=("T1",), size=(24, 24))
    theta = affine_matrices(torch.tensor([90.0]), torch.zeros(1, 2), torch.ones(1), 24, 24)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    rotated = [torch.rot90(x, k, dims=(-2, -1)) for k in (1, 3)]
    assert any(torch.allclose(out, r, atol=1e-5) for r in rotated)
    # shifting by a quarter of the width moves content right by 10 of 40 pixels
    x = make_batch(b=1, channels=("T1",))
    theta = affine_matrices(torch.zeros(1), torch.tensor([[0.25, 0.0]]), torch.ones(1), 32, 40)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    assert torch.allclose(out[..., 10:], x[..., :30], atol=1e-5)
    assert out[..., :10].abs().max() < 1e-5


def test_config_validation():
    assert AugmentConfig.from_any(None) == AugmentConfig()
    assert AugmentConfig.from_any({"degrees": 5, "scale": [1, 1]}).scale == (1.0, 1.0)
    with pytest.raises(ConfigError, match="unknown augment option"):
        AugmentConfig.from_any({"rotate": 5})
    for bad in (dict(hflip_p=1.5), dict(degrees=-1), dict(scale=(1.2, 0.8)), dict(gamma=(0, 1)),
                dict(scale=(1,)), dict(translate=2.0)):
        with pytest.raises(ConfigError):
            AugmentConfig(**bad)
    with pytest.raises(ConfigError):
        BatchAugment(("T1", "FLAIR"))


def test_wrong_input_shape_raises():
    with pytest.raises(ValueError, match="expects"):
        augment(channels=("T1", "T2"))(make_batch(channels=CHANNELS))


def test_mask_jitter_moves_the_contour_edge_keeps_it_binary_and_leaves_the_series_alone():
    import torch

    from mrparotid.data.augment import BatchAugment

    torch.manual_seed(0)
    x = torch.rand(8, 4, 64, 64)
    x[:, 3] = 0
    x[:, 3, 16:48, 20:44] = 1
    neutral = {"hflip_p": 0, "degrees": 0, "translate": 0, "scale": [1, 1], "brightness": 0, "contrast": 0,
               "gamma": [1, 1], "mask_jitter": 1.0, "mask_jitter_px": 6}
    out = BatchAugment(("T1", "CE-T1", "T2", "mask"), neutral).train()(x.clone())
    assert torch.equal(out[:, :3], x[:, :3])
    assert set(out[:, 3].unique().tolist()) <= {0.0, 1.0}
    changed = (out[:, 3] != x[:, 3]).flatten(1).sum(1)
    assert (changed > 0).all() and (changed < 0.5 * x[:, 3].flatten(1).sum(1)).all()
    off = BatchAugment(("T1", "CE-T1", "T2", "mask"), {**neutral, "mask_jitter": 0.0}).train()(x.clone())
    assert torch.equal(off, x)


def test_a_quantitative_channel_gets_the_geometry_but_never_the_intensity_change():
    """The ADC is in physical units (x 10^-3 mm²/s mapped by a fixed window): brightness, contrast
    and gamma would change what the value means, so they skip it; flips still apply."""
    channels = ("T1", "ADC", "mask")
    x = make_batch(b=6, channels=channels)
    out = augment(channels, **(NEUTRAL | dict(brightness=0.3, contrast=0.5, gamma=(0.5, 2.0))))(x.clone())
    assert torch.equal(out[:, 1], x[:, 1])
    assert not torch.allclose(out[:, 0], x[:, 0])
    flipped = augment(channels, **(NEUTRAL | dict(hflip_p=1.0)))(x.clone())
    assert torch.equal(flipped[:, 1], x[:, 1].flip(-1))
