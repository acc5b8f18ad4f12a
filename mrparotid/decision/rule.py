"""Patient-level diagnosis from slice probabilities (Xia et al. 2021, Fig. 5). Numpy only.

Each slice is assigned its most probable class. A patient is called malignant when *more than*
``malignant_min_slices`` (default 2) slices are predicted malignant; otherwise the benign type
with more slices wins (pleomorphic adenoma vs Warthin tumour); a tie is broken by the summed
probability of each benign type over all slices, and a remaining exact tie goes to pleomorphic
adenoma, the commoner parotid tumour. With neither enough malignant slices nor any benign-tumour
slice the outcome is :data:`~mrparotid.constants.NO_TUMOUR_FOUND`.

>>> import numpy as np
>>> p = np.eye(4)[[3, 3, 1, 1, 1, 2]]      # 2 malignant, 3 PA, 1 Warthin slice
>>> decide_patient(p).diagnosis
'pleomorphic_adenoma'
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from mrparotid.constants import CLASSES, NO_TUMOUR_FOUND

__all__ = ["PatientDecision", "count_slices", "decide_patient", "soft_vote", "tumour_mean_malignant",
           "BRANCHES"]

_PA, _WARTHIN, _MALIGNANT = "pleomorphic_adenoma", "warthin", "malignant"
_I_PA, _I_WARTHIN, _I_MALIGNANT = CLASSES.index(_PA), CLASSES.index(_WARTHIN), CLASSES.index(_MALIGNANT)

#: Values of ``trace["branch"]``: which rule produced the diagnosis.
BRANCHES: tuple[str, ...] = ("malignant_count", "benign_majority", "benign_tie_prob_sum",
                             "no_tumour_slices")


@dataclass(frozen=True)
class PatientDecision:
    """Outcome of the patient rule.

    Attributes
    ----------
    diagnosis : str
        ``"malignant"``, ``"pleomorphic_adenoma"``, ``"warthin"`` or ``"no_tumour_found"``.
    counts : dict of str to int
        Slices per predicted class, all four :data:`~mrparotid.constants.CLASSES` (zeros kept).
    trace : dict
        How the rule decided: ``counts``, ``malignant_min_slices``, ``branch`` (one of
        :data:`BRANCHES`) and ``prob_sums`` (summed PA / Warthin probability over all slices).
    """

    diagnosis: str
    counts: dict[str, int]
    trace: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-type copy (JSON-serialisable): ``{"diagnosis", "counts", "trace"}``."""
        return {"diagnosis": self.diagnosis, "counts": dict(self.counts),
                "trace": copy.deepcopy(self.trace)}


def _as_probs(slice_probs: np.ndarray) -> np.ndarray:
    """Validate slice probabilities: float array (n_slices, 4), finite. ``n_slices`` may be 0."""
    probs = np.asarray(slice_probs, dtype=np.float64)
    if probs.ndim == 1 and probs.size == 0:
        probs = probs.reshape(0, len(CLASSES))
    if probs.ndim != 2 or probs.shape[1] != len(CLASSES):
        raise ValueError(f"slice_probs must have shape (n_slices, {len(CLASSES)}) with columns "
                         f"{', '.join(CLASSES)}; got shape {probs.shape}")
    if not np.isfinite(probs).all():
        bad = int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])
        raise ValueError(f"slice_probs has a non-finite value (NaN or inf) at slice row {bad}")
    return probs


def count_slices(slice_probs: np.ndarray) -> dict[str, int]:
    """Slices per predicted class.

    Parameters
    ----------
    slice_probs : ndarray, shape (n_slices, 4)
        Class probabilities (or logits) per slice, columns in ``CLASSES`` order.

    Returns
    -------
    dict of str to int
        ``{class: count}`` for all four classes, zeros included. A row's class is its argmax
        (an exact tie goes to the earlier class in ``CLASSES``).
    """
    probs = _as_probs(slice_probs)
    counts = np.bincount(probs.argmax(axis=1), minlength=len(CLASSES)) if len(probs) else \
        np.zeros(len(CLASSES), dtype=int)
    return {name: int(n) for name, n in zip(CLASSES, counts)}


def _benign_choice(counts: dict[str, int], prob_sums: dict[str, float]) -> tuple[str, str]:
    """PA vs Warthin: (diagnosis, branch). More slices wins; tie -> larger prob sum -> PA."""
    n_pa, n_w = counts[_PA], counts[_WARTHIN]
    if n_pa == 0 and n_w == 0:
        return NO_TUMOUR_FOUND, "no_tumour_slices"
    if n_pa != n_w:
        return (_PA if n_pa > n_w else _WARTHIN), "benign_majority"
    return (_WARTHIN if prob_sums[_WARTHIN] > prob_sums[_PA] else _PA), "benign_tie_prob_sum"


