"""``configs/segment.yaml``: every key has an effect or is refused (as tests/training/test_config_walk.py
does for the classifier's configs), and the loader refuses bad values with a ConfigError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from config_walk import (assert_key_has_effect, leaves, phantom_probe, seed_probe, skip_bad_probe,
                         split_probe)
from patients import make_study

from mrparotid.config import read_yaml_mapping
from mrparotid.errors import ConfigError
from mrparotid.io.manifest import Manifest, PatientCase
from mrparotid.segmentation.config import SEGMENT_CONFIG, load_segment_config

ALTERNATIVES = {
    "data.manifest": ["{tmp}/m.csv"], "data.cache_dir": ["{tmp}/cache"], "data.series": [["T1", "T2"]],
    "data.percentiles": [[5.0, 90.0]], "model.channels": [[8, 16, 32, 64]], "model.strides": [[2, 2, 1]],
    "model.norm": ["instance"], "trainer.accelerator": ["cpu"], "trainer.precision": ["32-true"],
    "postprocess.threshold": [0.8], "postprocess.min_component_mm3": [1000.0],
    "postprocess.tumour_max_distance_mm": [2.0], "data.spacing_mm": [3.0], "data.empty_fraction": [0.5],
    "data.split_from": ["{tmp}/cls"],
}


def _stack(cfg):
    from mrparotid.segmentation.slices import study_slices

    d = cfg["data"]
    return study_slices(make_study(), d["series"], d["spacing_mm"], tuple(d["percentiles"]))


def _dataset(cfg):
    from mrparotid.segmentation.fit import make_loaders

    torch.manual_seed(0)
    stack = _stack(load_segment_config())
    loader = make_loaders(cfg, {"train": [stack] * 2})["train_dataloaders"]
    x, y = loader.dataset[3]
    return len(loader.dataset), x.numpy().tobytes(), y.numpy().tobytes()


def _loader(cfg):
    from mrparotid.segmentation.fit import make_loaders

    loader = make_loaders(cfg, {"train": [_stack(load_segment_config())]})["train_dataloaders"]
    return loader.batch_size, loader.num_workers


def _skip_bad(cfg, tmp):
    from mrparotid.segmentation.cache import prepare_seg_cohort

    return skip_bad_probe(prepare_seg_cohort, cfg, tmp)


class _FixedLogits(torch.nn.Module):
    """Stands in for the UNet: a gland (logit 4) on the left gland of the test study and a
    3x3x3 tumour (logit 1, p 0.73) two voxels (4 mm) lateral to it (slices at 2 mm)."""

    def forward(self, x):
        out = torch.full((x.shape[0], 2, *x.shape[2:]), -8.0)
        out[2:10, 0, 12:28, 26:34] = 4.0
        out[4:7, 1, 18:21, 36:39] = 1.0
        return out


def _postprocess(cfg):
    from mrparotid.segmentation.infer import LoadedSegmenter, segment_stack, segmenter_meta

    loaded = LoadedSegmenter(_FixedLogits(), segmenter_meta(cfg, False), Path("x"))
    clean = segment_stack(loaded, _stack(load_segment_config(None, {"data": {"spacing_mm": 2.0}})))
    return clean.gland.tobytes(), clean.tumour.tobytes()


def _model(cfg):
    from mrparotid.segmentation.network import build_segmenter

    return str(build_segmenter(cfg["model"], 3))


def _loss(cfg):
    from mrparotid.segmentation.lit_module import segmentation_loss

    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 2, 8, 8, generator=g), (torch.rand(2, 2, 8, 8, generator=g) > 0.7).float()
    return round(float(segmentation_loss(cfg["loss"])(logits, target)), 6)


def _optimizer(cfg):
    from mrparotid.segmentation.lit_module import SegmenterModule

    m = SegmenterModule(dict(cfg["model"], channels=[4, 8], strides=[2]), cfg["optim"], cfg["loss"],
                        cfg["augment"], ["T1"], 3)
    opt = m.configure_optimizers()["optimizer"]
    return opt.defaults["lr"], opt.defaults["weight_decay"]


def _augment(cfg):
    from mrparotid.segmentation.dataset import augment_batch

    torch.manual_seed(0)
    x, y = augment_batch(torch.rand(8, 2, 6, 6), torch.rand(8, 2, 6, 6), cfg["augment"])
    return x.numpy().tobytes(), y.numpy().tobytes()


def _split_from(cfg, tmp):
    """The split segment fit trains on: with data.split_from, the classifier run's ``tmp/cls``."""
    from mrparotid.data.splits import save_split
    from mrparotid.segmentation.fit import choose_splits

    cases = [PatientCase(f"P{i}", "warthin", Path("x")) for i in range(20)]
    (tmp / "cls").mkdir(exist_ok=True)
    save_split(tmp / "cls", {"train": [f"P{i}" for i in range(10)], "val": ["P10"], "test": ["P11"]}, cases)
    return choose_splits(cfg, cases, Path("m.csv"))[0]


