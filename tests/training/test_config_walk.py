"""Every key of every shipped config has an effect or is refused: each key is changed in turn and
must change what the object that uses it sees (a probe), or be refused with a ConfigError.

The walk is data-driven: a key added to a shipped config fails here until it has a probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from config_walk import (assert_key_has_effect, leaves, phantom_probe, seed_probe, skip_bad_probe,
                         split_probe)
from mrparotid.config import CONFIG_DIR, channel_options, load_config, read_yaml_mapping
from mrparotid.io.manifest import Manifest, PatientCase

#: segment.yaml and serve.yaml have their own keys and loaders: tests/segmentation/
#: test_segment_config.py walks the first; tests/serve/test_network.py checks the second's refusals.
SHIPPED = sorted(p.name for p in CONFIG_DIR.glob("*.yaml")
                 if p.name not in ("dicom_roles.yaml", "segment.yaml", "serve.yaml"))

#: New values for keys whose change cannot be derived from the type (first one != current).
ALTERNATIVES = {
    "data.manifest": ["{tmp}/m.csv"], "data.cache_dir": ["{tmp}/cache"],
    "data.dicom_roles": ["{tmp}/roles.yaml"], "data.series_mask": ["tumour", "gland"],
    "data.gland_channel": ["t1", "mask"], "data.channels": [["T1", "T2"]],
    "data.percentiles": [[2.0, 98.0]], "data.adc_range": [[0.0, 4.0]], "model.name": ["tiny_resnet", "reduced_resnet18"],
    "model.layers": [[1, 1]], "model.channels": [[8, 16]], "model.init": ["imagenet:{tmp}/no.pth"],
    "optim.optimizer": ["adam", "adamw"], "optim.class_weights": ["balanced"],
    "optim.scheduler": ["paper", "cosine"], "augment.scale": [[0.8, 1.2]], "augment.gamma": [[0.7, 1.4]],
    "trainer.accelerator": ["cpu", "auto"], "trainer.strategy": ["ddp", "auto"],
    "trainer.precision": ["64-true", "32-true"],
}


def _crops() -> np.ndarray:
    rng = np.random.default_rng(0)
    crops = rng.integers(1, 255, size=(2, 5, 8, 8), dtype=np.uint8)
    crops[:, 3, :, :4] = 0        # the gland mask covers the right half,
    crops[:, 4, :4, :] = 0        # the tumour mask the lower half
    return crops


def _loader(cfg):
    from mrparotid.data.datamodule import ParotidDataModule, SplitData

    dm = ParotidDataModule(cfg, Manifest(Path("m.csv"), ()), progress=False)
    dm.data = {"train": SplitData(torch.zeros((40, 1, 2, 2), dtype=torch.uint8), torch.zeros(40, dtype=torch.long),
                                  *[np.zeros(40)] * 4)}
    loader = dm.train_dataloader()
    return loader.batch_size, loader.num_workers


def _schedule(cfg):
    from mrparotid.models.lit_module import lr_factor

    return [round(lr_factor(e, cfg["optim"], int(cfg["trainer"]["max_epochs"])), 6)
            for e in (0, 1, 2, 5, 30, 599, 600, 650, 700, 800, 1199)]


def _optimizer(cfg):
    from mrparotid.models.lit_module import SliceClassifier

    opt = SliceClassifier(dict(cfg["model"], name="tiny_resnet", layers=[1, 1], channels=[8, 16]),
                          cfg["optim"], ["T1"], 10).configure_optimizers()["optimizer"]
    return type(opt).__name__, opt.defaults["lr"], opt.defaults["weight_decay"]


def _model(cfg):
    from mrparotid.models.factory import build_classifier

    m = build_classifier(cfg["model"], 4)
    return m.layers, m.channels, str(m)


def _skip_bad(cfg, tmp):
    from mrparotid.data.cache import prepare_cohort

    return skip_bad_probe(prepare_cohort, cfg, tmp)


def _cache(cfg):
    from mrparotid.data.cache import cache_key, default_cache_dir

    case = PatientCase("P", "warthin", Path("x"))
    return cache_key(case, [], cfg), default_cache_dir(Manifest(Path("m.csv"), ()), cfg)


PROBES = {
    "seed": lambda cfg, **_: seed_probe(cfg),
    "data.manifest": lambda cfg, monkeypatch, **_: phantom_probe(cfg, monkeypatch),
    "data.phantom_patients": lambda cfg, monkeypatch, **_: phantom_probe(cfg, monkeypatch),
    "data.skip_bad": lambda cfg, tmp, **_: _skip_bad(cfg, tmp),
    "data.dicom_roles": lambda cfg, **_: _roles(cfg),
    "data.test_fraction": lambda cfg, **_: split_probe(cfg),
    "data.val_fraction": lambda cfg, **_: split_probe(cfg), "data.split_seed": lambda cfg, **_: split_probe(cfg),
    "data.batch_size": lambda cfg, **_: _loader(cfg), "data.num_workers": lambda cfg, **_: _loader(cfg),
    "rule.malignant_min_slices": lambda cfg, **_: _meta(cfg)["rule"],
    "decision.target_sensitivity": lambda cfg, **_: _decision(cfg),
    "decision.target_specificity": lambda cfg, **_: _decision(cfg),
    "decision.min_val_patients": lambda cfg, **_: _decision(cfg),
    "decision.masks": lambda cfg, **_: _decision_masks(cfg),
    "decision.min_seg_dice_gland": lambda cfg, tmp, **_: _seg_floor(cfg, tmp),
    "decision.min_seg_dice_tumour": lambda cfg, tmp, **_: _seg_floor(cfg, tmp),
    "decision.cross_fit": lambda cfg, **_: _decision(cfg),
    "optim.ema_decay": lambda cfg, **_: _ema(cfg),
    "data.max_gap_slices": lambda cfg, tmp, **_: _gap(cfg, tmp),
}
ALTERNATIVES.update({"decision.masks": ["auto", "given"], "decision.min_val_patients": [20],
                     "decision.min_seg_dice_gland": [0.95], "decision.min_seg_dice_tumour": [0.95],
                     "data.max_gap_slices": [0], "data.gland_close_px": [0.0, 14.0]})


def _decision(cfg):
    """The decision record fit chooses from the ``decision:`` section on 24 validation patients."""
    import numpy as np

    from calibration_data import patients_table
    from mrparotid.decision.fit import fit_decision
    from mrparotid.evaluation.metrics import patient_slices

    rng = np.random.default_rng(0)
    pats = {f"M{i}": ("malignant", list(rng.uniform(0.3, 0.95, 3))) for i in range(12)}
    pats.update({f"B{i}": ("warthin", list(rng.uniform(0.02, 0.6, 3))) for i in range(12)})
    return fit_decision(patient_slices(patients_table(pats))[0], cfg["decision"], warn=False).to_dict()


def _decision_masks(cfg):
    """The masks ``fit`` chooses the decision on (auto refuses a run without a segmenter)."""
    from mrparotid.training.selection import decision_masks

    return decision_masks(cfg, segmenter=None) if cfg["decision"]["masks"] == "given" else \
        decision_masks(cfg, segmenter=object())


def _seg_floor(cfg, tmp):
    """Whether a segmenter with validation Dice 0.9 / 0.9 is trusted under the floors."""
    import json

    from mrparotid.inference.trust import segmenter_reasons

    (tmp / "seg" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (tmp / "seg" / "summary.json").write_text(json.dumps({"val": {"gland_dice": 0.9, "tumour_dice": 0.9}}))
    floors = {k: cfg["decision"][f"min_seg_dice_{k}"] for k in ("gland", "tumour")}
    return segmenter_reasons(tmp / "seg" / "checkpoints" / "best.ckpt", floors, None, (1.0, 1.0, 1.0))


def _ema(cfg):
    """The averaged weight after one EMA step from 0 towards 1 (none without averaging)."""
    from mrparotid.training.selection import weight_averaging

    return [float(cb._kwargs["avg_fn"](torch.zeros(1), torch.ones(1), torch.tensor(1)))
            for cb in weight_averaging(cfg)]


def _gap(cfg, tmp):
    """Whether a DICOM series with one missing slice is read (interpolated) or refused."""
    import warnings

    from patients import patient_arrays, to_image
    from mrparotid.data.preprocess import load_study
    from mrparotid.dicom.writer import write_dicom_series
    from mrparotid.errors import InputError
    from patients import write_patient

    folder = tmp / f"gap{cfg['data']['max_gap_slices']}" / "P9"
    if not folder.exists():
        write_patient(folder, omit=("T2",))
        written = write_dicom_series(to_image(patient_arrays()["T2"]), folder / "T2", "1.2.826.0.1.3680043.10.1999.9.2")
        written[5].unlink()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_study(PatientCase("P9", "warthin", folder), mode="train",
                              max_gap_slices=cfg["data"]["max_gap_slices"]).notes
    except InputError:
        return "refused"
for key in ("cache_dir", "image_size", "margin_mm", "percentiles"):
    PROBES[f"data.{key}"] = lambda cfg, **_: _cache(cfg)
for key in ("optimizer", "lr", "weight_decay"):
    PROBES[f"optim.{key}"] = lambda cfg, **_: _optimizer(cfg)
for key in ("scheduler", "warmup_epochs", "hold_epochs", "step_epochs", "gamma"):
    PROBES[f"optim.{key}"] = lambda cfg, **_: _schedule(cfg)
PROBES["optim.class_weights"] = lambda cfg, **_: _class_weights(cfg)
PROBES["augment.series_dropout"] = lambda cfg, **_: _series_dropout(cfg)
# the ADC window makes the crops of a model whose channels name the ADC (and no others)
PROBES["data.adc_range"] = lambda cfg, **_: _cache(dict(cfg, data=dict(
    cfg["data"], channels=[*cfg["data"]["channels"], "ADC"])))


def _series_dropout(cfg):
    """What the rate changes: the checkpoint record, the model's input planes, a training batch."""
    from mrparotid.data.series_dropout import SeriesDropout
    from mrparotid.models.factory import build_classifier

    meta = _meta(cfg)
    model = build_classifier(dict(cfg["model"], name="tiny_resnet"), len(cfg["data"]["channels"]),
                             series_flags=meta["series_flags"])
    torch.manual_seed(0)
    x = SeriesDropout(cfg["data"]["channels"], cfg["augment"]["series_dropout"])(
        torch.ones(64, len(cfg["data"]["channels"]), 2, 2), train=True)
    return meta["series_dropout"], meta["series_flags"], model.conv1.in_channels, x.sum().item()


