"""Segmentation scores of one patient on its T1 grid: 3-D Dice and the 95th-percentile Hausdorff
distance in mm (MONAI ``HausdorffDistanceMetric``, voxel spacing taken into account).

Masks are (z, y, x), nonzero = structure; spacing is (x, y, z) in mm as in the Study.
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
    """Gland and tumour Dice and HD95 (mm) of automatic vs given masks."""
    return {"gland_dice": dice(gland, true_gland), "tumour_dice": dice(tumour, true_tumour),
            "gland_hd95_mm": hd95_mm(gland, true_gland, spacing),
            "tumour_hd95_mm": hd95_mm(tumour, true_tumour, spacing)}


def mean_scores(rows: list[dict]) -> dict:
    """Mean of each score over patients (None values left out), and the patient count."""
    out: dict = {"patients": len(rows)}
    for key in ("gland_dice", "tumour_dice", "gland_hd95_mm", "tumour_hd95_mm"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out
