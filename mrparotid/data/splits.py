"""The patient split: which patients train, validate and test. Computed here and nowhere else.

A split is ``{"train": [ids], "val": [ids], "test": [ids]}`` with sorted patient ids and no patient
in two splits. A run saves its split (``split.json`` in the run folder, and in the checkpoint) so
that nothing ever recomputes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrparotid.config import config_hash
from mrparotid.errors import ManifestError
from mrparotid.io.manifest import SPLITS, PatientCase

SPLIT_FILE = "split.json"


def cohort_split(cases, data_cfg: dict) -> dict[str, list[str]]:
    """The split of ``cases`` under a config's ``data`` section (``test_fraction``,
    ``val_fraction``, ``split_seed``): the one call every stage uses."""
    return split_patients(cases, test_fraction=float(data_cfg["test_fraction"]),
                          val_fraction=float(data_cfg["val_fraction"]), seed=int(data_cfg["split_seed"]))


def split_patients(cases: list[PatientCase] | tuple[PatientCase, ...], *, test_fraction: float = 0.1,
                   val_fraction: float = 0.1, seed: int = 42) -> dict[str, list[str]]:
    """Patient-level split: the manifest's ``split`` where given, else seeded and stratified.

    Patients without a split are shuffled per diagnosis with ``seed``; ``test_fraction`` of each
    diagnosis go to test, then ``val_fraction`` of the rest to val (rounded, at least one patient
    per split when the diagnosis has three or more patients and the fraction is > 0).

    Returns
    -------
    dict
        ``{"train": [ids], "val": [ids], "test": [ids]}``; no id appears twice (asserted).
    """
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    todo: dict[str, list[str]] = {}
    for c in cases:
        if c.split:
            splits[c.split].append(c.patient_id)
        else:
            todo.setdefault(c.diagnosis, []).append(c.patient_id)
    rng = np.random.default_rng(seed)
    for diagnosis in sorted(todo):
        ids = sorted(todo[diagnosis])
        rng.shuffle(ids)
        n_test = share(len(ids), test_fraction)
        n_val = share(len(ids) - n_test, val_fraction, at_least_one=len(ids) >= 3)
        n_val = max(0, min(n_val, len(ids) - n_test - 1))   # keep a training patient
        splits["test"] += ids[:n_test]
        splits["val"] += ids[n_test:n_test + n_val]
        splits["train"] += ids[n_test + n_val:]
    assert_disjoint(splits)
    return {k: sorted(v) for k, v in splits.items()}


def share(n: int, fraction: float, *, at_least_one: bool | None = None) -> int:
    if fraction <= 0 or n == 0:
        return 0
    k = int(round(n * fraction))
    return max(k, 1) if (n >= 3 if at_least_one is None else at_least_one) else k


def assert_disjoint(splits: dict[str, list[str]]) -> None:
    """Raise if any patient is in two splits (or twice in one)."""
    seen: dict[str, str] = {}
    for name, ids in splits.items():
        for pid in ids:
            if pid in seen:
                raise AssertionError(f"patient {pid} is in split {seen[pid]!r} and {name!r}: "
                                     "patient-level leakage")
            seen[pid] = name


def patient_folds(cases, k: int, *, seed: int = 42, val_fraction: float = 0.1) -> list[dict]:
    """K folds of patients, stratified by diagnosis; each fold's test is one part, val a share
    of the rest. No patient is in two splits of a fold, and every patient is tested once."""
    if k < 2 or k > len(cases):
        raise ManifestError(f"--cv {k} needs 2 <= K <= number of patients ({len(cases)})",
                            fix="choose a smaller K")
    rng = np.random.default_rng(seed)
    parts: list[list[str]] = [[] for _ in range(k)]
    offset = 0
    for diagnosis in sorted({c.diagnosis for c in cases}):
        ids = sorted(c.patient_id for c in cases if c.diagnosis == diagnosis)
        rng.shuffle(ids)
        for j, pid in enumerate(ids):
            parts[(j + offset) % k].append(pid)
        offset += len(ids)
    folds = []
    for i in range(k):
        rest = sorted(p for j, part in enumerate(parts) if j != i for p in part)
        rng.shuffle(rest)
        n_val = share(len(rest), val_fraction)
        split = {"train": sorted(rest[n_val:]), "val": sorted(rest[:n_val]), "test": sorted(parts[i])}
        assert_disjoint(split)
        folds.append(split)
    return folds


def split_record(splits: dict[str, list[str]], cases) -> dict:
    """What a run saves of its split: the ids per split and a hash of those patients' manifest rows
    (diagnosis, folder, split column), so a later change of the manifest can be noticed."""
    by_id = {c.patient_id: c for c in cases}
    rows = [by_id[pid].row() for ids in splits.values() for pid in ids if pid in by_id]
    return {"splits": {k: sorted(v) for k, v in splits.items()},
            "manifest_rows_hash": config_hash(sorted(rows, key=lambda r: r["patient_id"]), length=16)}


def save_split(run_dir: Path, splits: dict[str, list[str]], cases) -> dict:
    """Write ``split.json`` into ``run_dir``; returns the record."""
    record = split_record(splits, cases)
    (Path(run_dir) / SPLIT_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record
