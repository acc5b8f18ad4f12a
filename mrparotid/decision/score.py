"""Test predictions → the answer's tables: one row per patient, and the counts a clinic reads
(coverage, refer rate, accuracy among the answered, malignant sensitivity and specificity among
the answered) as ``{k, n}``. Intervals are added where the counts are reported
(:mod:`mrparotid.evaluation.answers`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from mrparotid.decision.apply import REFER, apply_decision
from mrparotid.decision.record import DecisionRecord
from mrparotid.decision.rule import decide_patient

COLUMNS = ["patient_id", "true", "malignant", "p_malignant", "answer", "referred", "reason", "rule",
           "n_tumour_slices"]


Records = DecisionRecord | Mapping[str, DecisionRecord] | None


def record_for(records: Records, patient_id: str) -> DecisionRecord | None:
    """The record that answers ``patient_id``: the one record, or the patient's own in a mapping
    (cross-validation: each fold's record answers that fold's test patients only)."""
    return records.get(patient_id) if isinstance(records, Mapping) else records


def answer_table(patients: Mapping[str, tuple[str, np.ndarray, np.ndarray | None]],
                 records: Records, malignant_min_slices: int = 2) -> pd.DataFrame:
    """One row per patient (id → (true diagnosis, raw probs (n, 4), tumour mask (n,) or None)):
    the answer beside the paper's rule, as ``diagnose`` gives them."""
    rows = []
    for pid, (truth, probs, tumour) in patients.items():
        rule = decide_patient(probs, malignant_min_slices).diagnosis if len(probs) else "no_tumour_found"
        a = apply_decision(probs, tumour, record_for(records, pid), rule)
        rows.append({"patient_id": pid, "true": truth, "malignant": truth == "malignant",
                     "p_malignant": a.p_malignant, "answer": a.answer, "referred": a.answer == REFER,
                     "reason": a.reason, "rule": rule, "n_tumour_slices": a.n_tumour_slices})
    return pd.DataFrame(rows, columns=COLUMNS)


def _kn(k, n) -> dict:
    return {"k": int(k), "n": int(n)}


def answer_counts(table: pd.DataFrame) -> dict:
    """Counts of the answer on ``table`` (:func:`answer_table`): ``coverage`` (answered / all),
    ``refer`` (referred / all), and among the answered: ``accuracy`` (exact diagnosis),
    ``sensitivity`` (malignant called malignant) and ``specificity`` (benign not called malignant);
    and the rule's ``rule_accuracy`` over all patients and over the answered ones."""
    n = len(table)
    answered = table.loc[~table["referred"]]
    mal = answered["malignant"].to_numpy(bool)
    called = (answered["answer"] == "malignant").to_numpy(bool)
    return {"patients": n, "coverage": _kn(len(answered), n), "refer": _kn(int(table["referred"].sum()), n),
            "accuracy": _kn(int((answered["answer"] == answered["true"]).sum()), len(answered)),
            "sensitivity": _kn(int((mal & called).sum()), int(mal.sum())),
            "specificity": _kn(int((~mal & ~called).sum()), int((~mal).sum())),
            "rule_accuracy": _kn(int((table["rule"] == table["true"]).sum()), n),
            "rule_accuracy_answered": _kn(int((answered["rule"] == answered["true"]).sum()), len(answered)),
            "rule_sensitivity": _kn(int(((table["rule"] == "malignant") & table["malignant"]).sum()),
                                    int(table["malignant"].sum()))}
