"""Slice calibration scored on a predictions table (``evaluate``): ECE and Brier.

The predictions CSV holds raw (temperature 1) probabilities; the decision record's temperature is
applied once, by the caller (:mod:`mrparotid.evaluation.answers`). ECE (15 bins, top-label, L1) comes from
torchmetrics ``multiclass_calibration_error``; its patient-bootstrap replicates use the same bins
(:func:`ece`, checked equal to torchmetrics by the tests). Brier = mean over slices of
``sum_k (p_k - [y = k])^2`` (0 best, 2 worst).
"""

from __future__ import annotations

import math

import numpy as np

from mrparotid.constants import CLASSES
from mrparotid.evaluation.bootstrap import patient_bootstrap_ci

N_BINS = 15


def ece_torchmetrics(probs: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error (top-label, L1) by torchmetrics; nan for no slice."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    if len(y) == 0:
        return math.nan
    return float(multiclass_calibration_error(torch.as_tensor(np.array(probs, dtype=np.float64)),
                                              torch.as_tensor(np.array(y, dtype=np.int64)),
                                              num_classes=len(CLASSES), n_bins=n_bins, norm="l1"))


def ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE from top-label confidence (n,) and correctness (n,), binned as torchmetrics does
    (bins ``[k/n_bins, (k+1)/n_bins)``, confidence 1.0 in a bin of its own):
    ``sum_bins |sum correct - sum confidence| / n``."""
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.size == 0:
        return math.nan
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges, conf, side="right") - 1
    diff = np.bincount(idx, weights=np.asarray(correct, dtype=np.float64) - conf, minlength=n_bins + 1)
    return float(np.abs(diff).sum() / conf.size)


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """Multiclass Brier score (mean over slices of the squared distance to the one-hot truth)."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return math.nan
    return float(_brier_rows(probs, y).mean())


def _brier_rows(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    onehot = np.eye(probs.shape[1])[np.asarray(y, dtype=np.int64)]
    return ((probs - onehot) ** 2).sum(axis=1)


def calibration_scores(ids: np.ndarray, probs: np.ndarray, y: np.ndarray, n_boot: int = 2000) -> dict:
    """``{"ece", "brier"}`` of (n, 4) probabilities, each ``{estimate, lo, hi, ...}`` with a
    patient-clustered bootstrap CI (:func:`~mrparotid.evaluation.bootstrap.patient_bootstrap_ci`)."""
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    e = patient_bootstrap_ci(ids, ece, conf, correct, n_boot=n_boot)
    e["estimate"] = ece_torchmetrics(probs, y)
    b = patient_bootstrap_ci(ids, lambda r: float(r.mean()), _brier_rows(probs, y), n_boot=n_boot)
    return {"ece": e, "brier": b}
