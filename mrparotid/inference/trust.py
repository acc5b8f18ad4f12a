"""Whether a patient's answer can be trusted as a test result: the automatic masks' segmenter
reached its Dice floor on its own validation patients and gave plausible glands, and the patient
did not train or validate the classifier. Each check gives a reason (the answer becomes
``refer``) or a note; nothing here raises."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

#: Plausible volume of one parotid gland on the T1 grid, mm³ (adult glands are about 15-30 cm³;
#: the range is wide on purpose: it catches a mask that is a fragment or swallowed the neck).
GLAND_VOLUME_MM3 = (2_000.0, 120_000.0)


def segmenter_validation_dice(segmenter_path: str | Path) -> dict | None:
    """The segmenter run's validation Dice ``{gland, tumour}`` from its ``summary.json`` (beside
    ``checkpoints/``); None when it has none. Read once per version of the file, not per patient."""
    summary = Path(segmenter_path).resolve().parent.parent / "summary.json"
    try:
        stamp = summary.stat().st_mtime_ns
    except OSError:
        return None
    found = _dice_of(str(summary), stamp)
    return dict(found) if found is not None else None


@functools.lru_cache(maxsize=8)
def _dice_of(summary: str, stamp: int) -> tuple | None:
    """``(("gland", d), ("tumour", d))`` of one version (``stamp``: mtime) of a ``summary.json``."""
    try:
        val = json.loads(Path(summary).read_text(encoding="utf-8")).get("val") or {}
    except (OSError, ValueError, AttributeError):
        return None
    out = {k: val.get(f"{k}_dice") for k in ("gland", "tumour")}
    return tuple(out.items()) if all(isinstance(v, (int, float)) for v in out.values()) else None


def segmenter_reasons(segmenter_path: str | Path, floors: dict, gland: np.ndarray | None,
                      spacing_mm: tuple[float, float, float]) -> list[str]:
    """Why automatic masks from ``segmenter_path`` are not reliable for this patient: validation
    Dice below ``floors`` (``{gland, tumour}``), none recorded, or a gland side (labels 1/2, or the
    whole mask) whose volume lies outside :data:`GLAND_VOLUME_MM3`. [] when they are."""
    reasons = []
    dice = segmenter_validation_dice(segmenter_path)
    if dice is None:
        reasons.append("the segmenter's run records no validation Dice (summary.json 'val'), so its "
                       "masks were never validated")
    else:
        for k in ("gland", "tumour"):
            if dice[k] < float(floors[k]):
                reasons.append(f"the segmenter's validation {k} Dice {dice[k]:.3f} is below the floor "
                               f"{float(floors[k]):.2f} (decision.min_seg_dice_{k})")
    if gland is not None:
        voxel = float(np.prod(spacing_mm))
        labels = [v for v in (1, 2) if (gland == v).any()] or ([None] if gland.any() else [])
        lo, hi = GLAND_VOLUME_MM3
        for v in labels:
            vol = float(((gland == v) if v is not None else gland > 0).sum()) * voxel
            if not lo <= vol <= hi:
                reasons.append(f"the automatic gland{'' if v is None else ' ' + str(v)} is "
                               f"{vol / 1000:.1f} cm³, outside the plausible {lo / 1000:g}-{hi / 1000:g} cm³")
    return reasons


def training_note(patient_id: str, meta: dict) -> str | None:
    """A note when ``patient_id`` trained or validated the checkpoint (its split record)."""
    splits = ((meta.get("split") or {}).get("splits") or {}) if isinstance(meta, dict) else {}
    for name, word in (("train", "trained"), ("val", "validated")):
        if patient_id in (splits.get(name) or []):
            return (f"patient {patient_id} {word} this model (the run's split.json): its answer is "
                    "not a test result")
    return None
