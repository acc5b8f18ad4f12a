"""The segmenter's configuration: ``configs/segment.yaml`` ← a user config ← command-line overrides.

Same style as :func:`mrparotid.config.load_config` (dotted overrides parsed as YAML, unknown keys
refused, every value of its default's type), with the segmenter's own keys.
"""

from __future__ import annotations

import copy
from pathlib import Path

from mrparotid.config import (CONFIG_DIR, check_types, merge, parse_overrides, read_yaml_mapping,
                              resolve_config_path)
from mrparotid.constants import SERIES
from mrparotid.errors import ConfigError

SEGMENT_CONFIG = CONFIG_DIR / "segment.yaml"
EXAMPLE = "see configs/segment.yaml for the layout"


def segment_defaults() -> dict:
    return read_yaml_mapping(SEGMENT_CONFIG, example=EXAMPLE)


def load_segment_config(config: str | Path | None = None,
                        overrides: list[str] | dict | None = None) -> dict:
    """The resolved segmenter config: ``configs/segment.yaml``, then ``config``, then ``overrides``.

    Raises
    ------
    ConfigError
        Unknown key, a value of the wrong type or out of range.
    """
    defaults = segment_defaults()
    cfg = copy.deepcopy(defaults)
    if config is not None and resolve_config_path(config).resolve() != SEGMENT_CONFIG.resolve():
        cfg = merge(cfg, read_yaml_mapping(resolve_config_path(config), example=EXAMPLE))
    if overrides:
        cfg = merge(cfg, parse_overrides(overrides) if isinstance(overrides, list) else overrides)
    if isinstance(cfg["data"].get("series"), str):      # --data.series T1,T2
        cfg["data"]["series"] = parse_series(cfg["data"]["series"])
    check_types(cfg, defaults)
    validate_segment(cfg)
    return cfg


def parse_series(value) -> list[str]:
    """``[T1, t2]`` or ``"T1,T2"`` → the named series in the fixed order T1, CE-T1, T2."""
    from mrparotid.constants import parse_channels

    chosen = parse_channels(value)
    if "mask" in chosen:
        raise ConfigError("data.series takes MR series only (T1, CE-T1, T2), not the mask",
                          fix="e.g. --data.series [T1,CE-T1,T2]")
    return [s for s in SERIES if s in chosen]


def validate_segment(cfg: dict) -> None:
    """Range checks that would otherwise fail mid-run."""
    d, m, p = cfg["data"], cfg["model"], cfg["postprocess"]
    d["series"] = parse_series(d["series"])
    checks = [
        (d["spacing_mm"] > 0, "data.spacing_mm must be > 0", "e.g. --data.spacing_mm 2.0"),
        (16 <= d["image_size"] <= 1024, "data.image_size must be in 16..1024", "e.g. --data.image_size 96"),
        (d["empty_fraction"] >= 0, "data.empty_fraction must be >= 0", "e.g. --data.empty_fraction 0.25"),
        (d["batch_size"] >= 1, "data.batch_size must be >= 1", "e.g. --data.batch_size 16"),
        (d["num_workers"] >= 0, "data.num_workers must be >= 0", "e.g. --data.num_workers 0"),
        (0 <= d["test_fraction"] < 1 and 0 <= d["val_fraction"] < 1,
         "data.test_fraction and data.val_fraction must be in [0, 1)", "e.g. 0.1"),
        (len(d["percentiles"]) == 2 and all(isinstance(v, (int, float)) for v in d["percentiles"])
         and 0 <= d["percentiles"][0] < d["percentiles"][1] <= 100,
         f"data.percentiles is {d['percentiles']!r}", "use [low, high] with 0 <= low < high <= 100"),
        (len(m["channels"]) >= 2 and len(m["strides"]) == len(m["channels"]) - 1,
         "model.strides needs one entry fewer than model.channels",
         "e.g. --model.channels [16,32,64,128] --model.strides [2,2,2]"),
        (all(isinstance(v, int) and v > 0 for v in m["channels"] + m["strides"]),
         "model.channels and model.strides must be positive integers", "e.g. [16,32,64,128] and [2,2,2]"),
        (m["num_res_units"] >= 0 and 0 <= m["dropout"] < 1, "model.num_res_units >= 0 and "
         "model.dropout in [0, 1) are needed", "e.g. --model.dropout 0.1"),
        (m["norm"] in ("batch", "instance"), f"model.norm is {m['norm']!r}", "use batch or instance"),
        (cfg["loss"]["lambda_dice"] >= 0 and cfg["loss"]["lambda_ce"] >= 0
         and cfg["loss"]["lambda_dice"] + cfg["loss"]["lambda_ce"] > 0,
         "loss.lambda_dice and loss.lambda_ce must be >= 0 and not both 0", "e.g. 1.0 and 1.0"),
        (cfg["optim"]["lr"] > 0 and cfg["optim"]["weight_decay"] >= 0,
         "optim.lr must be > 0 and optim.weight_decay >= 0", "e.g. --optim.lr 0.003"),
        (0 <= cfg["augment"]["hflip_p"] <= 1 and 0 <= cfg["augment"]["intensity"] < 1,
         "augment.hflip_p must be in [0, 1] and augment.intensity in [0, 1)", "e.g. 0.5 and 0.1"),
        (0 < p["threshold"] < 1, "postprocess.threshold must be in (0, 1)", "e.g. 0.5"),
        (p["min_component_mm3"] >= 0 and p["tumour_max_distance_mm"] >= 0,
         "postprocess.min_component_mm3 and tumour_max_distance_mm must be >= 0", "e.g. 100 and 5"),
        (cfg["trainer"]["max_epochs"] >= 1, "trainer.max_epochs must be >= 1", "e.g. --trainer.max_epochs 30"),
    ]
    for ok, message, fix in checks:
        if not ok:
            raise ConfigError(message, fix=fix)
    from mrparotid.models.precision import check_precision   # no torch unless it must look

    cfg["trainer"]["precision"] = check_precision(cfg["trainer"])
