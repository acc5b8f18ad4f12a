"""The decision stage: length-free p(malignant), two cuts for a stated operating point,
fail-closed answers, a validated record, and the rule's disagreement as 'refer'."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration_data import patients_table
from mrparotid.constants import CLASSES
from mrparotid.decision.aggregate import AGGREGATIONS, p_malignant
from mrparotid.decision.apply import REFER, apply_decision
from mrparotid.decision.cuts import choose_edges, lower_bound, sensitivity_edge, specificity_edge
from mrparotid.decision.fit import fit_decision
from mrparotid.decision.record import DecisionRecord
from mrparotid.decision.rule import decide_patient
from mrparotid.errors import CheckpointError
from mrparotid.evaluation.metrics import patient_slices


def cohort(n_mal: int, n_ben: int, seed: int = 0) -> dict:
    """Validation patients with overlapping p(malignant): malignant around 0.7, benign around 0.25."""
    rng = np.random.default_rng(seed)
    pats = {f"M{i}": ("malignant", list(np.clip(rng.normal(0.7, 0.15, 4), 0.01, 0.99))) for i in range(n_mal)}
    pats.update({f"B{i}": ("warthin" if i % 2 else "pleomorphic_adenoma",
                           list(np.clip(rng.normal(0.25, 0.12, 4), 0.01, 0.99))) for i in range(n_ben)})
    return patient_slices(patients_table(pats))[0]


def probs_rows(p_mal: float, benign: str = "pleomorphic_adenoma", n: int = 5) -> np.ndarray:
    row = np.zeros(len(CLASSES))
    row[CLASSES.index("malignant")] = p_mal
    row[CLASSES.index(benign)] = 1 - p_mal - 0.01
    row[CLASSES.index("no_tumour")] = 0.01
    return np.tile(row, (n, 1))


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_adding_identical_benign_slices_never_moves_p_malignant(aggregation):
    p = probs_rows(0.05)
    assert p_malignant(p, None, aggregation) == pytest.approx(p_malignant(np.r_[p, p, p, p, p, p, p, p], None, aggregation))


def test_the_answer_of_a_benign_patient_does_not_change_with_its_slice_count():
    record = fit_decision(cohort(15, 15), warn=False)
    assert record.validated
    answers = set()
    for n in (5, 10, 20, 40):
        p = probs_rows(0.05, n=n)
        answers.add(apply_decision(p, np.ones(n, bool), record, decide_patient(p).diagnosis).answer)
    assert answers == {"pleomorphic_adenoma"}


def test_edges_keep_the_stated_sensitivity_and_specificity_with_clopper_pearson_bounds():
    scores = [0.9, 0.8, 0.7, 0.6, 0.3, 0.4, 0.2, 0.1, 0.05, 0.02]
    mal = [True] * 5 + [False] * 5
    lo = sensitivity_edge(scores, mal, 0.95)
    assert (lo.k, lo.n) == (5, 5) and 0.2 < lo.cut < 0.3        # keeps the 0.3 malignant patient
    hi = specificity_edge(scores, mal, 0.8)
    assert (hi.k, hi.n) == (4, 5) and 0.2 < hi.cut < 0.3 or (hi.k, hi.n) == (4, 5)
    assert lower_bound(14, 14) == pytest.approx(0.807, abs=0.001)
    assert lower_bound(0, 5) == 0.0 and math.isnan(lower_bound(0, 0))


def test_crossing_edges_collapse_to_the_sensitivity_cut_and_say_what_was_given_up():
    scores = [0.9, 0.8, 0.2, 0.1, 0.05, 0.15, 0.85, 0.95]
    malignant = [True] * 4 + [False] * 4
    lo, hi, given_up = choose_edges(scores, malignant, 0.5, 0.5)   # rule-out 0.5 > rule-in 0.175
    assert lo.cut == hi.cut == pytest.approx(0.5) and lo.k == 2
    assert (hi.k, hi.n) == (2, 4) and "specificity target 0.5 given up" in given_up


def test_too_few_validation_patients_fail_closed():
    record = fit_decision(cohort(4, 20), warn=False)
    assert not record.validated
    a = apply_decision(probs_rows(0.95), np.ones(5, bool), record, "malignant")
    assert a.answer == REFER and "not validated (4 malignant, 20 benign" in a.reason
    assert apply_decision(probs_rows(0.95), np.ones(5, bool), None, "malignant").answer == REFER


def test_no_validation_at_all_fails_closed(capsys):
    record = fit_decision({}, warn=True)
    assert not record.validated and "every answer will be 'refer'" in capsys.readouterr().err
    assert apply_decision(probs_rows(0.01), np.ones(5, bool), record, "pleomorphic_adenoma").answer == REFER


def test_no_tumour_found_while_the_mask_marks_tumour_is_refer():
    record = fit_decision(cohort(15, 15), warn=False)
    p = np.tile(np.eye(4)[0] * 0.97 + 0.01, (6, 1))            # every slice reads "no tumour"
    a = apply_decision(p, np.ones(6, bool), record, decide_patient(p).diagnosis)
    assert decide_patient(p).diagnosis == "no_tumour_found"
    assert a.answer == REFER and "tumour mask marks 6" in a.reason
    assert a.p_malignant == a.p_malignant                       # a probability, not None


def test_a_disagreement_between_the_rule_and_p_malignant_is_refer():
    record = fit_decision(cohort(15, 15), warn=False)
    a = apply_decision(probs_rows(0.95), np.ones(5, bool), record, "pleomorphic_adenoma")
    assert a.answer == REFER and "paper's rule says pleomorphic adenoma" in a.reason


def good_record() -> dict:
    return fit_decision(cohort(15, 15), warn=False).to_dict()


@pytest.mark.parametrize("change", [
    {"temperature": -1.0}, {"temperature": float("nan")}, {"temperature": "1"}, {"aggregation": "noisy_or"},
    {"lo": -0.1}, {"hi": 1.01}, {"lo": 0.9, "hi": 0.1}, {"hi": "0.5"}, {"schema": "other"},
    {"validated": "yes"}, {"n_val_malignant": -3}, {"extra_key": 1}, {"sensitivity": [1, 2]}])
def test_a_malformed_decision_record_is_a_checkpoint_error(change):
    data = {**good_record(), **change}
    with pytest.raises(CheckpointError):
        DecisionRecord.from_dict(data, "best.ckpt")


def test_a_record_missing_a_key_or_not_a_mapping_is_refused():
    data = good_record()
    del data["temperature"]
    with pytest.raises(CheckpointError, match="missing temperature"):
        DecisionRecord.from_dict(data)
    with pytest.raises(CheckpointError):
        DecisionRecord.from_dict([1, 2])


def test_a_record_round_trips():
    data = good_record()
    assert DecisionRecord.from_dict(data).to_dict() == data


def test_the_temperature_is_fitted_on_tumour_slices_only():
    record = fit_decision(cohort(12, 12), warn=False)
    assert record.temperature_slices.startswith(f"{12 * 4 * 2} tumour slices")


def test_the_selection_figure_ignores_overconfidence_but_not_ranking():
    from mrparotid.decision.aggregate import patient_log_loss
    from mrparotid.decision.fit import selection_figure

    mixed = {f"M{i}": ("malignant", [0.2 if i < 3 else 0.65] * 4) for i in range(10)}   # 3 misranked each
    mixed.update({f"B{i}": ("pleomorphic_adenoma", [0.6 if i < 3 else 0.2] * 4) for i in range(10)})
    pats = patient_slices(patients_table(mixed))[0]
    ids = np.concatenate([[pid] * len(p) for pid, (_, p, _) in pats.items()])
    probs = np.concatenate([p for _, p, _ in pats.values()])
    y = np.concatenate([np.where(m, CLASSES.index(t), 0) for t, _, m in pats.values()])
    sharp = np.exp(np.log(np.clip(probs, 1e-9, 1)) * 6)          # the same ranking, 6x overconfident
    sharp /= sharp.sum(1, keepdims=True)
    assert patient_log_loss(sharp, y, ids) > patient_log_loss(probs, y, ids) + 0.1
    assert selection_figure(sharp, y, ids) == pytest.approx(selection_figure(probs, y, ids), abs=0.05)
    shuffled = probs[np.random.default_rng(0).permutation(len(probs))]
    assert selection_figure(shuffled, y, ids) > selection_figure(probs, y, ids)


def test_diagnose_refuses_a_checkpoint_with_a_malformed_decision_record_in_one_line(tmp_path, capsys):
    from checkpoints import tiny_checkpoint
    from mrparotid.cli.main import main
    from mrparotid.training.decision import store_decision
    from patients import write_patient

    tiny_checkpoint(tmp_path / "m.ckpt")
    store_decision(tmp_path / "m.ckpt", {**good_record(), "lo": 0.0, "hi": 1.01})
    folder = write_patient(tmp_path / "P1")
    assert main(["diagnose", str(folder), "--checkpoint", str(tmp_path / "m.ckpt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decision record: hi must lie in [0, 1]" in err[0]
