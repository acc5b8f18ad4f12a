"""Configuration: defaults ← file ← overrides, validated at load time."""

from __future__ import annotations

import pytest
import yaml

from mrparotid.config import (PREPROCESS_KEYS, check_trainer_args, config_hash, default_config_path,
                              dump_config, load_config, merge, parse_overrides, preprocess_config,
                              resolve_config_path)
from mrparotid.errors import ConfigError


def test_defaults_load_and_validate():
    cfg = load_config()
    assert cfg["data"]["image_size"] == 224 and cfg["data"]["channels"] == ["T1", "CE-T1", "T2", "mask"]
    assert cfg["data"]["series_mask"] == "none" and cfg["data"]["percentiles"] == [1.0, 99.0]


def test_parse_overrides_lightning_style():
    assert parse_overrides(["--trainer.max_epochs", "3", "--data.image_size=64", "--data.channels",
                            "[T1,T2]", "--optim.lr", "3.0e-4", "--data.cache_dir", "null"]) == {
        "trainer": {"max_epochs": 3}, "data": {"image_size": 64, "channels": ["T1", "T2"],
                                               "cache_dir": None}, "optim": {"lr": 3e-4}}


def test_learning_rate_without_a_dot_is_a_number():
    # YAML 1.1 reads 3e-4 as a string; the README's example must still give a float
    assert load_config(None, ["--optim.lr", "3e-4"])["optim"]["lr"] == pytest.approx(3e-4)
    with pytest.raises(ConfigError, match="optim.lr is 'fast', not a number"):
        load_config(None, ["--optim.lr", "fast"])


@pytest.mark.parametrize("args,message", [
    (["image_size", "3"], "unrecognised argument 'image_size'"),
    (["--seed"], "override --seed has no value"),
    (["--"], "unrecognised argument '--'"),
    (["--data.image_size"], "override --data.image_size has no value"),
])
def test_parse_overrides_errors(args, message):
    """Bad override syntax is a one-line ConfigError (top-level keys such as --seed are fine)."""
    with pytest.raises(ConfigError, match=message):
        parse_overrides(args)


