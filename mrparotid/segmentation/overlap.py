"""Does a segmenter know the classifier's test patients? A segmenter that trained or validated on
a patient draws that patient's automatic masks better than it would a new patient's, so the
classifier's test figures on automatic masks would be optimistic there.

Splits are split records (``{"splits": {"train": [ids], "val": [ids], "test": [ids]}, ...}``, see
:func:`mrparotid.data.splits.split_record`) or their ``splits`` mapping; a classifier's or
segmenter's checkpoint meta holds its record under ``"split"``.
"""

from __future__ import annotations

from pathlib import Path

from mrparotid.errors import ConfigError

#: How many patient ids a message names before it says "and N more".
SHOWN = 8


def split_ids(obj: dict | None) -> dict[str, list[str]] | None:
    """The ``{"train", "val", "test"}`` mapping of a checkpoint meta, a split record or a mapping
    itself; None when ``obj`` records no split."""
    if not isinstance(obj, dict):
        return None
    if "split" in obj:                                   # a checkpoint meta
        obj = obj["split"] if isinstance(obj["split"], dict) else None
        return split_ids(obj)
    if "splits" in obj:                                  # a split record
        return split_ids(obj["splits"]) if isinstance(obj["splits"], dict) else None
    if any(k in obj for k in ("train", "val", "test")):
        return {k: list(obj.get(k) or []) for k in ("train", "val", "test")}
    return None


def segmenter_overlap(seg_split: dict, cls_split: dict) -> list[str]:
    """Sorted ids of the classifier's test patients that the segmenter trained or validated on."""
    seg, cls = split_ids(seg_split) or {}, split_ids(cls_split) or {}
    seen = set(seg.get("train", [])) | set(seg.get("val", []))
    return sorted(seen & set(cls.get("test", [])))


def check_segmenter_overlap(seg_meta: dict, cls_meta_or_split: dict | None, *, allow: bool,
                            seg_path: str | Path | None, cls_path: str | Path | None) -> str | None:
    """Refuse a segmenter that trained or validated on any of the classifier's test patients, or
    that records no split while the classifier has test patients; with ``allow``
    (``--allow-overlap``) return the warning instead. None when there is nothing to say (no
    overlap, or a classifier without a recorded split or without test patients).

    Raises
    ------
    ConfigError
        The overlap (its count, the first ids, the fix), unless ``allow``.
    """
    cls = split_ids(cls_meta_or_split)
    if not cls or not cls.get("test"):
        return None
    n_test = len(cls["test"])
    fix = (f"train the segmenter on the classifier's split: mrparotid segment fit --split-from "
           f"{_run_dir(cls_path)} (or pass --allow-overlap to go on, its automatic-mask figures then "
           "optimistic for those patients)")
    if split_ids(seg_meta) is None:
        message = (f"the segmenter records no patient split (written before segmenters saved one), so "
                   f"whether it trained on any of the classifier's {n_test} test patients is unknown")
        if allow:
            return message + " (--allow-overlap)"
        raise ConfigError(message, path=seg_path, fix=fix)
    ids = segmenter_overlap(seg_meta, cls)
    if not ids:
        return None
    shown = ", ".join(ids[:SHOWN]) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
    message = (f"the segmenter trained or validated on {len(ids)} of the classifier's {n_test} test "
               f"patients ({shown}; classifier {cls_path})")
    if allow:
        return message + ": its automatic masks of them are optimistic (--allow-overlap)"
    raise ConfigError(message, path=seg_path, fix=fix)


def _run_dir(cls_path: str | Path | None) -> str:
    """The run folder of a classifier checkpoint (``RUN/checkpoints/best.ckpt``) or split.json."""
    if cls_path is None:
        return "CLASSIFIER_RUN_DIR"
    path = Path(cls_path)
    if path.suffix == ".ckpt" and path.parent.name == "checkpoints":
        return str(path.parent.parent)
    return str(path.parent if path.suffix in (".ckpt", ".json") else path)
