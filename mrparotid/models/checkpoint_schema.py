"""What an mrparotid checkpoint may hold, checked before any of it is used.

A checkpoint's record (its ``"mrparotid"`` entry) is checked section by section against
:data:`CLASSIFIER` (format ``mrparotid-checkpoint-1``) or :data:`SEGMENTER`
(``mrparotid-segmenter-1``): known keys only, each of its type and in its range, plus the checks
between sections (series flags of the channels, splits disjoint, a network of bounded size, so a
tampered record cannot make the loader build one of many GiB). :func:`model_weights` checks the
weights (``state_dict``: tensors, finite) and :func:`check_training_state` what Lightning needs to
resume. Every key today's code writes is required except ``split`` (none in a worker's checkpoint)
and ``series_dropout``/``series_flags`` (none before series dropout: no flag planes; a model with
them then fails on its weights). ``calibration`` and ``decision`` pass through unchecked: their own
readers check them. Every failure is one :class:`CheckpointError` naming the section (e.g.
``model.layers``) and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrparotid.constants import CHANNELS, CLASSES, SERIES, SERIES_MASK_CHOICES
from mrparotid.errors import CheckpointError

CLASSIFIER_FORMAT = "mrparotid-checkpoint-1"
SEGMENTER_FORMAT = "mrparotid-segmenter-1"
#: Largest network a record may describe, in weights (the reduced ResNet18 has 0.7 M, the
#: default segmenter 0.5 M): more is a tampered record, not a run of mrparotid's.
MAX_PARAMETERS = 50_000_000
SPLIT_NAMES = ("train", "val", "test")
GLAND_CHANNELS = ("mask", "t1")     # mrparotid.data.crops.GLAND_CHANNELS (that module imports skimage)
CLASSIFIER_NAMES = ("reduced_resnet18", "tiny_resnet", "resnet")   # mrparotid.models.factory.MODEL_NAMES


@dataclass(frozen=True)
class Field:
    """One key of a record section: ``ok(value)`` tells a valid value, ``want`` says what one is;
    ``section`` instead describes a nested mapping."""

    want: str
    ok: Callable[[Any], bool] = lambda value: True
    required: bool = True
    section: Mapping[str, Field] | None = None


def integer(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def number(lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return (lo < v if open_lo else lo <= v) and (v < hi if open_hi else v <= hi)
    return ok


def text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= 1000


def one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in choices


def integers(lo: int, hi: int, n_lo: int, n_hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and n_lo <= len(v) <= n_hi and all(map(integer(lo, hi), v))


def names_in_order(allowed: tuple[str, ...], *, empty: bool = False) -> Callable[[Any], bool]:
    """A list of names from ``allowed``, each once, in ``allowed``'s order (non-empty unless ``empty``)."""
    return lambda v: (isinstance(v, list) and (empty or len(v) > 0) and all(isinstance(n, str) for n in v)
                      and v == [n for n in allowed if n in v])


def percentiles(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and all(map(number(0, 100), v)) and v[0] < v[1])


def text_lists(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) <= set(SPLIT_NAMES)
            and all(isinstance(ids, list) and all(map(text, ids)) for ids in v.values()))


def text_map(v: Any) -> bool:
    return isinstance(v, dict) and all(text(k) and text(h) for k, h in v.items())


ANY = Field("anything", required=False)
SPLIT = {"splits": Field(f"patient ids per split ({', '.join(SPLIT_NAMES)})", text_lists),
         "val_carved_from_train": Field("a list of patient ids", lambda v: isinstance(v, list)
                                        and all(map(text, v)), required=False),
         "manifest_rows_hash": Field("a text", text, required=False),
         "patient_hashes": Field("a mapping of patient id to hash", text_map, required=False)}
PERCENTILES = "[low, high] with 0 <= low < high <= 100"

