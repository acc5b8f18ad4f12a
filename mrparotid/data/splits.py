"""The patient split: which patients train, validate and test. Computed here and nowhere else.

A split is ``{"train": [ids], "val": [ids], "test": [ids]}`` with sorted patient ids and no patient
in two splits. A run saves its split (``split.json`` in the run folder, and in the checkpoint) so
that nothing ever recomputes it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mrparotid.config import config_hash
from mrparotid.errors import ManifestError
from mrparotid.io.atomic import write_json
from mrparotid.io.manifest import SPLITS, PatientCase

SPLIT_FILE = "split.json"


def cohort_split(cases, data_cfg: dict) -> dict[str, list[str]]:
    """The split of ``cases`` under a config's ``data`` section (``test_fraction``,
    ``val_fraction``, ``split_seed``): the one call every stage uses."""
    return split_patients(cases, test_fraction=float(data_cfg["test_fraction"]),
                          val_fraction=float(data_cfg["val_fraction"]), seed=int(data_cfg["split_seed"]))


def split_patients(cases: list[PatientCase] | tuple[PatientCase, ...], *, test_fraction: float = 0.1,
                   val_fraction: float = 0.1, seed: int = 42) -> dict[str, list[str]]:
    """Patient-level split: the manifest's ``split`` where given, else a per-patient seeded draw.

    A patient without a split gets ``u = patient_unit(patient_id, seed)`` in [0, 1): test if
    ``u < test_fraction``, val if ``u < test_fraction + val_fraction * (1 - test_fraction)``, else
    train. So a patient's split depends only on its id and the seed: adding or removing patients
    never moves another one. Not stratified by diagnosis (that would tie patients together). If no
    patient at all would train, the drawn patient with the largest ``u`` trains.

    Returns
    -------
    dict
        ``{"train": [ids], "val": [ids], "test": [ids]}``; no id appears twice (asserted).
    """
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    val_cut = test_fraction + val_fraction * (1.0 - test_fraction)
    drawn: dict[str, float] = {}
    for c in cases:
        if c.split:
            splits[c.split].append(c.patient_id)
            continue
        u = drawn[c.patient_id] = patient_unit(c.patient_id, seed)
        splits["test" if u < test_fraction else "val" if u < val_cut else "train"].append(c.patient_id)
    if not splits["val"] and val_fraction > 0:   # train/test only: validation is carved from train
        carve_validation(splits, val_fraction, seed)
    if not splits["train"] and drawn:   # keep a training patient
        keep = max(drawn, key=lambda pid: (drawn[pid], pid))
        for name in ("test", "val"):
            if keep in splits[name]:
                splits[name].remove(keep)
        splits["train"].append(keep)
    assert_disjoint(splits)
    return {k: sorted(v) for k, v in splits.items()}


def carve_validation(splits: dict[str, list[str]], val_fraction: float, seed: int) -> list[str]:
    """Move ``val_fraction`` of the training patients (at least one from three on) to validation,
    those with the smallest seeded draw, so that a manifest naming only train and test still gets
    validation patients that are never test patients. Returns the moved ids (in place)."""
    train = sorted(splits["train"], key=lambda pid: (patient_unit(pid, seed), pid))
    moved = train[:share(len(train), val_fraction)]
    splits["val"].extend(moved)
    splits["train"] = [p for p in splits["train"] if p not in set(moved)]
    return moved


def patient_unit(patient_id: str, seed: int) -> float:
    """A patient's seeded draw in [0, 1): ``sha256("seed:patient_id")`` read as a fraction."""
    digest = hashlib.sha256(f"{int(seed)}:{patient_id}".encode()).hexdigest()
    return int(digest[:16], 16) / 2.0 ** 64


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