def _roles(cfg):
    from mrparotid.dicom.roles import load_roles

    return load_roles(cfg["data"]["dicom_roles"])


def _meta(cfg):
    from mrparotid.models.checkpoint import checkpoint_meta

    return checkpoint_meta(cfg, False)


def _class_weights(cfg):
    from mrparotid.models.lit_module import class_weights_from

    return class_weights_from(cfg["optim"]["class_weights"], [10, 20, 30, 40])


def probe(key: str):
    """The probe of ``key``: an explicit one, else by section."""
    from mrparotid.data.augment import BatchAugment
    from mrparotid.data.crops import select_channels
    from mrparotid.training.fit import trainer_kwargs

    section = key.split(".")[0]
    if key in PROBES:
        return PROBES[key]
    leaf = key.partition(".")[2]
    if section == "data" and (leaf in ("channels", "series_mask") or channel_options({leaf: None})):
        return lambda cfg, **_: select_channels(_crops(), cfg["data"]["channels"], cfg["data"]["series_mask"],
                                                **channel_options(cfg["data"])).tobytes()
    if section == "model":
        return lambda cfg, **_: _model(cfg)
    if section == "augment":
        return lambda cfg, **_: BatchAugment(["T1", "mask"], cfg["augment"]).cfg
    if section == "trainer":        # the Trainer arguments fit passes (on a CUDA machine)
        return lambda cfg, **_: (trainer_kwargs(cfg, cuda=True)[key.split(".")[1]],
                                 _schedule(cfg) if key == "trainer.max_epochs" else None)
    return None


WALK = [(name, key) for name in SHIPPED for key in leaves(read_yaml_mapping(CONFIG_DIR / name))]


@pytest.mark.parametrize("name, key", WALK, ids=[f"{n}:{k}" for n, k in WALK])
def test_every_key_has_an_effect_or_is_refused(name, key, tmp_path, monkeypatch):
    monkeypatch.setenv("MRPAROTID_HOME", str(tmp_path / "home"))
    (tmp_path / "roles.yaml").write_text("min_slices: 7\n", encoding="utf-8")
    assert_key_has_effect(key, probe(key), load_config(CONFIG_DIR / name),
                          lambda overrides: load_config(CONFIG_DIR / name, overrides), tmp_path,
                          monkeypatch, ALTERNATIVES, where=f"{name}: ")