def test_overrides_and_config_file_layering(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("data:\n  image_size: 64\n  margin_mm: 5\noptim:\n  lr: 0.01\n", encoding="utf-8")
    cfg = load_config(user, ["--data.image_size", "32"])
    assert cfg["data"]["image_size"] == 32 and cfg["data"]["margin_mm"] == 5
    assert cfg["optim"]["lr"] == 0.01 and cfg["data"]["batch_size"] == 32     # default kept
    assert load_config(None, {"data": {"image_size": 48}})["data"]["image_size"] == 48


def test_named_configs_resolve_from_configs_folder():
    assert resolve_config_path("paper") == default_config_path().parent / "paper.yaml"
    assert load_config("paper")["optim"]["scheduler"] == "paper"


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as exc:
        load_config(None, ["--data.imagesize", "32"])
    text = str(exc.value)
    assert "unknown config key 'data.imagesize'" in text and "data.image_size" in text


def test_trainer_keys_pass_merge_but_are_checked():
    cfg = load_config(None, ["--trainer.limit_train_batches", "2"])
    check_trainer_args(cfg["trainer"])
    with pytest.raises(ConfigError, match="unknown config key 'trainer.max_epoch'"):
        check_trainer_args(load_config(None, ["--trainer.max_epoch", "2"])["trainer"])


def test_merge_rejects_a_scalar_for_a_section():
    with pytest.raises(ConfigError, match="'data' must be a mapping"):
        merge({"data": {"a": 1}}, {"data": 3})


@pytest.mark.parametrize("override,message", [
    (["--data.image_size", "8"], "data.image_size is 8"),
    (["--data.image_size", "32.5"], "data.image_size is 32.5"),
    (["--data.percentiles", "[99,1]"], "data.percentiles is"),
    (["--data.percentiles", "5"], "data.percentiles is 5"),
    (["--data.percentiles", "[1,2,3]"], "data.percentiles is"),
    (["--data.series_mask", "lesion"], "data.series_mask is 'lesion'"),
    (["--data.channels", "[T1,FLAIR]"], "unknown channel 'FLAIR'"),
    (["--data.channels", "[]"], "empty channel selection"),
    (["--data.channels", "5"], "data.channels is 5"),
    (["--data.margin_mm", "-1"], "data.margin_mm is negative"),
    (["--data.margin_mm", "wide"], "data.margin_mm is 'wide', not a number"),
    (["--data.test_fraction", "1.0"], "data.test_fraction is 1.0"),
    (["--data.val_fraction", "x"], "data.val_fraction is 'x', not a number"),
    (["--data.batch_size", "0"], "data.batch_size must be >= 1"),
    (["--optim.optimizer", "sgd"], "optim.optimizer is 'sgd'"),
    (["--optim.scheduler", "step"], "optim.scheduler is 'step'"),
    (["--rule.malignant_min_slices", "-1"], "rule.malignant_min_slices must be >= 0"),
])
def test_bad_values_fail_at_load_time(override, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(None, override)
    assert "\n" not in str(exc.value)


def test_channels_are_normalised_to_the_fixed_order():
    assert load_config(None, ["--data.channels", "mask,t2,T1"])["data"]["channels"] == ["T1", "T2", "mask"]
    assert load_config(None, ["--data.channels", "[T1+C]"])["data"]["channels"] == ["CE-T1"]


@pytest.mark.parametrize("text,message", [("data: [1, 2\n", "not valid YAML"),
                                          ("- a\n- b\n", "must be a YAML mapping")])
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_preprocess_config_and_hash():
    cfg = load_config()
    pre = preprocess_config(cfg)
    assert tuple(pre) == PREPROCESS_KEYS
    assert config_hash(pre) == config_hash(dict(reversed(list(pre.items()))))   # key order free
    assert len(config_hash(pre)) == 12 and len(config_hash(pre, 16)) == 16
    other = load_config(None, ["--data.image_size", "64"])
    assert config_hash(preprocess_config(other)) != config_hash(pre)
    # channels, series_mask and batch size are chosen at load time: same prepared crops
    same = load_config(None, ["--data.channels", "T1", "--data.series_mask", "tumour",
                              "--data.batch_size", "4"])
    assert preprocess_config(same) == pre


def test_dump_config_round_trips(tmp_path):
    cfg = load_config(None, ["--data.image_size", "32"])
    dump_config(cfg, tmp_path / "c.yaml")
    assert yaml.safe_load((tmp_path / "c.yaml").read_text(encoding="utf-8")) == cfg
    assert load_config(tmp_path / "c.yaml") == cfg


def test_top_level_seed_override():
    assert load_config(None, ["--seed", "7"])["seed"] == 7


@pytest.mark.parametrize("override,key", [
    (["--trainer.max_epochs", "two"], "trainer.max_epochs"),
    (["--data.num_workers", "1.5"], "data.num_workers"),
    (["--trainer.deterministic", "yes please"], None),
    (["--augment.hflip_p", "often"], "augment.hflip_p"),
    (["--data.skip_bad", "maybe"], "data.skip_bad"),
    (["--model.name", "[1]"], "model.name"),
])
def test_override_types_are_checked_at_load_time(override, key):
    if key is None:     # free-typed trainer keys are checked against Trainer's annotations
        with pytest.raises(ConfigError, match="trainer.deterministic"):
            check_trainer_args(load_config(None, override)["trainer"])
        return
    with pytest.raises(ConfigError, match=key) as exc:
        load_config(None, override)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("override", [["--trainer.limit_train_batches", "x"],
                                      ["--trainer.precision", "17"], ["--trainer.devices", "2.5"]])
def test_trainer_values_must_fit_the_trainer_signature(override):
    with pytest.raises(ConfigError, match=override[0][2:]):
        check_trainer_args(load_config(None, override)["trainer"])
    for ok in (["--trainer.precision", "bf16"], ["--trainer.devices", "auto"], ["--trainer.devices", "[0]"],
               ["--trainer.deterministic", "warn"], ["--trainer.limit_train_batches", "0.5"]):
        check_trainer_args(load_config(None, ok)["trainer"])


@pytest.mark.parametrize("override,key", [
    (["--model.layers", "[1]", "--model.channels", "[8]"], "model.layers"),
    (["--model.name", "tiny_resnet", "--model.channels", "[8, 16]"], "model.channels"),
    (["--optim.hold_epochs", "5"], "optim.hold_epochs"),
    (["--optim.scheduler", "none", "--optim.warmup_epochs", "3"], "optim.warmup_epochs"),
])
def test_keys_the_chosen_option_ignores_are_refused(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(None, override)


def test_keys_apply_with_their_option():
    cfg = load_config(None, ["--model.name", "resnet", "--model.layers", "[1]", "--model.channels", "[8]"])
    assert cfg["model"]["layers"] == [1]
    assert load_config("paper", ["--optim.hold_epochs", "5"])["optim"]["hold_epochs"] == 5


@pytest.mark.parametrize("overrides", [
    ["--data.channels", "T1,ADC,mask", "--data.adc_range", "[3.0,0.0]"],   # would invert the ADC
    ["--data.channels", "T1,ADC,mask", "--data.adc_range", "[1.0,1.0]"],   # would divide by zero
    ["--data.gland_close_px", "300"], ["--data.gland_close_px", "-5"],
    ["--data.max_gap_slices", "-3"]])
def test_a_value_the_checkpoint_loader_would_refuse_is_refused_before_the_fit(overrides):
    """The recorded data settings are held to the checkpoint loader's own bounds at load time,
    so a fit never runs to write a checkpoint it cannot load (nor inverts the ADC)."""
    with pytest.raises(ConfigError):
        load_config(overrides=overrides)