def patient_folds(cases, k: int, *, seed: int = 42, val_fraction: float = 0.1,
                  by_centre: bool = False) -> list[dict]:
    """K folds of patients, stratified by diagnosis (``by_centre``: by centre x diagnosis, the
    in-centre comparison of :func:`centre_folds`); each fold's test is one part, val a share of
    the rest, stratified by diagnosis (:func:`stratified_pick`: the malignant share of the
    validation patients is the cohort's, so no fold fails closed for want of them by chance).
    No patient is in two splits of a fold, and every patient is tested once.

    Unlike :func:`split_patients`, folds stay stratified (a fold must hold every diagnosis), so
    adding a patient may reshuffle the folds: a CV run saves each fold's split like any run."""
    if k < 2 or k > len(cases):
        raise ManifestError(f"--cv {k} needs 2 <= K <= number of patients ({len(cases)})",
                            fix="choose a smaller K")
    rng = np.random.default_rng(seed)
    parts: list[list[str]] = [[] for _ in range(k)]
    offset = 0

    def stratum(c: PatientCase):
        return (c.center or "", c.diagnosis) if by_centre else c.diagnosis
    for key in sorted({stratum(c) for c in cases}):
        ids = sorted(c.patient_id for c in cases if stratum(c) == key)
        rng.shuffle(ids)
        for j, pid in enumerate(ids):
            parts[(j + offset) % k].append(pid)
        offset += len(ids)
    folds = []
    by_id = {c.patient_id: c for c in cases}
    for i in range(k):
        rest = sorted(p for j, part in enumerate(parts) if j != i for p in part)
        # validation stratified by diagnosis, so every fold can validate its operating point
        val = stratified_pick([by_id[p] for p in rest], share(len(rest), val_fraction), rng)
        split = {"train": sorted(p for p in rest if p not in val), "val": sorted(val),
                 "test": sorted(parts[i])}
        assert_disjoint(split)
        folds.append(split)
    return folds


def require_centres(cases) -> list[str]:
    """The sorted centres of ``cases`` for leave-one-centre-out.

    Raises
    ------
    ConfigError
        A patient has no centre (named), or there are fewer than two centres.
    """
    from mrparotid.errors import ConfigError

    missing = [c.patient_id for c in cases if not c.center]
    if missing:
        raise ConfigError(f"--group centre: {len(missing)} patient(s) have no centre: {', '.join(missing)}",
                          fix="add a centre column to the manifest (centre, site, scanner, ...) or pass "
                              "--centre-from-dicom")
    centres = sorted({c.center for c in cases})
    if len(centres) < 2:
        raise ConfigError(f"--group centre needs at least 2 centres; the cohort has {len(centres)} "
                          f"({', '.join(centres) or 'none'})",
                          fix="add patients of another centre, or cross-validate by patient (--cv K)")
    return centres


def centre_folds(cases, *, seed: int = 42, val_fraction: float = 0.1) -> tuple[list[str], list[dict]]:
    """Leave-one-centre-out: (the centres, one fold per centre in that order). A fold's test is
    the whole centre; its validation (``val_fraction`` of the other centres' patients,
    stratified by diagnosis) and training are the other centres' patients only
    (:func:`assert_centre_held_out`). Raises ConfigError as :func:`require_centres`."""
    centres = require_centres(cases)
    rng = np.random.default_rng(seed)
    folds = []
    for centre in centres:
        rest = [c for c in cases if c.center != centre]
        val = stratified_pick(rest, share(len(rest), val_fraction), rng)
        split = {"train": sorted(c.patient_id for c in rest if c.patient_id not in val),
                 "val": sorted(val), "test": sorted(c.patient_id for c in cases if c.center == centre)}
        assert_centre_held_out(split, {c.patient_id: c.center for c in cases}, centre)
        folds.append(split)
    return centres, folds


def stratified_pick(cases, n: int, rng: np.random.Generator) -> set[str]:
    """``n`` patient ids of ``cases``, each diagnosis in proportion to its share: within a
    diagnosis, shuffled ids get ranks (j + 0.5) / n_diagnosis, and the ``n`` lowest ranks are
    taken (ties broken at random)."""
    ranked = []
    for diagnosis in sorted({c.diagnosis for c in cases}):
        ids = sorted(c.patient_id for c in cases if c.diagnosis == diagnosis)
        rng.shuffle(ids)
        ranked += [((j + 0.5) / len(ids), float(rng.random()), pid) for j, pid in enumerate(ids)]
    return {pid for _, _, pid in sorted(ranked)[:n]}


