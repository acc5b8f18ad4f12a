"""Configuration: ``configs/default.yaml`` ← a user config ← command-line overrides.

Overrides follow LightningCLI's dotted style (``--trainer.max_epochs 1 --data.image_size 64``);
values are parsed as YAML (``--data.channels [T1,T2]``, ``--optim.lr 3e-4``). Unknown keys are an
error that lists the valid ones, so a typo fails at once rather than mid-run.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from mrparotid.constants import SERIES_MASK_CHOICES
from mrparotid.errors import ConfigError

def _config_dir() -> Path:
    """``configs/`` of the source tree, or the copy shipped in the wheel (``mrparotid/configs``)."""
    repo = Path(__file__).resolve().parent.parent / "configs"
    if (repo / "default.yaml").is_file():
        return repo
    from importlib.resources import files

    return Path(str(files("mrparotid.configs")))


CONFIG_DIR = _config_dir()

#: Keys whose values change the prepared crops (and so the cache key).
PREPROCESS_KEYS = ("image_size", "margin_mm", "percentiles")


#: Keys that may hold another type than their default's; each is checked where it is used.
FREE_TYPED = frozenset({"data.channels", "trainer.devices", "trainer.precision", "trainer.deterministic"})

#: Keys that only some choices use: key -> (the choosing key, the choices that use it). Changing
#: such a key from its default while another choice is made is an error, never silently ignored.
CONDITIONAL_KEYS = {
    "model.layers": ("model.name", ("resnet",)), "model.channels": ("model.name", ("resnet",)),
    "optim.warmup_epochs": ("optim.scheduler", ("cosine", "paper")),
    "optim.hold_epochs": ("optim.scheduler", ("paper",)),
    "optim.step_epochs": ("optim.scheduler", ("paper",)),
    "optim.gamma": ("optim.scheduler", ("paper",)),
}


def read_yaml_mapping(path: Path, *, what: str = "config file",
                      example: str = "see configs/default.yaml for the layout") -> dict:
    """A YAML file that must hold a mapping; one-line ConfigError otherwise."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=path, fix=f"pass an existing YAML file ({example})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path,
                          fix=f"fix the YAML syntax ({example})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=path,
                          fix="save the file as UTF-8") from None
    if not isinstance(data, dict):
        raise ConfigError(f"a {what} must be a YAML mapping", path=path, fix=example)
    return data


def default_config_path() -> Path:
    return CONFIG_DIR / "default.yaml"


def resolve_config_path(name: str | Path) -> Path:
    """A config given as a path, or as a bare name of a file in ``configs/`` (``paper``)."""
    path = Path(name)
    if path.exists():
        return path
    candidate = CONFIG_DIR / (path.name if path.suffix else f"{path.name}.yaml")
    return candidate if candidate.exists() else path


