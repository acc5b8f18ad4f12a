"""The config walk that tests/training/test_config_walk.py (the classifier's configs) and
tests/segmentation/test_segment_config.py (``segment.yaml``) share: every leaf key is changed in
turn and must change what its probe sees, or be refused with a :class:`MrParotidError`; and the
probes of the keys both configs have (seed, split, phantom cohort, ``skip_bad``)."""

from __future__ import annotations

from pathlib import Path

import torch

from mrparotid.errors import MrParotidError
from mrparotid.io.manifest import Manifest, PatientCase


def leaves(mapping: dict, where: str = ""):
    """The dotted names of the leaf keys of ``mapping`` (``"data.batch_size"``), in file order."""
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{where}{key}.")
        else:
            yield f"{where}{key}"


def changed(key: str, value, tmp: Path, alternatives: dict):
    """A new value for ``key`` (now ``value``): the first of ``alternatives[key]`` that differs
    (``{tmp}`` filled in), else one derived from the type."""
    if key in alternatives:
        options = [v.replace("{tmp}", str(tmp)) if isinstance(v, str) else v for v in alternatives[key]]
        return next(v for v in options if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value + 0.05, 4)
    raise AssertionError(f"no new value for {key} ({value!r}): add it to ALTERNATIVES")


def override(key: str, value) -> dict:
    """The override mapping that sets the dotted ``key`` to ``value``."""
    section, _, leaf = key.partition(".")
    return {section: {leaf: value}} if leaf else {section: value}


def assert_key_has_effect(key: str, fn, base: dict, load, tmp: Path, monkeypatch, alternatives: dict,
                          where: str = "") -> None:
    """Change ``key`` of the loaded config ``base`` (``load(overrides)`` loads it changed): the
    probe ``fn`` must see something else, or the loader or probe must refuse the value."""
    assert fn is not None, f"config key {key} has no probe: add one (what object uses it?)"
    section, _, leaf = key.partition(".")
    value = changed(key, base[section][leaf] if leaf else base[section], tmp, alternatives)
    try:
        cfg = load(override(key, value))
        after = fn(cfg, tmp=tmp, monkeypatch=monkeypatch)
    except MrParotidError:
        return                                                          # refused: fine
    before = fn(base, tmp=tmp, monkeypatch=monkeypatch)
    assert repr(after) != repr(before), f"{where}changing {key} to {value!r} changed nothing"


def split_probe(cfg):
    """The split of 200 patients under ``cfg["data"]``."""
    from mrparotid.data.splits import cohort_split

    return cohort_split([PatientCase(f"P{i}", "warthin", Path("x")) for i in range(200)], cfg["data"])


def phantom_probe(cfg, monkeypatch):
    """The manifest a run without one uses (the phantom cohort is not made)."""
    import mrparotid.data.phantom as phantom
    from mrparotid.training.run_dir import default_manifest

    monkeypatch.setattr(phantom, "make_cohort", lambda root, n, **kw: Path(root) / "manifest.csv")
    return default_manifest(cfg, progress=False)


def skip_bad_probe(prepare, cfg, tmp: Path):
    """What ``prepare`` (a cohort cache builder) makes of a cohort whose only patient is missing:
    the number of bad patients, or the name of the error it raises."""
    mf = Manifest(tmp / "m.csv", (PatientCase("GONE", "warthin", tmp / "no_such_patient"),))
    try:
        return len(prepare(mf, dict(cfg, data=dict(cfg["data"], cache_dir=str(tmp / "c"))), progress=False).bad)
    except MrParotidError as err:
        return type(err).__name__


def seed_probe(cfg):
    """The first random number after the run is seeded."""
    from mrparotid.training.fit import seed_run

    seed_run(cfg)
    return float(torch.rand(1))
