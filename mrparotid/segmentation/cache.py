"""The segmenter's training data on disk: one ``.npz`` per patient (its :class:`SliceStack` and its
given masks on the T1 grid), keyed by the manifest row, the input files and the slice settings.

A refit with the same series, spacing and percentiles reads the cache instead of the images.
Entries are written atomically (:func:`mrparotid.io.atomic.atomic_path`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrparotid.config import config_hash
from mrparotid.data.cache import PreparedCohort, fill_cache
from mrparotid.io.atomic import atomic_path
from mrparotid.io.manifest import Manifest, PatientCase
from mrparotid.segmentation.slices import SliceStack, study_slices

CACHE_VERSION = 1
SLICE_KEYS = ("series", "spacing_mm", "percentiles")


@dataclass(frozen=True)
class CachedPatient:
    """A cached patient: its slices and its given masks on the T1 grid (uint8, z, y, x)."""

    stack: SliceStack
    gland: np.ndarray
    tumour: np.ndarray


def seg_cache_dir(manifest: Manifest, cfg: dict) -> Path:
    """``data.cache_dir``, else ``<manifest folder>/.mrparotid_cache/segment``."""
    if cfg["data"].get("cache_dir"):
        return Path(cfg["data"]["cache_dir"])
    return manifest.path.parent / ".mrparotid_cache" / "segment"


def slice_settings(cfg: dict) -> dict:
    return {k: cfg["data"][k] for k in SLICE_KEYS}


def seg_cache_key(case: PatientCase, fingerprint: list, cfg: dict) -> str:
    return config_hash({"row": case.row(), "files": fingerprint, "slices": slice_settings(cfg),
                        "version": CACHE_VERSION}, length=16)


def save_patient(path: Path, entry: CachedPatient) -> None:
    s = entry.stack
    meta = {"patient_id": s.patient_id, "series": list(s.series), "grid_shape": list(s.grid_shape),
            "spacing": list(s.spacing)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=s.images.astype(np.float16), stack_gland=s.gland,
                                stack_tumour=s.tumour, gland=entry.gland, tumour=entry.tumour,
                                meta=np.array(json.dumps(meta)))


def load_patient(path: Path) -> CachedPatient:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        stack = SliceStack(meta["patient_id"], tuple(meta["series"]), z["images"].astype(np.float32),
                           z["stack_gland"], z["stack_tumour"], tuple(meta["grid_shape"]),
                           tuple(meta["spacing"]))
        return CachedPatient(stack, z["gland"], z["tumour"])


class SegCohort(PreparedCohort):
    """Segmenter cache entries of a cohort (patient id → npz path) and the patients that failed
    (the fields of :class:`mrparotid.data.cache.PreparedCohort`)."""


def prepare_seg_cohort(manifest: Manifest, cfg: dict, *, skip_bad: bool | None = None,
                       progress: bool = True) -> SegCohort:
    """Build (or reuse) every patient's cached slices; patients read as for training
    (:func:`mrparotid.data.preprocess.load_study`, gland and tumour masks required), through the
    crop cache's loop (:func:`mrparotid.data.cache.fill_cache`).

    Raises
    ------
    CohortError
        Some patients failed and ``skip_bad`` (default ``data.skip_bad``) is False.
    """
    from mrparotid.data.preprocess import load_study

    d = cfg["data"]

    def save(case: PatientCase, files, key: str, path: Path) -> None:
        study = load_study(case, mode="train", files=files)
        stack = study_slices(study, d["series"], float(d["spacing_mm"]), tuple(d["percentiles"]))
        save_patient(path, CachedPatient(stack, (study.gland > 0).astype(np.uint8),
                                         (study.tumour > 0).astype(np.uint8)))

    return fill_cache(SegCohort(manifest, seg_cache_dir(manifest, cfg)),
                      key=lambda case, files: seg_cache_key(case, files.fingerprint(), cfg), build=save,
                      desc="segmenter slices", required="meta", progress=progress,
                      skip_bad=d["skip_bad"] if skip_bad is None else skip_bad)