def assert_centre_held_out(split: dict[str, list[str]], centre_of: dict[str, str], centre: str) -> None:
    """Raise if a patient is in two splits, if the test split holds any centre but ``centre``, or
    if ``centre`` also trains or validates: each centre has one role, test or development."""
    assert_disjoint(split)
    tested = {centre_of[p] for p in split["test"]}
    developing = {centre_of[p] for name in ("train", "val") for p in split.get(name, [])}
    if tested != {centre} or centre in developing:
        raise AssertionError(f"centre {centre!r} is not held out: test holds {sorted(tested)}, train/val "
                             f"hold {sorted(developing)}: centre-level leakage")


def split_record(splits: dict[str, list[str]], cases) -> dict:
    """What a run saves of its split: the ids per split, a hash of those patients' manifest rows
    (diagnosis, folder, split column), so a later change of the manifest can be noticed, and per
    patient a hash of what decides its scores and split (id, diagnosis, split column)."""
    by_id = {c.patient_id: c for c in cases}
    rows = [by_id[pid].row() for ids in splits.values() for pid in ids if pid in by_id]
    carved = sorted(p for p in splits.get("val", []) if p in by_id and by_id[p].split == "train")
    return {"splits": {k: sorted(v) for k, v in splits.items()}, "val_carved_from_train": carved,
            "manifest_rows_hash": config_hash(sorted(rows, key=lambda r: r["patient_id"]), length=16),
            "patient_hashes": {r["patient_id"]: _patient_hash(r) for r in rows}}


def _patient_hash(row: dict) -> str:
    return config_hash([row["patient_id"], row["diagnosis"], row["split"]], length=12)


def saved_split(record: dict | None, cases, wanted: list[str], *, source: str | Path,
                manifest: str | Path) -> dict[str, list[str]]:
    """A finished run's split (``record`` from :func:`split_record`), checked against today's
    manifest ``cases``; never recomputed.

    Raises
    ------
    CheckpointError
        The run saved no split (an old checkpoint).
    ManifestError
        A patient of the ``wanted`` splits is not in the manifest or its row changed (diagnosis or
        split column), or the manifest now puts one of the run's patients in another split.
    """
    from mrparotid.errors import CheckpointError

    if not record or "splits" not in record:
        raise CheckpointError("the checkpoint has no saved patient split (written before runs saved "
                              "one), so its test patients are unknown", path=source,
                              fix="re-run 'mrparotid fit' and evaluate the new checkpoint")
    splits = {k: list(v) for k, v in record["splits"].items()}
    by_id = {c.patient_id: c for c in cases}
    wanted_ids = [p for name in wanted for p in splits.get(name, [])]
    missing = [p for p in wanted_ids if p not in by_id]
    if missing:
        raise ManifestError(f"the run's {'/'.join(wanted)} patient(s) {', '.join(missing)} are not in "
                            "the manifest", path=manifest,
                            fix="pass the manifest the run was trained on (RUN_DIR/config.yaml data.manifest)")
    where = {pid: name for name, ids in splits.items() for pid in ids}
    carved = set(record.get("val_carved_from_train", ()))
    moved = [f"{c.patient_id} ({where[c.patient_id]} in the run, {c.split} now)" for c in cases
             if c.split and c.patient_id in where and c.split != where[c.patient_id]
             and not (c.patient_id in carved and c.split == "train")]
    if moved:
        raise ManifestError(f"the manifest's split column moves run patients: {', '.join(moved)}",
                            path=manifest, fix="restore the split column the run was trained with")
    hashes = record.get("patient_hashes", {})
    changed = [p for p in wanted_ids if p in hashes and _patient_hash(by_id[p].row()) != hashes[p]]
    if changed:
        raise ManifestError(f"manifest rows changed since the run (diagnosis or split) for "
                            f"{', '.join(changed)}", path=manifest,
                            fix="restore the manifest the run used, or re-run 'mrparotid fit'")
    return splits


def save_split(run_dir: Path, splits: dict[str, list[str]], cases) -> dict:
    """Write ``split.json`` into ``run_dir``; returns the record."""
    record = split_record(splits, cases)
    write_json(Path(run_dir) / SPLIT_FILE, record, indent=1)
    return record