def merge(base: dict, update: dict, *, where: str = "") -> dict:
    """Deep-merge ``update`` into a copy of ``base``; keys absent from ``base`` are errors."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{where}{key}"
        if key not in out and where == "trainer.":
            out[key] = value  # any Lightning Trainer argument; checked by check_trainer_args
            continue
        if key not in out:
            valid = ", ".join(sorted(f"{where}{k}" for k in out))
            raise ConfigError(f"unknown config key {dotted!r}", fix=f"use one of: {valid}")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {dotted!r} must be a mapping",
                                  fix="see configs/default.yaml")
            out[key] = merge(out[key], value, where=f"{dotted}.")
        else:
            out[key] = value
    return out


def parse_overrides(args: list[str]) -> dict:
    """``["--trainer.max_epochs", "1", "--data.image_size=64", "--seed", "3"]`` → nested dict."""
    nested: dict = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ConfigError(f"unrecognised argument {arg!r}",
                              fix="overrides look like --section.key VALUE, e.g. --trainer.max_epochs 1")
        if "=" in arg:
            key, text = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"override {arg} has no value", fix=f"write {arg} VALUE")
            key, text = arg[2:], args[i + 1]
            i += 2
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_config(config: str | Path | None = None, overrides: list[str] | dict | None = None) -> dict:
    """The resolved configuration: defaults, then ``config``, then ``overrides``; validated."""
    defaults = read_yaml_mapping(default_config_path())
    cfg = copy.deepcopy(defaults)
    if config is not None:
        cfg = merge(cfg, read_yaml_mapping(resolve_config_path(config)))
    if overrides:
        cfg = merge(cfg, parse_overrides(overrides) if isinstance(overrides, list) else overrides)
    validate(cfg, defaults)
    return cfg


def validate(cfg: dict, defaults: dict | None = None) -> None:
    """Check values that would otherwise fail mid-run, or do nothing."""
    from mrparotid.constants import parse_channels

    defaults = read_yaml_mapping(default_config_path()) if defaults is None else defaults
    check_types(cfg, defaults)
    check_conditional(cfg, defaults)
    data = cfg["data"]
    if not isinstance(data["channels"], (str, list, tuple)):
        raise ConfigError(f"data.channels is {data['channels']!r}", fix="e.g. --data.channels [T1,T2]")
    data["channels"] = list(parse_channels(data["channels"]))
    if data["series_mask"] not in SERIES_MASK_CHOICES:
        raise ConfigError(f"data.series_mask is {data['series_mask']!r}",
                          fix=f"use one of {', '.join(SERIES_MASK_CHOICES)}")
    if not isinstance(data["image_size"], int) or not 16 <= data["image_size"] <= 1024:
        raise ConfigError(f"data.image_size is {data['image_size']!r}", fix="use an integer in 16..1024")
    percentiles = data["percentiles"]
    if not (isinstance(percentiles, (list, tuple)) and len(percentiles) == 2
            and all(isinstance(v, (int, float)) for v in percentiles)
            and 0 <= percentiles[0] < percentiles[1] <= 100):
        raise ConfigError(f"data.percentiles is {percentiles!r}",
                          fix="use [low, high] with 0 <= low < high <= 100")
    if _number(cfg, "data.margin_mm", float) < 0:
        raise ConfigError("data.margin_mm is negative", fix="use a margin >= 0 mm")
    for key in ("test_fraction", "val_fraction"):
        if not 0 <= _number(cfg, f"data.{key}", float) < 1:
            raise ConfigError(f"data.{key} is {data[key]!r}", fix="use a fraction in [0, 1)")
    if _number(cfg, "data.batch_size", int) < 1:
        raise ConfigError("data.batch_size must be >= 1", fix="e.g. --data.batch_size 32")
    for key in ("lr", "weight_decay"):   # YAML reads 3e-4 (no dot) as a string
        cfg["optim"][key] = _number(cfg, f"optim.{key}", float)
    if cfg["optim"]["optimizer"] not in ("adam", "adamw"):
        raise ConfigError(f"optim.optimizer is {cfg['optim']['optimizer']!r}", fix="use adam or adamw")
    if cfg["optim"]["scheduler"] not in ("none", "cosine", "paper"):
        raise ConfigError(f"optim.scheduler is {cfg['optim']['scheduler']!r}",
                          fix="use none, cosine or paper")
    if _number(cfg, "rule.malignant_min_slices", int) < 0:
        raise ConfigError("rule.malignant_min_slices must be >= 0", fix="the paper uses 2")
    for key in ("decision.target_sensitivity", "decision.target_specificity"):
        if not 0 < _number(cfg, key, float) < 1:
            raise ConfigError(f"{key} is {_get(cfg, key)!r}, it must lie strictly between 0 and 1",
                              fix="e.g. 0.95 for sensitivity, 0.90 for specificity")
    if _number(cfg, "decision.min_val_patients", int) < 1:
        raise ConfigError("decision.min_val_patients must be >= 1", fix="e.g. 10")
    if _number(cfg, "decision.cross_fit", int) == 1 or _number(cfg, "decision.cross_fit", int) < 0:
        raise ConfigError("decision.cross_fit must be 0 (off) or K >= 2 folds", fix="e.g. 5")
    for key in ("decision.min_seg_dice_gland", "decision.min_seg_dice_tumour"):
        if not 0 <= _number(cfg, key, float) <= 1:
            raise ConfigError(f"{key} must lie in [0, 1]", fix="e.g. 0.70 for the gland, 0.50 for the tumour")
    if _get(cfg, "decision.masks") not in ("given", "auto"):
        raise ConfigError(f"decision.masks is {_get(cfg, 'decision.masks')!r}", fix="choose given or auto")
    if not 0 <= _number(cfg, "optim.ema_decay", float) < 1:
        raise ConfigError("optim.ema_decay must lie in [0, 1)", fix="e.g. 0.99, or 0 for no averaging")
    if _number(cfg, "data.max_gap_slices", int) < 0:
        raise ConfigError("data.max_gap_slices is negative", fix="use 0 (no gap filled) or more")
    _check_record_bounds(cfg)
    from mrparotid.models.precision import check_precision   # no torch unless it must look

    cfg["trainer"]["precision"] = check_precision(cfg["trainer"])


def _check_record_bounds(cfg: dict) -> None:
    """The data settings a checkpoint records (its ``preprocess`` and ``channel_options``
    sections) within the bounds its loader checks (:data:`mrparotid.models.checkpoint_schema.
    CLASSIFIER`): one set of bounds, so a fit never writes a checkpoint it cannot load."""
    from mrparotid.models.checkpoint_schema import CLASSIFIER

    for name, section in (("preprocess", preprocess_config(cfg)), ("channel_options", channel_options(cfg["data"]))):
        for key, field in CLASSIFIER[name].section.items():
            if key in section and not field.ok(section[key]):
                raise ConfigError(f"data.{key} is {cfg['data'][key]!r}", fix=f"use {field.want}")


def _get(cfg: dict, dotted: str) -> Any:
    return functools.reduce(lambda node, part: node[part], dotted.split("."), cfg)


def check_types(cfg: dict, defaults: dict, where: str = "") -> None:
    """Every value has its default's type (numbers given as text, e.g. 3e-4, are converted), so
    ``--trainer.max_epochs two`` fails at load time, not mid-run."""
    for key, default in defaults.items():
        dotted, value = f"{where}{key}", cfg.get(key)
        if isinstance(default, dict):
            check_types(value, default, f"{dotted}.")
            continue
        if default is None or dotted in FREE_TYPED:
            continue
        if isinstance(default, float) and isinstance(value, str):
            with contextlib.suppress(ValueError):
                cfg[key] = value = float(value)
        kinds = ((bool,) if isinstance(default, bool) else (int,) if isinstance(default, int)
                 else (int, float) if isinstance(default, float) else (list, tuple)
                 if isinstance(default, list) else (str,))
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            kind = ("a number" if float in kinds else
                    {bool: "true or false", int: "an integer", str: "a text"}.get(kinds[0], "a list"))
            raise ConfigError(f"{dotted} is {value!r}, not {kind}",
                              fix=f"give {kind}, e.g. --{dotted} {json.dumps(default)}")


def check_conditional(cfg: dict, defaults: dict) -> None:
    """A key that the chosen option ignores must keep its default (see :data:`CONDITIONAL_KEYS`)."""
    for key, (chooser, users) in CONDITIONAL_KEYS.items():
        value, choice, default = _get(cfg, key), _get(cfg, chooser), _get(defaults, key)
        if isinstance(value, (list, tuple)) and isinstance(default, list):
            value = list(value)
        if choice not in users and value != default:
            raise ConfigError(f"config key {key!r} is {value!r} but only {chooser} "
                              f"{' or '.join(users)} uses it ({chooser} is {choice!r})",
                              fix=f"set --{chooser} {users[0]}, or leave {key} at its default")


def _number(cfg: dict, dotted: str, cast: type) -> float | int:
    """``cfg[section][key]`` as ``cast``; a ConfigError naming the key if it is not a number."""
    section, key = dotted.split(".")
    value = cfg[section][key]
    try:
        if isinstance(value, bool):
            raise TypeError
        return cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{dotted} is {value!r}, not a number",
                          fix=f"give {'an integer' if cast is int else 'a number'}") from None


def check_trainer_args(trainer_cfg: dict) -> None:
    """Every ``trainer.*`` key must be a ``pytorch_lightning.Trainer`` argument whose annotation
    its value fits (checked before any work starts)."""
    import inspect
    import typing

    import pytorch_lightning as pl

    valid = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self", "callbacks", "logger"}
    hints = typing.get_type_hints(pl.Trainer.__init__)
    for key, value in trainer_cfg.items():
        if key not in valid:
            raise ConfigError(f"unknown config key 'trainer.{key}'",
                              fix="use a pytorch_lightning.Trainer argument, e.g. trainer.max_epochs")
        if key == "precision":      # mrparotid's own values ("auto"): models.precision checks them
            from mrparotid.models.precision import canonical_precision

            canonical_precision(value)
        elif key in hints and not _fits(value, hints[key]):
            raise ConfigError(f"config key 'trainer.{key}' is {value!r}, which Trainer does not take "
                              f"({hints[key]})".replace("typing.", ""),
                              fix=f"give a value of that type for --trainer.{key}")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type annotation (unknown classes: only non-scalars pass)."""
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return hint is Any or not isinstance(hint, type) or isinstance(value, hint)   # Any, TypeVars


