"""One patient's answer from its raw slice probabilities and a checkpoint's decision record.

The answer is ``malignant`` at or above the rule-in cut, the benign type (the paper's rule's PA or
Warthin choice) or ``no_tumour_found`` below the rule-out cut, and ``refer`` between them. It
fails closed: without a record, with an unvalidated record, or where the paper's rule disagrees
(for instance "no tumour found" while the tumour mask marks tumour slices), the answer is
``refer``, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mrparotid.constants import NO_TUMOUR_FOUND
from mrparotid.decision.aggregate import MEAN, as_probs, p_malignant, tumour_slices
from mrparotid.decision.record import DecisionRecord
from mrparotid.decision.rule import soft_vote
from mrparotid.decision.temperature import apply_temperature

REFER = "refer"
BENIGN = ("pleomorphic_adenoma", "warthin")
NO_RECORD = ("the checkpoint carries no decision record (only the checkpoint whose validation "
             "predictions chose one does; use RUN_DIR/checkpoints/best.ckpt): operating point not validated")


@dataclass(frozen=True)
class Answer:
    """``answer`` (a diagnosis, ``no_tumour_found`` or ``refer``), ``reason`` (why refer, else
    ""), ``p_malignant`` (calibrated, pooled by the record's aggregation), the slices it pools
    (``tumour_slices`` source and ``n_tumour_slices``) and the rule's diagnosis beside it."""

    answer: str
    reason: str
    p_malignant: float
    tumour_slices: str
    n_tumour_slices: int
    rule: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["p_malignant"] = None if not math.isfinite(self.p_malignant) else round(float(self.p_malignant), 4)
        return d


def category(diagnosis: str) -> str:
    """``malignant``, ``benign`` or ``no_tumour_found``."""
    return "benign" if diagnosis in BENIGN else diagnosis


def apply_decision(raw_probs: np.ndarray, tumour: np.ndarray | None, record: DecisionRecord | None,
                   rule_diagnosis: str) -> Answer:
    """The answer for one patient: ``raw_probs`` (n, 4) uncalibrated, ``tumour`` the tumour mask's
    slices (bool (n,); None without a tumour mask), ``rule_diagnosis`` the paper's rule's."""
    raw = as_probs(raw_probs)
    cal = apply_temperature(raw, record.temperature if record else 1.0)
    mask, source = tumour_slices(cal, tumour)
    p = p_malignant(cal, mask, record.aggregation if record else MEAN) if len(cal) else math.nan
    n = int(mask.sum())

    def out(said: str, reason: str = "") -> Answer:
        return Answer(said, reason, p, source, n, rule_diagnosis)

    if record is None:
        return out(REFER, NO_RECORD)
    if not record.validated:
        return out(REFER, record.operating_point())
    if not math.isfinite(p):
        return out(REFER, "no slice to score")
    if p >= record.hi:
        said = "malignant"
    elif p < record.lo:
        said = (rule_diagnosis if rule_diagnosis in BENIGN else
                NO_TUMOUR_FOUND if source == "all slices" else soft_vote(cal, math.inf, mask))
    else:
        return out(REFER, f"p(malignant) {p:.3f} lies in the refer band [{record.lo:.3f}, {record.hi:.3f})")
    marked = tumour is not None and bool(np.asarray(tumour, bool).any())
    if rule_diagnosis == NO_TUMOUR_FOUND and marked:
        return out(REFER, f"the paper's rule found no tumour slice, but the tumour mask marks {n} "
                          f"slice(s) (p(malignant) {p:.3f} would say {said.replace('_', ' ')})")
    if category(said) != category(rule_diagnosis):
        return out(REFER, f"p(malignant) {p:.3f} says {said.replace('_', ' ')}, the paper's rule says "
                          f"{rule_diagnosis.replace('_', ' ')}")
    return out(said)
