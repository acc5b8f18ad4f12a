"""Choose a checkpoint's decision record on its validation patients' slice predictions.

In: ``patients``, patient id → (true diagnosis, *raw* slice probabilities (n, 4), tumour-slice
mask (n,)), the validation patients only. Out: a :class:`~mrparotid.decision.record.
DecisionRecord`. In order: the temperature on the tumour slices (the slices p(malignant) pools),
the aggregation by patient log loss, the two cuts for the stated sensitivity and specificity, the
soft vote's cut by the same method. Below ``min_val_patients`` malignant or benign patients the
record is not validated and every answer refers.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping

import numpy as np

from mrparotid.constants import CLASSES
from mrparotid.decision.aggregate import MEAN, choose_aggregation, p_malignant, tumour_slices
from mrparotid.decision.cuts import choose_edges, sensitivity_edge
from mrparotid.decision.record import DEFAULTS, DecisionRecord
from mrparotid.decision.temperature import T_BOUNDS, apply_temperature, fit_temperature, logits_from_probs

Patients = Mapping[str, tuple[str, np.ndarray, np.ndarray]]


def decision_config(cfg: dict | None) -> dict:
    """The ``decision:`` section with its defaults filled in."""
    return {**DEFAULTS, **(cfg or {})}


def fit_decision(patients: Patients, cfg: dict | None = None, *, masks: str = "given",
                 source: str = "validation predictions", checkpoint: str = "",
                 warn: bool = True) -> DecisionRecord:
    """The decision record chosen on ``patients`` (validation patients, raw probabilities).

    ``cfg``: the ``decision:`` config section (``target_sensitivity``, ``target_specificity``,
    ``min_val_patients``). ``masks`` and ``source`` say what the predictions were made on,
    ``checkpoint`` which file they came from. ``warn`` prints one line when the operating point
    could not be validated or the temperature hit a search bound."""
    c = decision_config(cfg)
    t_sens, t_spec, need = float(c["target_sensitivity"]), float(c["target_specificity"]), int(c["min_val_patients"])
    truth = {pid: t for pid, (t, _, _) in patients.items()}
    n_mal = sum(t == "malignant" for t in truth.values())
    n_ben = len(truth) - n_mal
    raw = [(t == "malignant", np.asarray(p, np.float64).reshape(-1, 4), tumour_slices(p, m)[0])
           for t, p, m in patients.values()]
    tumour_probs = np.concatenate([p[m] for _, p, m in raw]) if raw else np.zeros((0, 4))
    tumour_y = np.concatenate([np.full(int(m.sum()), CLASSES.index(t)) for (t, _, _), (_, _, m)
                               in zip(patients.values(), raw)]) if raw else np.zeros(0, int)
    temperature, t_note = bounded_temperature(
        fit_temperature(logits_from_probs(tumour_probs), tumour_y), len(tumour_y))
    cal = [(y, apply_temperature(p, temperature), m) for y, p, m in raw]
    aggregation, losses = choose_aggregation(cal) if cal else (MEAN, {})
    scores = [p_malignant(p, m, aggregation) for _, p, m in cal]
    malignant = [y for y, _, _ in cal]
    validated = n_mal >= need and n_ben >= need
    if n_mal and n_ben:
        lo, hi, given_up = choose_edges(scores, malignant, t_sens, t_spec)
    else:
        lo = hi = None
        given_up = None
    soft = soft_cut(patients, t_sens)
    record = DecisionRecord(
        temperature=float(temperature), aggregation=aggregation,
        lo=lo.cut if lo else 0.0, hi=hi.cut if hi else 1.0, validated=validated,
        n_val_malignant=n_mal, n_val_benign=n_ben, min_val_patients=need,
        target_sensitivity=t_sens, target_specificity=t_spec, soft_threshold=soft,
        sensitivity=lo.to_dict() if lo else {}, specificity=hi.to_dict() if hi else {},
        given_up=given_up, temperature_note=t_note,
        temperature_slices=f"{len(tumour_y)} tumour slices of {len(truth)} validation patients",
        n_val_slices=int(sum(len(p) for _, p, _ in raw)),
        val_log_loss={k: (None if not math.isfinite(v) else v) for k, v in losses.items()},
        masks=masks, val_patients=sorted(patients), source=source, checkpoint=checkpoint)
    record.check()
    if warn:
        for line in warnings_of(record):
            print(f"WARNING: {line}", file=sys.stderr)
    return record


def soft_cut(patients: Patients, target_sensitivity: float) -> float:
    """The soft vote's cut on the mean raw malignant probability over the tumour slices, chosen
    like the answer's rule-out edge (the highest cut keeping ``target_sensitivity``); 0.5 without
    malignant validation patients."""
    scores, malignant = [], []
    for t, p, m in patients.values():
        scores.append(p_malignant(p, tumour_slices(p, m)[0], MEAN))
        malignant.append(t == "malignant")
    if not any(malignant):
        return 0.5
    return sensitivity_edge(scores, malignant, target_sensitivity).cut


def bounded_temperature(t: float, n_slices: int) -> tuple[float, str | None]:
    """(temperature to use, warning or None) for a fitted ``t``. At the upper search bound the
    validation slices say the probabilities carry little information: ``t`` is kept. At the lower
    bound every validation slice is right with room to spare, which says "sharper" but not how
    much: temperature 1 is kept instead of sharpening 20x."""
    lo, hi = T_BOUNDS
    if t >= hi / 1.1:
        return t, (f"the temperature reached its upper bound {hi:g} on {n_slices} validation slices: "
                   "the model's probabilities carry little information there; treat p(malignant) "
                   "with care")
    if t <= lo * 1.1:
        return 1.0, (f"the temperature reached its lower bound {lo:g} on {n_slices} validation "
                     "slices (all classified with room to spare): temperature 1 kept, not sharpened; "
                     "more validation patients would calibrate it")
    return t, None


def warnings_of(record: DecisionRecord) -> list[str]:
    """The record's warnings: the temperature bound, an unvalidated operating point, a target given up."""
    out = [record.temperature_note] if record.temperature_note else []
    if not record.validated:
        out.append(f"{record.operating_point()}: every answer will be 'refer' (fail closed); give "
                   "more validation patients (data.val_fraction) or use decision.cross_fit")
    if record.given_up:
        out.append(record.given_up)
    return out


def selection_figure(probs: np.ndarray, y: np.ndarray, patient_ids: np.ndarray) -> float:
    """The figure ``best.ckpt`` is chosen on: the validation patients' log loss of p(malignant)
    (mean over tumour slices) after the temperature the decision would fit on the same tumour
    slices. Calibrating first makes it judge how well p(malignant) separates and can be
    calibrated, not how over- or under-confident the raw softmax happens to be at an epoch."""
    from mrparotid.decision.aggregate import I_NO_TUMOUR, patient_log_loss

    probs, y = np.asarray(probs, np.float64).reshape(-1, 4), np.asarray(y)
    tumour = y != I_NO_TUMOUR
    t, _ = bounded_temperature(fit_temperature(logits_from_probs(probs[tumour]), y[tumour]), int(tumour.sum()))
    return patient_log_loss(apply_temperature(probs, t), y, patient_ids)
