"""Mutated checkpoint records for the loaders, and the rule every outcome must follow.

Used by ``tests/fuzz/test_checkpoints_fuzz.py`` (every single mutation of every place in the
records, once) and ``tools/fuzz.py`` (random stacks of them, for longer). :func:`make_seeds` writes
real checkpoints once, as today's code writes them: a tiny classifier with a saved split, one
trained with series dropout (flags, ``gland_channel: t1``) and a tiny segmenter, each with the
training state Lightning resumes from. A mutation changes one place of a record (a dotted path
into its sections and lists) or of its ``state_dict``: ``delete``, ``retype``, ``out_of_range``
or ``extra``. :func:`run_case` loads the result with the loader of its kind (``load_checkpoint``,
``load_segmenter``, and the resume reader ``resume_checkpoint``) and returns ``"read"`` (a clean
load whose network then answers with finite numbers), ``"error"`` (one CheckpointError line) or
``"BAD"`` (a traceback, another error type, several lines, a hang, or a load that then fails).
"""

from __future__ import annotations

import copy
import functools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fuzz_readers import guarded
from mrparotid.errors import CheckpointError

HANG_S = 30
DELETED = object()
#: Values of another type put in place of a value.
RETYPES: tuple[Any, ...] = (None, "text", 7, -2.5, True, [], {}, ["T1", 3], {"x": 1}, float("nan"),
                            torch.tensor(1.0))
#: Out-of-range values by the type of the value they replace.
OUT_OF_RANGE = {"number": (-1, 0.5, 10 ** 9, float("inf"), 0, 1e300, -1e-9, float("-inf"), 1.0),
                "text": ("", "unknown", " T1", "x" * 2000),
                "list": ("empty", "long", "twice", "reversed")}
#: How many of each list above the exhaustive cases take (the random ones take any).
EXHAUSTIVE = {"retype": 3, "number": 4, "text": 2, "list": 4}
#: Lightning's training state, as a run's last.ckpt holds it (what resuming reads).
TRAINING_STATE = {"pytorch-lightning_version": "2.6.6", "epoch": 1, "global_step": 4,
                  "optimizer_states": [], "lr_schedulers": [], "loops": {}, "callbacks": {}}
KINDS = ("classifier", "classifier_dropout", "segmenter")


@dataclass(frozen=True)
class Case:
    """One mutation: of seed ``kind``, at ``where`` (keys and list indexes; the first ``"record"``
    or ``"state_dict"``), ``op`` with ``value`` (the new value, ``DELETED``, or an op-specific name)."""

    kind: str
    where: tuple
    op: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.kind} {'.'.join(map(str, self.where))} {self.op} {self.value!r}"[:200]


# ----------------------------------------------------------------------------------------------
# seeds

def make_seeds(root: Path) -> dict[str, dict]:
    """Write the real checkpoints under ``root`` and return them loaded (kind -> checkpoint dict)."""
    from mrparotid.config import load_config
    from mrparotid.data.splits import split_record
    from mrparotid.io.manifest import PatientCase
    from mrparotid.models.checkpoint import checkpoint_meta
    from mrparotid.models.factory import build_classifier
    from mrparotid.segmentation.config import load_segment_config
    from mrparotid.segmentation.infer import segmenter_meta
    from mrparotid.segmentation.network import build_segmenter

    root.mkdir(parents=True, exist_ok=True)
    cases = [PatientCase(f"F{i}", "warthin", root / f"F{i}", None) for i in range(3)]
    split = split_record({"train": ["F0"], "val": ["F1"], "test": ["F2"]}, cases)
    seeds = {}
    for kind, extra in (("classifier", []), ("classifier_dropout", [
            "--augment.series_dropout", "0.3", "--data.channels", "[T1,T2,mask]",
            "--data.gland_channel", "t1"])):
        cfg = load_config(None, ["--model.name", "tiny_resnet", "--data.image_size", "32", *extra])
        meta = checkpoint_meta(cfg, synthetic=True, split=split)
        torch.manual_seed(0)
        model = build_classifier(cfg["model"], len(meta["channels"]), pretrained=False,
                                 series_flags=tuple(meta["series_flags"]))
        seeds[kind] = _saved(root / f"{kind}.ckpt", model, meta)
    cfg = load_segment_config(None, ["--model.channels", "[4,8]", "--model.strides", "[2]",
                                     "--data.image_size", "32"])
    torch.manual_seed(0)
    seeds["segmenter"] = _saved(root / "segmenter.ckpt", build_segmenter(cfg["model"], 3),
                                segmenter_meta(cfg, synthetic=True, split=split))
    return seeds