CLASSIFIER: dict[str, Field] = {
    "format": Field("the format name", text), "version": Field("a version text", text),
    "channels": Field(f"a list of channels from {', '.join(CHANNELS)}, each once, in that order",
                      names_in_order(CHANNELS)),
    "series_mask": Field(f"one of {', '.join(SERIES_MASK_CHOICES)}", one_of(*SERIES_MASK_CHOICES)),
    "model": Field("the model section", section={
        "name": Field(f"one of {', '.join(CLASSIFIER_NAMES)}", one_of(*CLASSIFIER_NAMES)),
        "layers": Field("a list of 1 to 6 block counts in 1..16", integers(1, 16, 1, 6)),
        "channels": Field("a list of 1 to 6 widths in 1..2048", integers(1, 2048, 1, 6)),
        "stem_width": Field("a width in 1..2048", integer(1, 2048), required=False),
        "init": Field("a text", text),
        "drop_rate": Field("a number in [0, 1)", number(0, 1, open_hi=True))}),
    "preprocess": Field("the preprocess section", section={
        "image_size": Field("an integer in 16..1024", integer(16, 1024)),
        "margin_mm": Field("a number of mm in 0..500", number(0, 500)),
        "percentiles": Field(PERCENTILES, percentiles),
        "series": Field(f"a list of series from {', '.join(SERIES)}, each once, in that order",
                        names_in_order(SERIES), required=False),
        "adc_range": Field("[low, high] x 10^-3 mm²/s with 0 <= low < high <= 10",
                           lambda v: isinstance(v, list) and len(v) == 2
                           and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                           and 0 <= v[0] < v[1] <= 10, required=False)}),
    "rule": Field("the rule section", section={
        "malignant_min_slices": Field("an integer in 0..10000", integer(0, 10000))}),
    "classes": Field(f"the classes {list(CLASSES)}", lambda v: isinstance(v, list) and v == list(CLASSES)),
    "config_hash": Field("a text", text),
    "synthetic": Field("true or false", lambda v: isinstance(v, bool)),
    "channel_options": Field("the channel options section", section={
        "gland_channel": Field(f"one of {', '.join(GLAND_CHANNELS)}", one_of(*GLAND_CHANNELS)),
        "gland_close_px": Field("a number of pixels in [0, 224]", number(0, 224), required=False)}),
    "series_dropout": Field("a number in [0, 1)", number(0, 1, open_hi=True), required=False),
    "series_flags": Field(f"a list of series from {', '.join(SERIES)}, in that order",
                          names_in_order(SERIES, empty=True), required=False),
    "split": Field("the split section", required=False, section=SPLIT),
    "calibration": ANY, "decision": ANY,
}

SEGMENTER: dict[str, Field] = {
    "format": Field("the format name", text), "version": Field("a version text", text),
    "series": Field(f"a list of series from {', '.join(SERIES)}, each once, in that order",
                    names_in_order(SERIES)),
    "spacing_mm": Field("a spacing in 0.05..20 mm", number(0.05, 20)),
    "percentiles": Field(PERCENTILES, percentiles),
    "image_size": Field("an integer in 16..1024", integer(16, 1024)),
    "model": Field("the model section", section={
        "channels": Field("a list of 2 to 8 widths in 1..1024", integers(1, 1024, 2, 8)),
        "strides": Field("a list of strides in 1..4", integers(1, 4, 1, 7)),
        "num_res_units": Field("an integer in 0..8", integer(0, 8)),
        "dropout": Field("a number in [0, 1)", number(0, 1, open_hi=True)),
        "norm": Field("batch or instance", one_of("batch", "instance"))}),
    "postprocess": Field("the postprocess section", section={
        "threshold": Field("a probability in (0, 1)", number(0, 1, open_lo=True, open_hi=True)),
        "min_component_mm3": Field("a volume in 0..1e9 mm³", number(0, 1e9)),
        "tumour_max_distance_mm": Field("a distance in 0..1000 mm", number(0, 1000))}),
    "config_hash": Field("a text", text),
    "synthetic": Field("true or false", lambda v: isinstance(v, bool)),
    "split": Field("the split section", required=False, section=SPLIT),
}


def show(value: Any) -> str:
    """``value`` in one short line, for a message."""
    shown = " ".join(repr(value).split())
    return shown if len(shown) <= 60 else shown[:57] + "..."


def check_section(value: Any, fields: Mapping[str, Field], where: str, path: Path | str, fix: str) -> None:
    """``value`` (the section ``where``; "" for the record) holds only known keys, every required
    one, each valid; a CheckpointError names the first that is not."""
    name = f'section "{where}"' if where else "record"
    if not isinstance(value, dict):
        raise CheckpointError(f"checkpoint {name} is {show(value)}, not a mapping", path=path, fix=fix)
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise CheckpointError(f"checkpoint {name} has unknown key {show(unknown[0])} (known: "
                              f"{', '.join(fields)})", path=path, fix=fix)
    for key, field in fields.items():
        dotted = f"{where}.{key}" if where else key
        if key not in value:
            if field.required:
                raise CheckpointError(f'checkpoint section "{dotted}" is missing', path=path, fix=fix)
        elif field.section is not None:
            check_section(value[key], field.section, dotted, path, fix)
        elif not field.ok(value[key]):
            raise CheckpointError(f'checkpoint section "{dotted}" is {show(value[key])}, not {field.want}',
                                  path=path, fix=fix)


def check_record(meta: dict, path: Path | str, fix: str) -> None:
    """A classifier or segmenter record (by its ``format``) fit to be loaded.

    Raises
    ------
    CheckpointError
        An unknown format, or a section missing, of the wrong type, out of range, or unknown.
    """
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt not in (CLASSIFIER_FORMAT, SEGMENTER_FORMAT):
        raise CheckpointError(f'checkpoint section "format" is {show(fmt)}, not {CLASSIFIER_FORMAT} '
                              f"or {SEGMENTER_FORMAT}", path=path, fix=fix)
    classifier = fmt == CLASSIFIER_FORMAT
    check_section(meta, CLASSIFIER if classifier else SEGMENTER, "", path, fix)
    problem = classifier_problem(meta) if classifier else segmenter_problem(meta)
    if "split" in meta:
        problem = problem or split_problem(meta["split"]["splits"])
    if problem:
        raise CheckpointError(f"checkpoint {problem}", path=path, fix=fix)


