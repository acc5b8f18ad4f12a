"""Tests for the reduced ResNet18 family (mrparotid.models.resnet)."""

from __future__ import annotations

import pytest
import torch

from mrparotid.errors import CheckpointError, ConfigError
from mrparotid.models.factory import build_model
from mrparotid.models.pretrained import adapt_input_conv, load_imagenet_weights
from mrparotid.models.resnet import ResNet, reduced_resnet18, tiny_resnet

# torchvision resnet18 state-dict keys of the layers the reduced model shares with it.
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
TORCHVISION_RESNET18_SHARED_KEYS = frozenset(
    ["conv1.weight"]
    + [f"bn1.{s}" for s in _BN]
    + ["layer1.0.conv1.weight"] + [f"layer1.0.bn1.{s}" for s in _BN]
    + ["layer1.0.conv2.weight"] + [f"layer1.0.bn2.{s}" for s in _BN]
    + ["layer1.1.conv1.weight"] + [f"layer1.1.bn1.{s}" for s in _BN]
    + ["layer1.1.conv2.weight"] + [f"layer1.1.bn2.{s}" for s in _BN]
    + ["layer2.0.conv1.weight"] + [f"layer2.0.bn1.{s}" for s in _BN]
    + ["layer2.0.conv2.weight"] + [f"layer2.0.bn2.{s}" for s in _BN]
    + ["layer2.0.downsample.0.weight"] + [f"layer2.0.downsample.1.{s}" for s in _BN]
    + ["layer2.1.conv1.weight"] + [f"layer2.1.bn1.{s}" for s in _BN]
    + ["layer2.1.conv2.weight"] + [f"layer2.1.bn2.{s}" for s in _BN]
    + ["fc.weight", "fc.bias"]
)

# Exact torchvision resnet18 parameter counts: stem conv (3 ch) 9408, bn1 128,
# layer1 147,968, layer2 525,568; fc 128*4+4 = 516; one extra input channel adds 64*49 = 3136.
REDUCED_RESNET18_4CH_PARAMS = 686_724


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def reduced4() -> ResNet:
    torch.manual_seed(0)
    return reduced_resnet18(in_chans=4).eval()


@pytest.mark.parametrize("in_chans", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [64, 224])
def test_output_shape(in_chans, size):
    model = reduced_resnet18(in_chans=in_chans).eval()
    with torch.no_grad():
        out = model(torch.rand(2, in_chans, size, size))
    assert out.shape == (2, 4)
    assert torch.isfinite(out).all()


def test_forward_features_shape(reduced4):
    with torch.no_grad():
        feats = reduced4.forward_features(torch.rand(3, 4, 64, 64))
    assert feats.shape == (3, 128)
    assert reduced4.num_features == 128


def test_state_dict_keys_are_torchvision_names(reduced4):
    keys = set(reduced4.state_dict())
    assert keys <= TORCHVISION_RESNET18_SHARED_KEYS
    assert keys == TORCHVISION_RESNET18_SHARED_KEYS  # nothing of the shared layers missing


def test_attributes_and_stages(reduced4):
    assert reduced4.in_chans == 4 and reduced4.num_classes == 4
    assert reduced4.layers == (2, 2) and reduced4.channels == (64, 128)
    assert not hasattr(reduced4, "layer3")
    assert isinstance(reduced4.layer2[0].downsample, torch.nn.Sequential)
    assert reduced4.layer1[0].downsample is None


def test_param_count(reduced4):
    n = _n_params(reduced4)
    assert n == REDUCED_RESNET18_4CH_PARAMS
    assert 600_000 < n < 1_000_000


def test_kaiming_init_like_torchvision():
    model = reduced_resnet18(in_chans=4)
    w = model.layer1[0].conv1.weight
    expected_std = (2.0 / (64 * 3 * 3)) ** 0.5  # fan_out, ReLU gain
    assert abs(w.std().item() - expected_std) / expected_std < 0.1
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)


def test_gradients_flow():
    torch.manual_seed(0)
    model = tiny_resnet(in_chans=2, num_classes=4, drop_rate=0.2).train()
    x = torch.rand(4, 2, 32, 32)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.conv1.weight.grad.abs().sum() > 0