def _saved(path: Path, model, meta: dict) -> dict:
    torch.save({**copy.deepcopy(TRAINING_STATE), "mrparotid": meta,
                "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, path)
    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------------------------
# cases

def places(node: Any, where: tuple = ()) -> list[tuple]:
    """Every place inside ``node``'s mappings and lists (depth first), ``node`` itself excluded."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found.append(where + (key,))
        found += places(value, where + (key,))
    return found


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "text", list: "list", dict: "dict"}.get(type(value), "other")


def mutations(value: Any, rng: random.Random | None = None) -> list[tuple[str, Any]]:
    """(op, value) mutations of one place holding ``value``: all of them, or with ``rng`` one."""
    kind = _kind_of(value)
    ops: list[tuple[str, Any]] = [("delete", DELETED)]
    others = [v for v in RETYPES if _kind_of(v) != kind]
    ops += [("retype", v) for v in (others if rng else others[::len(others) // EXHAUSTIVE["retype"]])]
    ops += [("out_of_range", v) for v in OUT_OF_RANGE.get(kind, ())[:None if rng else EXHAUSTIVE.get(kind)]]
    if kind in ("dict", "list"):
        ops.append(("extra", "unexpected"))
    return [rng.choice(ops)] if rng else ops


def all_cases(seeds: dict[str, dict]) -> list[Case]:
    """Every single mutation of every place of every seed's record, plus the weights'."""
    cases = []
    for kind, ckpt in seeds.items():
        for where in [("record",)] + [("record",) + w for w in places(ckpt["mrparotid"])]:
            value = get(ckpt, where)
            cases += [Case(kind, where, op, v) for op, v in mutations(value)]
        cases += weight_cases(kind, ckpt)
    return cases


def weight_cases(kind: str, ckpt: dict) -> list[Case]:
    """The state_dict: gone, retyped, a tensor replaced, non-finite, missing, renamed, reshaped."""
    first = next(iter(ckpt["state_dict"]))
    return [Case(kind, ("state_dict",), "delete", DELETED), Case(kind, ("state_dict",), "retype", []),
            Case(kind, ("state_dict", first), "retype", "text"),
            Case(kind, ("state_dict", first), "out_of_range", float("nan")),
            Case(kind, ("state_dict", first), "delete", DELETED),
            Case(kind, ("state_dict", first), "rename", "model.unexpected"),
            Case(kind, ("state_dict", first), "reshape", None),
            Case(kind, ("state_dict",), "extra", "unexpected")]


def random_case(seeds: dict[str, dict], rng: random.Random) -> Case:
    """One random mutation (tools/fuzz.py stacks several)."""
    kind = rng.choice(sorted(seeds))
    ckpt = seeds[kind]
    if rng.random() < 0.1:
        return rng.choice(weight_cases(kind, ckpt))
    where = ("record",) + rng.choice(places(ckpt["mrparotid"]))
    op, value = mutations(get(ckpt, where), rng)[0]
    return Case(kind, where, op, value)


def get(ckpt: dict, where: tuple) -> Any:
    node = ckpt["mrparotid"] if where[0] == "record" else ckpt["state_dict"]
    for key in where[1:]:
        if not isinstance(node, (dict, list)):
            raise KeyError(key)               # an earlier mutation retyped the way there
        node = node[key]
    return node


def apply(ckpt: dict, case: Case) -> dict:
    """``ckpt`` (a deep copy) with ``case`` applied."""
    ckpt = copy.deepcopy(ckpt)
    top = "mrparotid" if case.where[0] == "record" else "state_dict"
    parent, key = (ckpt, top) if len(case.where) == 1 else (get(ckpt, case.where[:-1]), case.where[-1])
    if not isinstance(parent, (dict, list)):
        raise KeyError(key)                   # an earlier mutation retyped the way there
    old = parent[key]
    if case.op == "delete":
        del parent[key]
    elif case.op == "rename":
        parent[case.value] = parent.pop(key)
    elif case.op == "reshape":
        parent[key] = torch.zeros(old.numel() + 1)
    elif case.op == "extra":
        if isinstance(old, dict):
            old[case.value] = 1
        else:
            old.append(copy.deepcopy(old[0]) if old else case.value)
    elif case.op == "out_of_range" and isinstance(old, list):
        lists = {"empty": [], "long": old * 50, "twice": old + old[:1], "reversed": old[::-1]}
        parent[key] = lists[case.value]
    elif isinstance(old, torch.Tensor) and case.op == "out_of_range":
        parent[key] = torch.full_like(old.float(), case.value)
    else:
        parent[key] = copy.deepcopy(case.value)
    return ckpt


# ----------------------------------------------------------------------------------------------
# loading and judging

def load(kind: str, path: Path, loader: str):
    if loader == "resume":
        from mrparotid.training.resume import resume_checkpoint

        return resume_checkpoint(path)
    if kind == "segmenter":
        from mrparotid.segmentation.infer import load_segmenter

        return load_segmenter(path, device="cpu")
    from mrparotid.models.checkpoint import load_checkpoint

    return load_checkpoint(path)


def use(kind: str, loaded) -> str | None:
    """What the loaded model's users then read: why it fails, or None when its network answers
    a small (side 32, or the segmenter's stride product) input with finite numbers of the right
    shape."""
    if isinstance(loaded, dict):           # the resume reader: Lightning takes it from here
        return None
    meta = loaded.meta
    with torch.inference_mode():
        if kind == "segmenter":
            from mrparotid.segmentation.network import size_multiple

            side = max(32, size_multiple(meta["model"]))
            out = loaded.model(torch.rand(1, len(loaded.series), side, side))
            numbers = [float(meta["postprocess"][k]) for k in meta["postprocess"]] + [meta["spacing_mm"]]
            ok = tuple(out.shape) == (1, 2, side, side) and all(map(math.isfinite, numbers))
        else:
            loaded.run_config(default_config())
            planes = len(loaded.channels) + len(loaded.series_flags)
            out = loaded.model(torch.rand(1, planes, 32, 32))
            ok = tuple(out.shape) == (1, 4)
    if not ok or not bool(torch.isfinite(out).all()):
        return f"loads, but its network answers {tuple(out.shape)} or non-finite numbers"
    return None


@functools.lru_cache(maxsize=1)
def default_config() -> dict:
    from mrparotid.config import load_config

    return load_config(None, [])


def run_case(kind: str, cases: list[Case], seeds: dict[str, dict], folder: Path,
             loader: str = "load") -> tuple[str, str]:
    """(outcome, detail) of seed ``kind`` with ``cases`` (of that seed; none: the seed as written)
    applied; outcome ``read``, ``error`` or ``BAD``. ``loader``: ``load`` (the model loaders) or
    ``resume`` (what Lightning resumes from)."""
    ckpt = seeds[kind]
    for n, case in enumerate(cases):
        try:
            ckpt = apply(ckpt, case)
        except Exception:                   # noqa: BLE001 - not on a seed: a stacked mutation
            if n == 0:                      # whose place an earlier one removed or retyped
                raise
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fuzzed.ckpt"
    torch.save(ckpt, path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                # tiny networks: threads only cost here
    try:
        outcome, why = guarded(lambda: use(kind, load(kind, path, loader)), CheckpointError, HANG_S)
    finally:
        torch.set_num_threads(threads)
    if outcome != "ok":
        return outcome, why
    return ("BAD", why) if why else ("read", "")
