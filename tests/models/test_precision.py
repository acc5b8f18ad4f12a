"""Precision and memory format for the hardware: the auto choice (capability check monkeypatched),
config errors and the bf16 warning, the channels_last path on tiny models, float outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mrparotid.models.precision as precision
from mrparotid.config import load_config
from mrparotid.errors import ConfigError
from mrparotid.models.precision import (PRECISIONS, canonical_precision, channels_last, cpu_flags,
                                        inference_autocast, model_channels_last, resolve_precision)

TINY_MODEL = {"name": "tiny_resnet", "layers": [1, 1], "channels": [8, 16], "init": "random",
              "drop_rate": 0.0}


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Set whether this 'CPU' has native bf16: ``cpu_bf16(True)``."""
    def set_native(native: bool) -> None:
        why = "the CPU has native bf16 (amx_bf16)" if native else "the CPU has no native bf16"
        monkeypatch.setattr(precision, "cpu_bf16_native", lambda: (native, why))
    monkeypatch.setattr(precision, "_warned", set())
    return set_native


@pytest.mark.parametrize("value, canonical", [("auto", "auto"), ("32-true", "32-true"), (32, "32-true"),
                                              ("bf16", "bf16-mixed"), (16, "16-mixed"), ("64", "64-true")])
def test_precision_values_and_lightning_spellings(value, canonical):
    assert canonical_precision(value) == canonical


@pytest.mark.parametrize("value", ["17", 17, "bf16-true", "fp8", True, None, [32]])
def test_an_unknown_precision_lists_the_valid_values(value):
    with pytest.raises(ConfigError) as exc:
        canonical_precision(value)
    text = str(exc.value)
    assert "\n" not in text and all(p in text for p in PRECISIONS)


@pytest.mark.parametrize("native, chosen", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_picks_bf16_only_where_the_cpu_has_it(cpu_bf16, native, chosen):
    cpu_bf16(native)
    got, why = resolve_precision("auto", "cpu")
    assert got == chosen and why.startswith("auto on cpu: the CPU has")


def test_explicit_values_are_kept(cpu_bf16):
    cpu_bf16(True)
    assert resolve_precision("32-true", "cpu")[0] == "32-true"
    assert resolve_precision("64-true", "cpu")[0] == "64-true"
    assert resolve_precision("bf16-mixed", "cpu") == ("bf16-mixed", "set in trainer.precision")
    assert resolve_precision("16-mixed", "gpu")[0] == "16-mixed"        # CUDA: allowed
    cpu_bf16(False)
    assert "emulated" in resolve_precision("bf16-mixed", "cpu")[1]


def test_auto_on_a_machine_without_cuda_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cuda_bf16_native", lambda: (False, "no CUDA GPU is available"))
    assert resolve_precision("auto", "auto", cuda=True) == ("32-true", "auto on cuda: no CUDA GPU is available")


def test_16_mixed_on_a_cpu_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="16-mixed") as exc:
        load_config(None, ["--trainer.precision", "16-mixed", "--trainer.accelerator", "cpu"])
    assert "\n" not in str(exc.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)     # auto accelerator, no GPU
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        load_config(None, ["--trainer.precision", "16"])


def test_an_unknown_precision_in_the_config_is_refused():
    with pytest.raises(ConfigError, match="32-true, bf16-mixed"):
        load_config(None, ["--trainer.precision", "bf16-true"])


def test_bf16_without_native_support_warns_once_in_one_line(cpu_bf16, capsys):
    cpu_bf16(False)
    cfg = load_config(None, ["--trainer.precision", "bf16-mixed", "--trainer.accelerator", "cpu"])
    load_config(None, ["--trainer.precision", "bf16", "--trainer.accelerator", "cpu"])
    assert cfg["trainer"]["precision"] == "bf16-mixed"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "emulated and slow" in err[0] and "32-true" in err[0]
    cpu_bf16(True)
    load_config(None, ["--trainer.precision", "bf16-mixed", "--trainer.accelerator", "cpu"])
    load_config(None, [])                                          # auto never warns
    assert capsys.readouterr().err == ""


def test_default_config_is_auto_and_fit_resolves_it(cpu_bf16):
    from mrparotid.training.fit import trainer_kwargs

    cfg = load_config(None, ["--trainer.accelerator", "cpu"])
    assert cfg["trainer"]["precision"] == "auto"
    cpu_bf16(True)
    assert trainer_kwargs(cfg, cuda=False)["precision"] == "bf16-mixed"
    cpu_bf16(False)
    assert trainer_kwargs(cfg, cuda=False)["precision"] == "32-true"