def probe(key: str):
    section, _, leaf = key.partition(".")
    explicit = {
        "seed": lambda cfg, **_: seed_probe(cfg),
        "data.manifest": lambda cfg, monkeypatch, **_: phantom_probe(cfg, monkeypatch),
        "data.phantom_patients": lambda cfg, monkeypatch, **_: phantom_probe(cfg, monkeypatch),
        "data.cache_dir": lambda cfg, **_: __import__("mrparotid.segmentation.cache", fromlist=["x"])
        .seg_cache_dir(Manifest(Path("m.csv"), ()), cfg),
        "data.skip_bad": lambda cfg, tmp, **_: _skip_bad(cfg, tmp),
        "data.batch_size": lambda cfg, **_: _loader(cfg), "data.num_workers": lambda cfg, **_: _loader(cfg),
        "data.image_size": lambda cfg, **_: _dataset(cfg), "data.empty_fraction": lambda cfg, **_: _dataset(cfg),
        "augment.shift": lambda cfg, **_: _dataset(cfg),
    }
    for k in ("series", "spacing_mm", "percentiles"):
        explicit[f"data.{k}"] = lambda cfg, **_: _stack(cfg).images.tobytes()
    for k in ("test_fraction", "val_fraction", "split_seed"):
        explicit[f"data.{k}"] = lambda cfg, **_: split_probe(cfg)
    explicit["data.split_from"] = lambda cfg, tmp, **_: _split_from(cfg, tmp)
    if key in explicit:
        return explicit[key]
    by_section = {"model": _model, "loss": _loss, "optim": _optimizer, "augment": _augment,
                  "postprocess": _postprocess}
    if section in by_section:
        return lambda cfg, **_: by_section[section](cfg)
    if section == "trainer":
        from mrparotid.segmentation.fit import trainer_args

        return lambda cfg, **_: trainer_args(cfg, True)[leaf]
    return None


KEYS = list(leaves(read_yaml_mapping(SEGMENT_CONFIG)))


@pytest.mark.parametrize("key", KEYS)
def test_every_segment_key_has_an_effect_or_is_refused(key, tmp_path, monkeypatch):
    monkeypatch.setenv("MRPAROTID_HOME", str(tmp_path / "home"))
    assert_key_has_effect(key, probe(key), load_segment_config(),
                          lambda overrides: load_segment_config(None, overrides), tmp_path, monkeypatch,
                          ALTERNATIVES)


@pytest.mark.parametrize("override", [
    ["--data.spacing_mm", "0"], ["--data.series", "[T1,mask]"], ["--data.series", "[T4]"],
    ["--model.strides", "[2,2]"], ["--model.norm", "group"], ["--postprocess.threshold", "1.5"],
    ["--trainer.max_epochs", "two"], ["--data.percentiles", "[99,1]"], ["--unknown.key", "1"],
    ["--loss.lambda_dice", "0", "--loss.lambda_ce", "0"], ["--trainer.precision", "half"],
])
def test_bad_values_are_refused(override):
    with pytest.raises(ConfigError):
        load_segment_config(None, override)


def test_user_config_and_overrides(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("data:\n  spacing_mm: 1.5\n", encoding="utf-8")
    cfg = load_segment_config(user, ["--trainer.max_epochs", "3", "--data.series", "t2,T1"])
    assert cfg["data"]["spacing_mm"] == 1.5 and cfg["trainer"]["max_epochs"] == 3
    assert cfg["data"]["series"] == ["T1", "T2"]
    assert load_segment_config("segment") == load_segment_config()


def test_split_keys_match_the_classifier_defaults():
    """The segmenter must never train on the classifier's test patients: same split settings."""
    from mrparotid.config import load_config

    seg, cls = load_segment_config()["data"], load_config()["data"]
    assert all(seg[k] == cls[k] for k in ("test_fraction", "val_fraction", "split_seed", "phantom_patients"))
    assert np.isfinite(seg["spacing_mm"])