def classifier_problem(meta: dict) -> str | None:
    """What is inconsistent between a classifier record's sections, or None."""
    channels, model = meta["channels"], meta["model"]
    flagged = [s for s in SERIES if s in channels]
    flags = meta.get("series_flags", [])          # none before series dropout: today's input
    dropout = meta.get("series_dropout")
    allowed = [[], flagged] if dropout is None else [flagged if dropout > 0 else []]
    if flags not in allowed:
        return (f'section "series_flags" is {show(flags)}, not {" or ".join(map(str, allowed))} '
                f"(the flags of the channels and series_dropout {dropout})")
    layers, widths = model["layers"], model["channels"]
    if len(layers) != len(widths):
        return f'section "model" has {len(layers)} layers but {len(widths)} channels'
    prev = model.get("stem_width", 64) if model["name"] == "resnet" else 64
    size = prev * (len(channels) + len(flags)) * 49
    for depth, width in zip(layers, widths):
        size += 9 * prev * width + (2 * depth - 1) * 9 * width * width
        prev = width
    return too_big(size)


def too_big(size: float) -> str | None:
    """Why a network of ``size`` weights is refused, or None."""
    if size > MAX_PARAMETERS:
        return f'section "model" describes a network of {size:.3g} weights (at most {MAX_PARAMETERS:.0e})'
    return None


def segmenter_problem(meta: dict) -> str | None:
    """What is inconsistent between a segmenter record's sections, or None."""
    model = meta["model"]
    widths, strides = model["channels"], model["strides"]
    if len(strides) != len(widths) - 1:
        return f'section "model" has {len(strides)} strides for {len(widths)} channels (one fewer needed)'
    if math.prod(strides) > 256:
        return f'section "model.strides" is {show(strides)}: their product is over 256'
    units = 1 + model["num_res_units"]
    return too_big(sum(18 * a * b * units for a, b in zip(widths, widths[1:])))


def split_problem(splits: dict) -> str | None:
    """Why a saved split is not a split (a patient in two parts, or twice in one), or None."""
    seen: set[str] = set()
    for ids in splits.values():
        twice = seen & set(ids) or {i for i in ids if ids.count(i) > 1}
        if twice:
            return f'section "split.splits" holds patient {show(sorted(twice)[0])} twice'
        seen |= set(ids)
    return None


def model_weights(ckpt: dict, path: Path | str, fix: str) -> dict:
    """The model's weights in a checkpoint's ``state_dict`` (keys without ``model.``).

    Raises
    ------
    CheckpointError
        No ``state_dict`` mapping, a value that is not a tensor, no model weights, or weights that
        are not finite.
    """
    import torch

    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        shown = "missing" if state is None else show(state)
        raise CheckpointError(f'checkpoint section "state_dict" is {shown}, not the weights',
                              path=path, fix=fix)
    bad = [k for k, v in state.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        raise CheckpointError(f'checkpoint section "state_dict" holds {show(bad[0])}, not a named tensor',
                              path=path, fix=fix)
    weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not weights:
        raise CheckpointError('checkpoint section "state_dict" holds no model weights', path=path, fix=fix)
    for key, value in weights.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f'checkpoint section "state_dict" has non-finite values in model.{key}',
                                  path=path, fix=fix)
    return weights


#: What Lightning reads to resume a run, with the type each must have.
TRAINING_STATE = {"pytorch-lightning_version": str, "epoch": int, "global_step": int,
                  "optimizer_states": list, "lr_schedulers": list, "loops": dict, "callbacks": dict}


def check_training_state(ckpt: dict, path: Path | str, fix: str) -> None:
    """A Lightning checkpoint holds what resuming reads (:data:`TRAINING_STATE`)."""
    for key, kind in TRAINING_STATE.items():
        value = ckpt.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            shown = "missing" if value is None else show(value)
            want = "a count" if kind is int else "a " + kind.__name__
            raise CheckpointError(f'checkpoint section "{key}" is {shown}, not {want}', path=path, fix=fix)


def network_from(ckpt: dict, path: Path | str, fix: str, build: Callable[[dict], Any], what: str):
    """The network a loaded checkpoint describes (``build(meta)``), with its weights, after its
    record (:func:`check_record`) and weights (:func:`model_weights`) are checked; ``what`` names
    it in the error when the weights do not fit.

    Raises
    ------
    CheckpointError
        A record section or the weights fail their checks, or the weights do not fit the network.
    """
    meta = ckpt["mrparotid"]
    check_record(meta, path, fix)
    state = model_weights(ckpt, path, fix)
    model = build(meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit the {what} ({str(exc).splitlines()[0][:100]})",
                              path=path, fix=fix) from None
    return model
