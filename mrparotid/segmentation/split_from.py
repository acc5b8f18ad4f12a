"""``segment fit --split-from RUN_DIR``: the segmenter takes a classifier run's saved patient split
(its ``split.json``, a :func:`mrparotid.data.splits.split_record`) instead of drawing one, so it
never trains or validates on the classifier's test patients. The split is read, never recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

from mrparotid.data.splits import SPLIT_FILE, assert_disjoint, saved_split
from mrparotid.errors import ConfigError
from mrparotid.io.manifest import SPLITS

FIX = "give the folder of a finished 'mrparotid fit' run (it holds split.json)"


def read_run_split(run: str | Path) -> dict:
    """The split record of a run folder (or of a ``split.json`` given directly).

    Raises
    ------
    ConfigError
        No such file, not JSON, or not a split record (``{"splits": {"train", "val", "test"}}``
        with lists of patient ids, no patient in two splits).
    """
    path = Path(run)
    path = path / SPLIT_FILE if path.is_dir() else path
    if not path.is_file():
        raise ConfigError("--split-from: no split.json here", path=path, fix=FIX)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--split-from: split.json cannot be read ({type(exc).__name__})", path=path,
                          fix=FIX) from None
    splits = record.get("splits") if isinstance(record, dict) else None
    if (not isinstance(splits, dict) or not splits or set(splits) - set(SPLITS)
            or not all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in splits.values())):
        raise ConfigError("--split-from: not a patient split record (want {\"splits\": {\"train\": [...], "
                          "\"val\": [...], \"test\": [...]}})", path=path, fix=FIX)
    try:
        assert_disjoint(splits)
    except AssertionError as exc:
        raise ConfigError(f"--split-from: {exc}", path=path, fix=FIX) from None
    return record


def splits_from_record(record: dict, cases, *, source: str | Path,
                       manifest: str | Path) -> tuple[dict[str, list[str]], list[str]]:
    """(the record's split restricted to ``cases``, the ids of ``cases`` it does not name).

    Patients of the record that are not among ``cases`` (bad, or not in this manifest) are left
    out; patients of ``cases`` that the record does not name take no part in the segmenter's run.

    Raises
    ------
    ManifestError
        A patient's manifest row (diagnosis, split column) changed since the classifier run, or
        the manifest's split column moves one of its patients
        (:func:`mrparotid.data.splits.saved_split`).
    """
    ids = {c.patient_id for c in cases}
    kept = {name: sorted(p for p in record["splits"].get(name, []) if p in ids) for name in SPLITS}
    splits = saved_split(dict(record, splits=kept), cases, list(SPLITS), source=source, manifest=manifest)
    named = {p for v in splits.values() for p in v}
    return {name: sorted(splits.get(name, [])) for name in SPLITS}, sorted(ids - named)
