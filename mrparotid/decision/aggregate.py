"""Patient p(malignant) from the calibrated malignant probabilities of its tumour slices.

Every aggregation here is *length-free*: adding more slices like the ones a patient already has
does not move it (a noisy-OR, by contrast, grows with the slice count until every benign patient
with many slices reads malignant). Which one is used is chosen on validation patients by patient
log loss (:func:`choose_aggregation`), a proper score that rewards ranking and calibration.

* ``mean``: the mean malignant probability;
* ``logit_mean``: the sigmoid of the mean malignant logit (a geometric pooling of the odds);
* ``top3_mean``: the mean of the three largest malignant probabilities (all when fewer).

>>> import numpy as np
>>> p = np.array([[0.9, 0.0, 0.05, 0.05]] * 5)
>>> round(p_malignant(p, None, "mean"), 3) == round(p_malignant(np.r_[p, p], None, "mean"), 3)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mrparotid.constants import CLASSES

MEAN, LOGIT_MEAN, TOP3_MEAN = "mean", "logit_mean", "top3_mean"
AGGREGATIONS: tuple[str, ...] = (MEAN, LOGIT_MEAN, TOP3_MEAN)
I_MALIGNANT, I_NO_TUMOUR = CLASSES.index("malignant"), CLASSES.index("no_tumour")
_CLIP = 1e-6     # log loss and logits never take log(0)
TOP_K = 3


def as_probs(probs: np.ndarray) -> np.ndarray:
    """``probs`` as float64 (n, 4) (an empty input becomes (0, 4))."""
    return np.asarray(probs, dtype=np.float64).reshape(-1, len(CLASSES))


def tumour_slices(probs: np.ndarray, tumour: np.ndarray | None) -> tuple[np.ndarray, str]:
    """(bool (n,), source) of the slices p(malignant) is taken over.

    The tumour mask's slices where it marks any (``"tumour mask"``); else the slices whose most
    probable class is a tumour class (``"predicted"``); else every slice (``"all slices"``): a
    patient without a tumour slice still gets a probability, so "no tumour found" passes through
    the same operating point as any other answer."""
    probs = as_probs(probs)
    if tumour is not None and np.asarray(tumour, dtype=bool).any():
        return np.asarray(tumour, dtype=bool).ravel(), "tumour mask"
    predicted = probs.argmax(axis=1) != I_NO_TUMOUR
    if predicted.any():
        return predicted, "predicted"
    return np.ones(len(probs), dtype=bool), "all slices"


def p_malignant(probs: np.ndarray, mask: np.ndarray | None, aggregation: str = MEAN) -> float:
    """p(malignant) of one patient from calibrated slice probabilities (n, 4) over the slices in
    ``mask`` (bool (n,); None = all); nan when no slice is selected."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    p = as_probs(probs)[:, I_MALIGNANT]
    if mask is not None:
        p = p[np.asarray(mask, dtype=bool).ravel()]
    if p.size == 0:
        return math.nan
    if aggregation == MEAN:
        return float(p.mean())
    if aggregation == TOP3_MEAN:
        return float(np.sort(p)[::-1][:TOP_K].mean())
    q = np.clip(p, _CLIP, 1 - _CLIP)
    z = float(np.mean(np.log(q) - np.log1p(-q)))
    return float(1.0 / (1.0 + math.exp(-z)))


def log_loss(p: Sequence[float], malignant: Sequence[bool]) -> float:
    """Mean binary log loss (nats per patient) of p(malignant) against the truth; nan if empty."""
    p = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    y = np.asarray(malignant, dtype=bool)
    return float(-np.where(y, np.log(p), np.log1p(-p)).mean()) if p.size else math.nan


def choose_aggregation(patients: Sequence[tuple[bool, np.ndarray, np.ndarray]]) -> tuple[str, dict]:
    """The aggregation with the lowest patient log loss on ``patients`` (is malignant, calibrated
    probs (n, 4), slice mask (n,)); ties and no patient keep ``mean``. Returns (name, {name: loss})."""
    scores = {a: log_loss([p_malignant(p, m, a) for _, p, m in patients], [y for y, _, _ in patients])
              for a in AGGREGATIONS}
    best = min(AGGREGATIONS, key=lambda a: (scores[a] if math.isfinite(scores[a]) else math.inf,
                                            AGGREGATIONS.index(a)))
    return best, scores


def patient_log_loss(probs: np.ndarray, y: np.ndarray, patient_ids: np.ndarray,
                     aggregation: str = MEAN) -> float:
    """Patient log loss of p(malignant) (uncalibrated, ``aggregation`` over each patient's tumour
    slices: true class not ``no_tumour``) for slices of several patients: ``probs`` (n, 4), true
    class indices ``y`` (n,), ``patient_ids`` (n,). The figure that chooses the checkpoint: it
    looks at the patient answer, not at slice accuracy. nan without a tumour slice."""
    probs, y, ids = as_probs(probs), np.asarray(y), np.asarray(patient_ids)
    ps, truth = [], []
    for pid in np.unique(ids):
        sel = ids == pid
        tumour = y[sel] != I_NO_TUMOUR
        if not tumour.any():
            continue
        ps.append(p_malignant(probs[sel], tumour, aggregation))
        truth.append(bool((y[sel] == I_MALIGNANT).any()))
    return log_loss(ps, truth)
