"""Segmentation scores of one patient on its T1 grid: 3-D Dice and the 95th-percentile Hausdorff
distance in mm (MONAI ``HausdorffDistanceMetric``, voxel spacing taken into account).

Masks are (z, y, x), nonzero = structure; spacing is (x, y, z) in mm as in the Study. HD95 is
undefined when either mask is empty. A structure that is given but not predicted is *missed*, one
predicted but not given a *false alarm*: the mean HD95 over patients is then undefined (None), and
the count of each is reported with the mean over the patients where it is defined.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """3-D Dice of two masks; 1.0 when both are empty."""
    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    total = int(p.sum() + t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def hd95_mm(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float]) -> float | None:
    """95th-percentile symmetric Hausdorff distance (mm); None when either mask is empty."""
    import torch
    from monai.metrics import HausdorffDistanceMetric

    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    if not p.any() or not t.any():
        return None
    metric = HausdorffDistanceMetric(include_background=True, percentile=95)
    with warnings.catch_warnings():   # MONAI 1.6 warns about its own deprecated argument
        warnings.simplefilter("ignore", FutureWarning)
        value = metric(torch.from_numpy(p)[None, None].float(), torch.from_numpy(t)[None, None].float(),
                       spacing=[float(s) for s in spacing[::-1]])
    out = float(value.reshape(-1)[0])
    return None if math.isnan(out) or math.isinf(out) else out


def patient_scores(gland: np.ndarray, tumour: np.ndarray, true_gland: np.ndarray,
                   true_tumour: np.ndarray, spacing: tuple[float, float, float]) -> dict:
    """Gland and tumour Dice and HD95 (mm) of automatic vs given masks, and per structure
    ``<s>_missed`` (given, none predicted) and ``<s>_false_alarm`` (predicted, none given)."""
    out: dict = {}
    for name, pred, truth in (("gland", gland, true_gland), ("tumour", tumour, true_tumour)):
        p, t = bool(np.any(pred)), bool(np.any(truth))
        out.update({f"{name}_dice": dice(pred, truth), f"{name}_hd95_mm": hd95_mm(pred, truth, spacing),
                    f"{name}_missed": t and not p, f"{name}_false_alarm": p and not t})
    return out


def mean_scores(rows: list[dict]) -> dict:
    """Means over patients, and the patient count. Dice: over every patient (an empty mask where
    one is given scores 0). HD95 per structure: ``<s>_hd95_mm`` the mean over every patient with
    the structure given or predicted, None (undefined) when any of them was missed or is a false
    alarm; ``<s>_hd95_missed`` and ``<s>_hd95_false_alarms`` those counts; ``<s>_hd95_mm_defined``
    and ``<s>_hd95_n``: the mean over the patients where HD95 is defined, and their number (never
    shown without the counts). Patients with neither mask have no HD95 and are no failure."""
    out: dict = {"patients": len(rows)}
    for name in ("gland", "tumour"):
        dices = [r[f"{name}_dice"] for r in rows if r.get(f"{name}_dice") is not None]
        out[f"{name}_dice"] = float(np.mean(dices)) if dices else None
        defined = [r[f"{name}_hd95_mm"] for r in rows if r.get(f"{name}_hd95_mm") is not None]
        missed = sum(bool(r.get(f"{name}_missed")) for r in rows)
        alarms = sum(bool(r.get(f"{name}_false_alarm")) for r in rows)
        mean = float(np.mean(defined)) if defined else None
        out.update({f"{name}_hd95_mm": None if missed or alarms else mean,
                    f"{name}_hd95_missed": missed, f"{name}_hd95_false_alarms": alarms,
                    f"{name}_hd95_mm_defined": mean, f"{name}_hd95_n": len(defined)})
    return out