@pytest.mark.parametrize("text, native", [
    ("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n", True),
    ("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n", False),
    ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),        # Arm (Graviton3)
])
def test_cpu_flags_from_proc_cpuinfo(tmp_path, monkeypatch, text, native):
    path = tmp_path / "cpuinfo"
    path.write_text(text, encoding="utf-8")
    flags = cpu_flags(path)
    assert bool(flags & precision.BF16_CPU_FLAGS) is native
    assert cpu_flags(tmp_path / "absent") == frozenset()
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):   # torch's check: none
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    precision.cpu_bf16_native.cache_clear()
    try:
        assert precision.cpu_bf16_native()[0] is native
    finally:
        precision.cpu_bf16_native.cache_clear()


@pytest.mark.parametrize("native", [True, False])
def test_inference_autocast_follows_the_choice(cpu_bf16, native):
    cpu_bf16(native)
    with inference_autocast("auto", "cpu"):
        assert torch.is_autocast_enabled("cpu") is native
        if native:
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with inference_autocast("32-true", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with inference_autocast("16-mixed", "cpu"):                      # never float16 on a CPU
        assert not torch.is_autocast_enabled("cpu")


def test_channels_last_layout_keeps_values_and_the_state_dict():
    from mrparotid.models.factory import build_classifier

    x = torch.rand(2, 3, 8, 8)
    y = channels_last(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, y)
    assert channels_last(y) is y and channels_last(torch.rand(3, 4)).is_contiguous()
    assert channels_last(torch.rand(1, 2, 3, 4, 5)).is_contiguous(memory_format=torch.channels_last_3d)
    torch.manual_seed(0)
    plain = build_classifier(TINY_MODEL, 3).eval()
    fast = build_classifier(TINY_MODEL, 3).eval()
    fast.load_state_dict(plain.state_dict())
    model_channels_last(fast)
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast(y), plain(x), rtol=1e-4, atol=1e-5)
    again = build_classifier(TINY_MODEL, 3)
    again.load_state_dict(fast.state_dict())                   # NHWC weights load into NCHW
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), plain.state_dict().values()))


@pytest.mark.parametrize("native", [True, False])
def test_predict_probs_float64_in_either_precision(cpu_bf16, native):
    from mrparotid.inference.predict import predict_probs
    from mrparotid.models.factory import build_classifier

    torch.manual_seed(0)
    model = build_classifier(TINY_MODEL, 4)
    x = torch.randint(0, 256, (5, 4, 16, 16), dtype=torch.uint8)
    exact = predict_probs(model, x, batch_size=2, precision="32-true")
    cpu_bf16(native)
    probs = predict_probs(model, x, batch_size=2)                       # auto
    assert probs.dtype == np.float64 and probs.shape == (5, 4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probs, exact, atol=0.05 if native else 1e-6)
    assert next(model.parameters()).dtype == torch.float32              # weights stay float32


def test_lit_module_is_channels_last_and_returns_float32_logits():
    from mrparotid.models.lit_module import SliceClassifier

    module = SliceClassifier(TINY_MODEL, {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0,
                                          "scheduler": "none"}, ["T1", "mask"], 1)
    conv = next(m for m in module.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = module(torch.rand(3, 2, 16, 16))                       # NCHW input is accepted
    assert logits.dtype == torch.float32 and logits.shape == (3, 4)
    loss, _, _ = module.model_step((torch.rand(3, 2, 16, 16), torch.tensor([0, 1, 3])))
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("training", [True, False])
def test_datamodule_batches_are_channels_last_float(training):
    from types import SimpleNamespace

    from mrparotid.data.datamodule import ParotidDataModule
    from mrparotid.io.manifest import Manifest
    from pathlib import Path

    cfg = load_config(None, ["--data.channels", "[T1,mask]"])
    dm = ParotidDataModule(cfg, Manifest(Path("m.csv"), ()), progress=False)
    dm.trainer = SimpleNamespace(training=training)
    x = torch.randint(0, 256, (3, 2, 16, 16), dtype=torch.uint8)
    out, y = dm.on_after_batch_transfer((x, torch.zeros(3, dtype=torch.long)), 0)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    if not training:
        assert torch.equal(out, x.float() / 255.0)


def test_fit_says_which_precision_it_chose_and_why(cpu_bf16, capsys):
    from mrparotid.training.fit import precision_note, trainer_kwargs

    cpu_bf16(True)
    cfg = load_config(None, ["--trainer.accelerator", "cpu"])
    note = precision_note(cfg, trainer_kwargs(cfg, cuda=False)["precision"])
    assert note == {"trainer": "bf16-mixed", "reason": "auto on cpu: the CPU has native bf16 (amx_bf16)",
                    "memory_format": "channels_last"}
    assert capsys.readouterr().out.strip() == ("precision: bf16-mixed (auto on cpu: the CPU has native "
                                               "bf16 (amx_bf16)); model and batches channels_last")