def test_tiny_resnet_shape_and_size():
    model = tiny_resnet(in_chans=3, num_classes=4).eval()
    assert model(torch.rand(2, 3, 48, 48)).shape == (2, 4)
    assert model.num_features == 16
    assert _n_params(model) < 10_000


@pytest.mark.parametrize("kwargs", [
    dict(layers=()), dict(layers=(2, 2), channels=(64,)), dict(in_chans=0),
    dict(layers=(0, 2)), dict(drop_rate=1.0),
])
def test_bad_args_raise_config_error(kwargs):
    kw = dict(layers=(1, 1), channels=(8, 16), stem_width=8) | kwargs
    with pytest.raises(ConfigError):
        ResNet(**kw)


def test_build_model_names():
    assert build_model("tiny_resnet", in_chans=2).layers == (1, 1)
    assert build_model("reduced_resnet18", in_chans=1).channels == (64, 128)
    m = build_model("resnet", in_chans=3, layers=(1, 1, 1), channels=(8, 16, 32), stem_width=8)
    assert m.num_features == 32 and hasattr(m, "layer3")
    with pytest.raises(ConfigError):
        build_model("resnet50")
    with pytest.raises(ConfigError):
        build_model("resnet", layers=(1,))
    with pytest.raises(ConfigError):
        build_model("tiny_resnet", init="pretrained")


def test_adapt_input_conv():
    w = torch.randn(8, 3, 7, 7)
    assert torch.equal(adapt_input_conv(w, 3), w)
    assert torch.allclose(adapt_input_conv(w, 1), w.sum(1, keepdim=True))
    w4 = adapt_input_conv(w, 4)
    assert w4.shape == (8, 4, 7, 7)
    assert torch.allclose(w4[:, :3], w * 0.75) and torch.allclose(w4[:, 3], w[:, 0] * 0.75)
    w2 = adapt_input_conv(w, 2)
    assert torch.allclose(w2, w[:, :2] * 1.5)


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    """A full-ResNet18-shaped 'ImageNet' state dict with random weights, saved to disk."""
    torch.manual_seed(1)
    full = ResNet(in_chans=3, num_classes=1000, layers=(2, 2, 2, 2), channels=(64, 128, 256, 512))
    with torch.no_grad():  # make BN stats distinguishable from a fresh init
        for t in full.state_dict().values():
            if t.is_floating_point() and t.ndim == 1:  # BN weights, biases, running stats
                t.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    state = full.state_dict()
    torch.save(state, path)
    return path, state


def test_load_imagenet_weights(fake_imagenet):
    path, state = fake_imagenet
    model = reduced_resnet18(in_chans=4)
    fc_before = model.fc.weight.detach().clone()
    loaded = load_imagenet_weights(model, path)
    sd = model.state_dict()
    assert "conv1.weight" in loaded and not any(k.startswith(("fc.", "layer3", "layer4")) for k in loaded)
    assert set(loaded) == set(sd) - {"fc.weight", "fc.bias"}
    for k in sd:
        if k.startswith("layer1") or k.startswith("layer2") or k.startswith("bn1"):
            assert torch.equal(sd[k], state[k]), k
    assert torch.equal(sd["conv1.weight"], adapt_input_conv(state["conv1.weight"], 4))
    assert torch.equal(model.fc.weight, fc_before)


def test_load_imagenet_weights_wrapped_and_via_build(fake_imagenet, tmp_path):
    path, state = fake_imagenet
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state}, wrapped)
    model = build_model("reduced_resnet18", in_chans=1, init=f"imagenet:{wrapped}")
    assert torch.equal(model.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def test_load_imagenet_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_imagenet_weights(tiny_resnet(), tmp_path / "nope.pth")


def test_load_imagenet_unreadable_or_unmatched(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as info:
        load_imagenet_weights(tiny_resnet(), bad)
    assert "\n" not in str(info.value)
    other = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="no parameter"):
        load_imagenet_weights(tiny_resnet(), other)
