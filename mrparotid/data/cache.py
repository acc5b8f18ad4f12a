"""Prepared crops on disk, one ``.npz`` per patient, keyed by everything that made them.

The key hashes the manifest row, the input files' names, sizes and mtimes and the preprocessing
config (:data:`mrparotid.config.PREPROCESS_KEYS`), so a changed patient or setting re-prepares
only what changed. Files are written atomically (:mod:`mrparotid.io.atomic`: temp file + rename),
so a killed ``prepare`` never leaves a half-written entry, and an entry that does not open as a
complete ``.npz`` is rebuilt, never loaded. A file lock (``<cache>/.lock``) lets one process at a
time prepare a cache folder: a second ``prepare`` on the same cohort waits, then reuses.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrparotid.config import config_hash, preprocess_config
from mrparotid.constants import CLASSES, DIAGNOSES
from mrparotid.data.crops import PLANES
from mrparotid.data.preprocess import PatientSlices, patient_files, prepare_patient
from mrparotid.data.splits import cohort_split
from mrparotid.errors import CohortError, MrParotidError, OutputError
from mrparotid.io.atomic import atomic_path
from mrparotid.io.manifest import Manifest, PatientCase, outside_manifest_folder

CACHE_VERSION = 2  # 2: series normalised over every slice of both sides (issue 9)


def default_cache_dir(manifest: Manifest, cfg: dict) -> Path:
    if cfg["data"].get("cache_dir"):
        return Path(cfg["data"]["cache_dir"])
    return manifest.path.parent / ".mrparotid_cache"


def cache_key(case: PatientCase, fingerprint: list, cfg: dict) -> str:
    return config_hash({"row": case.row(), "files": fingerprint, "pre": preprocess_config(cfg),
                        "version": CACHE_VERSION}, length=16)


LOCK_FILE = ".lock"


def save_slices(path: Path, slices: PatientSlices, provenance: dict) -> None:
    """Write one entry atomically; a temporary of an earlier, killed write is removed first."""
    for stale in path.parent.glob(f".{path.name}.tmp*"):   # only under the cache lock
        stale.unlink(missing_ok=True)
    with atomic_path(path) as tmp:
        np.savez(tmp, crops=slices.crops, labels=slices.labels, sides=slices.sides,
                 slice_index=slices.slice_index, z_mm=slices.z_mm,
                 provenance=np.array(json.dumps(dict(provenance, planes=list(slices.planes)))))


def entry_complete(path: Path, required: str = "provenance") -> bool:
    """True when ``path`` opens as a whole cache entry (the zip directory at its end reads, and
    it lists the array ``required``); a missing, truncated or foreign file is not."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return required in z.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def cache_lock(cache_dir: Path, *, progress: bool = True):
    """The cache folder's file lock, acquired (waits for another process, saying so)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(cache_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=1)
    except Timeout:
        if progress:
            print(f"waiting for another mrparotid process preparing {cache_dir}")
        lock.acquire()
    return lock


def load_slices(path: Path) -> tuple[PatientSlices, dict]:
    with np.load(path, allow_pickle=False) as z:
        prov = json.loads(str(z["provenance"]))
        return PatientSlices(prov["patient_id"], z["crops"], z["labels"], z["sides"],
                             z["slice_index"], z["z_mm"], tuple(prov.get("planes", PLANES))), prov


@dataclass
class PreparedCohort:
    """Cache entries of a cohort: patient id → npz path; the patients that failed."""

    manifest: Manifest
    cache_dir: Path
    entries: dict[str, Path] = field(default_factory=dict)
    bad: list[MrParotidError] = field(default_factory=list)
    built: int = 0

    def ok_cases(self) -> list[PatientCase]:
        """The manifest's patients that prepared, in manifest order."""
        return [c for c in self.manifest.cases if c.patient_id in self.entries]


def prepare_patients(manifest: Manifest, patient_ids, cfg: dict, *,
                     progress: bool = False) -> PreparedCohort:
    """:func:`prepare_cohort` of the manifest's rows for ``patient_ids`` only; a patient that
    fails is left out of ``entries`` (and named in ``bad``), never raised."""
    from dataclasses import replace

    wanted = set(patient_ids)
    return prepare_cohort(replace(manifest, cases=tuple(c for c in manifest.cases if c.patient_id in wanted)),
                          cfg, skip_bad=True, progress=progress)


def prepare_cohort(manifest: Manifest, cfg: dict, *, skip_bad: bool | None = None,
                   progress: bool = True) -> PreparedCohort:
    """Build (or reuse) the cached crops of every patient in ``manifest``.

    Raises
    ------
    CohortError
        Some patients failed and ``skip_bad`` is False; every bad patient is named.
    """
    def save(case: PatientCase, files, key: str, path: Path) -> None:
        save_slices(path, prepare_patient(case, cfg, files=files),
                    {"patient_id": case.patient_id, "diagnosis": case.diagnosis, "key": key,
                     "preprocess": preprocess_config(cfg), "synthetic": manifest.synthetic})

    return fill_cache(PreparedCohort(manifest, default_cache_dir(manifest, cfg)),
                      key=lambda case, files: cache_key(case, files.fingerprint(), cfg), build=save,
                      desc="prepare", skip_bad=cfg["data"]["skip_bad"] if skip_bad is None else skip_bad,
                      progress=progress)


