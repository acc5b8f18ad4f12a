"""Patient probability of malignancy, the refer band, and the answer it gives. Numpy only.

* ``p_malignant``: the calibrated malignant probabilities of the patient's *tumour slices* (the
  slices the tumour mask marks; at ``diagnose`` without a tumour mask, the slices the model
  predicts as a tumour class) aggregated by the ``mean`` (:func:`~mrparotid.inference.decide.
  tumour_mean_malignant`) or a ``noisy_or`` (``1 - prod(1 - p)``). Which one is chosen on the
  validation patients by patient-level log loss (:func:`choose_aggregation`).
* The answer: ``malignant`` when ``p >= hi``, ``refer`` when ``lo <= p < hi``, else the benign type
  (PA or Warthin, as the rule chooses between them over the tumour slices). ``hi`` is
  :data:`THRESHOLD` (0.5: malignant when more probable than not); ``lo`` is chosen on validation
  (:func:`choose_band`). A band ``None`` (not chosen) or ``[hi, hi]`` (empty) never refers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mrparotid.constants import CLASSES, NO_TUMOUR_FOUND
from mrparotid.inference.calibrate import apply_temperature
from mrparotid.inference.decide import soft_vote, tumour_mean_malignant

MEAN, NOISY_OR = "mean", "noisy_or"
AGGREGATIONS: tuple[str, ...] = (MEAN, NOISY_OR)
REFER = "refer"
#: ``hi`` of every band: malignant is answered when p(malignant) >= this.
THRESHOLD = 0.5
#: Defaults of the ``refer:`` config section.
TARGET_SENSITIVITY = 0.95
MIN_MALIGNANT_VAL = 5
_I_MAL, _I_NONE = CLASSES.index("malignant"), CLASSES.index("no_tumour")
_CLIP = 1e-6   # log loss / noisy-OR never take log(0)

#: Calibration of a checkpoint that has none (trained before calibration existed).
UNCALIBRATED = {"temperature": 1.0, "aggregation": MEAN, "threshold": THRESHOLD, "refer_band": None,
                "refer_note": "the checkpoint has no calibration (re-run 'mrparotid fit'): "
                              "temperature 1, mean over tumour slices, never refer"}


def tumour_slices(probs: np.ndarray, tumour: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """(bool mask (n,), source): the tumour mask's slices when a mask is given (``tumour`` not None,
    even if it marks none), else the slices whose most probable class is a tumour class (no tumour
    mask at all: ``diagnose --all-slices``); ``source`` ``"tumour mask"`` / ``"predicted"``."""
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(CLASSES))
    if tumour is not None:
        return np.asarray(tumour, dtype=bool).ravel(), "tumour mask"
    return probs.argmax(axis=1) != _I_NONE, "predicted"


def p_malignant(probs: np.ndarray, tumour: np.ndarray | None, aggregation: str = MEAN) -> float:
    """Patient p(malignant) from (calibrated) slice probabilities (n, 4) over the tumour slices
    ``tumour`` (bool (n,); None = all slices); nan when there is none."""
    if aggregation == MEAN:
        return tumour_mean_malignant(probs, tumour)
    if aggregation != NOISY_OR:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    p = np.asarray(probs, dtype=np.float64).reshape(-1, len(CLASSES))[:, _I_MAL]
    if tumour is not None:
        p = p[np.asarray(tumour, dtype=bool).ravel()]
    if p.size == 0:
        return math.nan
    return float(-np.expm1(np.log1p(-np.clip(p, 0.0, 1 - 1e-15)).sum()))


def log_loss(p: Sequence[float], malignant: Sequence[bool]) -> float:
    """Mean binary log loss (nats per patient) of p(malignant) against the truth; nan if empty."""
    p = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    y = np.asarray(malignant, dtype=bool)
    return float(-np.where(y, np.log(p), np.log1p(-p)).mean()) if p.size else math.nan


def choose_aggregation(patients: Sequence[tuple[bool, np.ndarray, np.ndarray]]) -> tuple[str, dict]:
    """The aggregation with the lower patient log loss on ``patients`` (is malignant, calibrated
    probs (n, 4), tumour mask (n,)); a tie or no patient keeps ``mean``. Log loss is a proper
    score: it rewards a p(malignant) that ranks *and* is calibrated, which the band at 0.5 needs
    (AUC ignores calibration). Returns (name, {name: log loss})."""
    scores = {a: log_loss([p_malignant(p, m, a) for _, p, m in patients], [y for y, _, _ in patients])
              for a in AGGREGATIONS}
    best = min(AGGREGATIONS, key=lambda a: (scores[a] if math.isfinite(scores[a]) else math.inf,
                                            AGGREGATIONS.index(a)))
    return best, scores


@dataclass(frozen=True)
class BandChoice:
    """A refer band chosen on validation: ``band`` [lo, hi] or None (not chosen), the ``note`` that
    says how, and on the validation patients: ``n_referred``, answered malignant ``sensitivity``."""

    band: tuple[float, float] | None
    note: str
    n_referred: int = 0
    sensitivity: float = math.nan


def _outside(p: np.ndarray, mal: np.ndarray, lo: float, hi: float) -> tuple[int, int, int]:
    """(referred, caught malignant, missed malignant) with band [lo, hi)."""
    referred = (p >= lo) & (p < hi)
    return int(referred.sum()), int((mal & (p >= hi)).sum()), int((mal & (p < lo)).sum())


def choose_band(p: Sequence[float], malignant: Sequence[bool], target: float = TARGET_SENSITIVITY,
                min_malignant: int = MIN_MALIGNANT_VAL, hi: float = THRESHOLD) -> BandChoice:
    """The refer band [lo, hi) on validation patients' p(malignant).

    ``hi`` is fixed (malignant is answered when p >= hi); ``lo`` is the largest value such that
    the malignant sensitivity on the answered patients (caught / (caught + missed), missed = a
    malignant patient with p < lo) reaches ``target``: the fewest referrals, since a lower ``lo``
    only refers more. ``lo`` sits midway between the lowest referred patient and the next lower
    one (0 below the lowest). Fewer than ``min_malignant`` malignant patients: no band (None).
    """
    if not 0 < target < 1:
        raise ValueError(f"target sensitivity must lie in (0, 1), got {target!r}")
    p = np.asarray(p, dtype=np.float64)
    mal = np.asarray(malignant, dtype=bool)
    keep = np.isfinite(p)
    p, mal = p[keep], mal[keep]
    n_mal = int(mal.sum())
    if n_mal < min_malignant:
        return BandChoice(None, f"no refer band (never refer): {n_mal} malignant validation patient(s), "
                                f"fewer than the {min_malignant} needed to choose one")
    below = np.unique(p[mal & (p < hi)])[::-1]            # malignant scores a band may take in
    for lo in (hi, *(_midpoint_below(v, p) for v in below)):
        n_ref, caught, missed = _outside(p, mal, lo, hi)
        if caught >= target * (caught + missed):
            sens = caught / (caught + missed) if caught + missed else math.nan
            how = ("empty: malignant sensitivity already reached without referring" if lo == hi else
                   f"refers {n_ref} of {len(p)} validation patients")
            return BandChoice((float(lo), float(hi)), f"band [{lo:.3f}, {hi:.3f}) chosen on {len(p)} "
                              f"validation patients ({n_mal} malignant) for answered malignant "
                              f"sensitivity >= {target:g}: {how}", n_ref, sens)
    raise AssertionError("unreachable: lo = 0 refers every malignant patient below hi")


def _midpoint_below(v: float, p: np.ndarray) -> float:
    lower = p[p < v]
    return float((v + lower.max()) / 2) if lower.size else 0.0


def band_text(band: Sequence[float] | None) -> str:
    """``[lo, hi)``, or ``empty (never refer)`` / ``none (never refer)`` for a zero-width / no band."""
    if band is None:
        return "none (never refer)"
    return f"[{band[0]:.3f}, {band[1]:.3f})" if band[0] < band[1] else "empty (never refer)"


def in_band(p: float, band: Sequence[float] | None) -> bool:
    """True when ``p`` falls in the refer band [lo, hi) (never for None or nan)."""
    return band is not None and math.isfinite(p) and band[0] <= p < band[1]


def benign_type(probs: np.ndarray, tumour: np.ndarray | None) -> str:
    """PA or Warthin over the tumour slices: the rule's benign choice (:func:`~mrparotid.inference.
    decide.soft_vote` never calls malignant at an infinite threshold), else the larger summed
    probability when no tumour slice is predicted PA or Warthin."""
    choice = soft_vote(probs, math.inf, tumour)
    if choice != NO_TUMOUR_FOUND:
        return choice
    sel = np.asarray(probs, dtype=np.float64).reshape(-1, len(CLASSES))
    sel = sel if tumour is None else sel[np.asarray(tumour, dtype=bool).ravel()]
    pa, w = (float(sel[:, CLASSES.index(c)].sum()) for c in ("pleomorphic_adenoma", "warthin"))
    return "warthin" if w > pa else "pleomorphic_adenoma"


def answer_patient(raw_probs: np.ndarray, tumour: np.ndarray | None, calibration: dict,
                   rule_diagnosis: str = NO_TUMOUR_FOUND) -> dict:
    """One patient's answer from its *raw* slice probabilities (n, 4): the calibration's
    temperature is applied here, once. Returns ``{"p_malignant" (None without a tumour slice),
    "answer", "tumour_slices" (source), "n_tumour_slices"}``; without a tumour slice the answer is
    ``rule_diagnosis``."""
    cal = apply_temperature(np.asarray(raw_probs, dtype=np.float64).reshape(-1, len(CLASSES)),
                            float(calibration["temperature"]))
    mask, source = tumour_slices(cal, tumour)
    p = p_malignant(cal, mask, calibration["aggregation"])
    if not math.isfinite(p):
        return {"p_malignant": None, "answer": rule_diagnosis, "tumour_slices": source, "n_tumour_slices": 0}
    band = calibration.get("refer_band")
    hi = float(band[1]) if band else float(calibration.get("threshold", THRESHOLD))
    said = REFER if in_band(p, band) else ("malignant" if p >= hi else benign_type(cal, mask))
    return {"p_malignant": p, "answer": said, "tumour_slices": source, "n_tumour_slices": int(mask.sum())}


def calibration_of(meta: dict) -> dict:
    """A checkpoint meta's calibration record, or :data:`UNCALIBRATED` when it has none."""
    cal = meta.get("calibration") if isinstance(meta, dict) else None
    return dict(cal) if isinstance(cal, dict) else dict(UNCALIBRATED)


def refer_report(raw_probs: np.ndarray, tumour: np.ndarray | None, meta: dict, rule_diagnosis: str) -> dict:
    """The ``diagnose`` report's keys for one patient: ``p_malignant`` (4 decimals, None without a
    tumour slice), ``aggregation``, ``answer`` (``refer`` or a diagnosis; the rule's diagnosis
    stays in ``diagnosis``), ``refer_band`` and ``calibration`` (``temperature``, ``tumour_slices``
    source and count, ``refer_note``, ``temperature_note``: None unless the fitted temperature
    reached a search bound), from the checkpoint ``meta``'s calibration."""
    cal = calibration_of(meta)
    a = answer_patient(raw_probs, tumour, cal, rule_diagnosis)
    p = a["p_malignant"]
    return {"p_malignant": None if p is None else round(float(p), 4), "aggregation": cal["aggregation"],
            "answer": a["answer"], "refer_band": cal.get("refer_band"),
            "calibration": {"temperature": float(cal["temperature"]), "tumour_slices": a["tumour_slices"],
                            "n_tumour_slices": a["n_tumour_slices"], "refer_note": cal.get("refer_note", ""),
                            "temperature_note": cal.get("temperature_note")}}


def refer_line(report: dict) -> str | None:
    """Text-report line: p(malignant) and the answer beside the rule's (paper's) diagnosis."""
    if "answer" not in report:
        return None
    p, band, cal = report["p_malignant"], report.get("refer_band"), report.get("calibration", {})
    where = f"refer band {band_text(band)}"
    prob = ("p(malignant) n/a (no tumour slice)" if p is None else
            f"p(malignant) {p:.3f} ({report['aggregation'].replace('_', '-')} of "
            f"{cal.get('n_tumour_slices', 0)} {'predicted ' if cal.get('tumour_slices') == 'predicted' else ''}"
            f"tumour slices, temperature {cal.get('temperature', 1.0):.2f})")
    said = "REFER to a radiologist" if report["answer"] == REFER else report["answer"].replace("_", " ")
    return f"answer: {said}   {prob}; {where}; the rule (paper) says {report['diagnosis'].replace('_', ' ')}"