def _prob_sums(probs: np.ndarray) -> dict[str, float]:
    """Summed PA and Warthin probability over all slices."""
    return {_PA: float(probs[:, _I_PA].sum()), _WARTHIN: float(probs[:, _I_WARTHIN].sum())}


def decide_patient(slice_probs: np.ndarray, malignant_min_slices: int = 2) -> PatientDecision:
    """Apply the patient rule to one patient's slice probabilities.

    Parameters
    ----------
    slice_probs : ndarray, shape (n_slices, 4)
        Per-slice class probabilities in ``CLASSES`` order; ``n_slices`` may be 0.
    malignant_min_slices : int
        The patient is malignant when strictly more slices than this are predicted malignant
        (default 2: three or more malignant slices).

    Returns
    -------
    PatientDecision
        Malignant if ``count(malignant) > malignant_min_slices``; else the benign type with more
        slices (tie: larger summed probability over all slices; exact tie: pleomorphic adenoma,
        the commoner tumour); else ``"no_tumour_found"``. The result does not depend on slice
        order.

    Raises
    ------
    ValueError
        Wrong shape, non-finite values, or a negative ``malignant_min_slices``.
    """
    if int(malignant_min_slices) != malignant_min_slices or malignant_min_slices < 0:
        raise ValueError(f"malignant_min_slices must be a non-negative integer, "
                         f"got {malignant_min_slices!r}")
    malignant_min_slices = int(malignant_min_slices)
    probs = _as_probs(slice_probs)
    counts = count_slices(probs)
    sums = _prob_sums(probs)
    if counts[_MALIGNANT] > malignant_min_slices:
        diagnosis, branch = _MALIGNANT, "malignant_count"
    else:
        diagnosis, branch = _benign_choice(counts, sums)
    trace = {"counts": dict(counts), "malignant_min_slices": malignant_min_slices,
             "branch": branch, "prob_sums": sums}
    return PatientDecision(diagnosis=diagnosis, counts=counts, trace=trace)


def tumour_mean_malignant(slice_probs: np.ndarray, tumour: np.ndarray | None = None) -> float:
    """Mean malignant probability over a patient's tumour slices (all slices when ``tumour`` is None).

    Parameters
    ----------
    slice_probs : ndarray, shape (n_slices, 4)
    tumour : bool array, shape (n_slices,), optional
        True for slices the tumour mask marks.

    Returns
    -------
    float
        ``nan`` when no slice is selected.
    """
    probs = _select(_as_probs(slice_probs), tumour)
    return float(probs[:, _I_MALIGNANT].mean()) if len(probs) else float("nan")


def _select(probs: np.ndarray, tumour: np.ndarray | None) -> np.ndarray:
    if tumour is None:
        return probs
    mask = np.asarray(tumour, dtype=bool).ravel()
    if mask.shape != (len(probs),):
        raise ValueError(f"tumour must have one entry per slice ({len(probs)}), got shape {mask.shape}")
    return probs[mask]


def soft_vote(slice_probs: np.ndarray, threshold: float = 0.5, tumour: np.ndarray | None = None) -> str:
    """Soft-voting alternative to :func:`decide_patient`, for side-by-side comparison.

    Only the patient's tumour slices vote (the slices the tumour mask marks, as the seed studies
    average over the images of the lesion): averaging in the contralateral no-tumour slices would
    pull every malignant patient towards benign.

    Parameters
    ----------
    slice_probs : ndarray, shape (n_slices, 4)
        Per-slice class probabilities in ``CLASSES`` order.
    threshold : float
        Malignant when the mean malignant probability over the tumour slices is >= this (0..1);
        choose it on validation patients (:func:`mrparotid.evaluation.metrics.choose_soft_threshold`).
    tumour : bool array, shape (n_slices,), optional
        Tumour slices; None means every slice is one.

    Returns
    -------
    str
        ``"malignant"``, else the PA/Warthin choice of :func:`decide_patient` over the tumour
        slices (slice majority, then summed probability, then PA), else ``"no_tumour_found"``
        (also when there is no tumour slice).
    """
    probs = _select(_as_probs(slice_probs), tumour)
    if len(probs) == 0:
        return NO_TUMOUR_FOUND
    if float(probs[:, _I_MALIGNANT].mean()) >= threshold:
        return _MALIGNANT
    return _benign_choice(count_slices(probs), _prob_sums(probs))[0]