def fill_cache(result: PreparedCohort, *, key, build, desc: str, skip_bad: bool, progress: bool,
               required: str = "provenance") -> PreparedCohort:
    """Build or reuse one entry per patient of ``result.manifest`` under ``result.cache_dir``,
    holding the folder's lock (:func:`cache_lock`); the loop of every cache of this package.

    ``key(case, files)`` gives the entry's key (:func:`entry_path`); ``build(case, files, key,
    path)`` writes a missing or incomplete entry (:func:`entry_complete` with ``required``)
    atomically. A patient whose files fail goes to ``result.bad``; a full disk
    (:class:`OutputError`) stops the run.

    Raises
    ------
    CohortError
        Some patients failed and ``skip_bad`` is False; every bad patient is named.
    """
    from mrparotid.io.progress import progress_bar

    manifest, cache_dir = result.manifest, result.cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    bar = progress_bar(manifest.cases, desc=desc + (" (SYNTHETIC)" if manifest.synthetic else ""),
                       unit="patient", enabled=progress)
    lock = cache_lock(cache_dir, progress=progress)    # one writer at a time
    try:
        for case in bar:
            bar.set_postfix_str(case.patient_id)
            try:
                files = patient_files(case, require_tumour=True)
                entry_key = key(case, files)
                path = entry_path(cache_dir, case.patient_id, entry_key)
                if not entry_complete(path, required):     # missing, or truncated by a crash or copy
                    build(case, files, entry_key, path)
                    result.built += 1
                result.entries[case.patient_id] = path
            except OutputError:     # a full disk is no bad patient: stop, naming the path
                raise
            except MrParotidError as err:
                result.bad.append(err)
    finally:
        lock.release()
    if result.bad and not skip_bad:
        raise CohortError(result.bad)
    return result


def entry_path(cache_dir: Path, patient_id: str, key: str) -> Path:
    """``<cache_dir>/<patient id>__<key>.npz``, the id's characters other than letters, digits and
    ``-_.`` replaced by ``_``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in patient_id)
    return cache_dir / f"{safe}__{key}.npz"


def cohort_table(prepared: PreparedCohort, cfg: dict) -> dict:
    """Per split: patients per diagnosis and slices per class (the ``prepare --json`` shape)."""
    splits = cohort_split(prepared.ok_cases(), cfg["data"])
    by_id = prepared.manifest.by_id()
    table = {}
    for split, ids in splits.items():
        slices = dict.fromkeys(CLASSES, 0)
        diagnoses = dict.fromkeys(DIAGNOSES, 0)
        for pid in ids:
            with np.load(prepared.entries[pid]) as z:
                counts = np.bincount(z["labels"], minlength=len(CLASSES))
            for c, n in zip(CLASSES, counts):
                slices[c] += int(n)
            diagnoses[by_id[pid].diagnosis] += 1
        table[split] = {"patients": len(ids), "diagnoses": diagnoses, "slices": slices}
    return {"splits": table, "bad_patients": [str(e) for e in prepared.bad],
            "synthetic": prepared.manifest.synthetic,
            "outside_manifest_folder": {c.patient_id: str(c.patient_dir)
                                        for c in outside_manifest_folder(prepared.manifest)}}


def format_table(summary: dict) -> str:
    """Human table: per split, patients per diagnosis and slices per class.

    ::

        split | patients   PA  Warthin  malignant | slices  no tumour   PA  Warthin  malignant
        train |       48   16       16         16 |    700        379  102      113        106
    """
    short = {"no_tumour": "no tumour", "pleomorphic_adenoma": "PA", "warthin": "Warthin",
             "malignant": "malignant"}
    head = (["split", "|", "patients"] + [short[d] for d in DIAGNOSES] + ["|", "slices"]
            + [short[c] for c in CLASSES])
    rows = [head]
    for split, s in summary["splits"].items():
        rows.append([split, "|", str(s["patients"])] + [str(s["diagnoses"][d]) for d in DIAGNOSES]
                    + ["|", str(sum(s["slices"].values()))] + [str(s["slices"][c]) for c in CLASSES])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
    if summary.get("synthetic"):
        lines.insert(0, "SYNTHETIC phantom cohort - not patient data")
    outside = summary.get("outside_manifest_folder") or {}
    if outside:
        lines.append(f"{len(outside)} patient folder(s) outside the manifest's folder "
                     "(through .., an absolute path or a symbolic link):")
        lines += [f"  {pid}: {folder}" for pid, folder in outside.items()]
    if summary["bad_patients"]:
        lines.append(f"{len(summary['bad_patients'])} bad patient(s) left out:")
        lines += [f"  {b}" for b in summary["bad_patients"]]
    return "\n".join(lines)