#: ``data`` keys that :func:`mrparotid.data.crops.select_channels` takes besides the channels and
#: ``series_mask``; the datamodule, the checkpoint and ``evaluate --checkpoint`` pass them on.
CHANNEL_OPTION_KEYS: tuple[str, ...] = ("gland_channel", "gland_close_px")


def channel_options(data_cfg: dict) -> dict:
    """The :data:`CHANNEL_OPTION_KEYS` present in a config's ``data`` section."""
    return {k: data_cfg[k] for k in CHANNEL_OPTION_KEYS if k in data_cfg}


def preprocess_config(cfg: dict) -> dict:
    """The part of the config that determines the prepared crops: :data:`PREPROCESS_KEYS`, and,
    only where the channels name a series beyond the paper's three, the ``series`` a crop holds
    (and ``adc_range`` with the ADC), so today's three-series caches and checkpoints keep their keys."""
    from mrparotid.constants import PAPER_SERIES, series_of_channels

    out = {key: cfg["data"][key] for key in PREPROCESS_KEYS}
    series = series_of_channels(cfg["data"]["channels"])
    if series != PAPER_SERIES:
        out["series"] = list(series)
        if "ADC" in series:
            out["adc_range"] = [float(v) for v in cfg["data"]["adc_range"]]
    return out


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of a JSON-serialisable object (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def dump_config(cfg: dict, path: Path) -> None:
    """Write ``cfg`` as YAML, atomically (:mod:`mrparotid.io.atomic`)."""
    from mrparotid.io.atomic import write_text

    write_text(path, yaml.safe_dump(cfg, sort_keys=False))
