"""Tests for the patient rule (mrparotid.decision.rule)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrparotid.constants import CLASSES, NO_TUMOUR_FOUND
from mrparotid.decision.rule import (BRANCHES, count_slices, decide_patient, soft_vote,
                                        tumour_mean_malignant)

NT, PA, W, M = range(4)
PA_NAME = "pleomorphic_adenoma"
fast = settings(deadline=None, max_examples=80)


def probs_for(labels, seed: int = 0) -> np.ndarray:
    """Random slice probabilities (n, 4) whose argmax is exactly ``labels``."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=int)
    p = rng.uniform(0.0, 1.0, size=(len(labels), 4))
    p[np.arange(len(labels)), labels] = p.max(axis=1) + 1.0
    return p / p.sum(axis=1, keepdims=True)


def labels_from(n_m=0, n_pa=0, n_w=0, n_nt=0) -> list[int]:
    return [M] * n_m + [PA] * n_pa + [W] * n_w + [NT] * n_nt


label_lists = st.lists(st.integers(0, 3), min_size=0, max_size=40)
seeds = st.integers(0, 2**32 - 1)


# --- paper's Fig. 5 examples and fixed cases -------------------------------------------------

@pytest.mark.parametrize("counts, expected", [
    (dict(n_m=3, n_pa=10), "malignant"),
    (dict(n_m=2, n_pa=5, n_w=3), "pleomorphic_adenoma"),
    (dict(n_m=0, n_pa=2, n_w=6), "warthin"),
    (dict(n_m=3, n_nt=20), "malignant"),
    (dict(n_m=2, n_nt=20), NO_TUMOUR_FOUND),
    (dict(n_nt=12), NO_TUMOUR_FOUND),
])
def test_fig5_examples(counts, expected):
    d = decide_patient(probs_for(labels_from(**counts), seed=3))
    assert d.diagnosis == expected


def test_exactly_two_vs_three_malignant():
    two = decide_patient(probs_for(labels_from(n_m=2, n_w=1)))
    three = decide_patient(probs_for(labels_from(n_m=3, n_w=1)))
    assert two.diagnosis == "warthin" and two.trace["branch"] == "benign_majority"
    assert three.diagnosis == "malignant" and three.trace["branch"] == "malignant_count"


@pytest.mark.parametrize("m", [0, 1, 4])
def test_malignant_min_slices_parameter(m):
    at = decide_patient(probs_for(labels_from(n_m=m, n_pa=1)), malignant_min_slices=m)
    above = decide_patient(probs_for(labels_from(n_m=m + 1, n_pa=1)), malignant_min_slices=m)
    assert at.diagnosis == "pleomorphic_adenoma" and above.diagnosis == "malignant"
    assert above.trace["malignant_min_slices"] == m


@pytest.mark.parametrize("empty", [np.zeros((0, 4)), np.zeros(0), []])
def test_empty_input(empty):
    d = decide_patient(empty)
    assert d.diagnosis == NO_TUMOUR_FOUND
    assert d.counts == {c: 0 for c in CLASSES}
    assert d.trace["branch"] == "no_tumour_slices"
    assert soft_vote(empty, 0.5) == NO_TUMOUR_FOUND


def test_tie_broken_by_probability_sum():
    p = np.array([[0.0, 0.6, 0.4, 0.0],    # PA slice
                  [0.0, 0.1, 0.9, 0.0],    # Warthin slice, strongly
                  [0.9, 0.05, 0.05, 0.0]])
    d = decide_patient(p)
    assert d.counts[PA_NAME] == d.counts["warthin"] == 1
    assert d.diagnosis == "warthin" and d.trace["branch"] == "benign_tie_prob_sum"
    assert d.trace["prob_sums"]["warthin"] == pytest.approx(1.35)
    d2 = decide_patient(p[:, [0, 2, 1, 3]])  # swap PA and Warthin columns
    assert d2.diagnosis == PA_NAME


def test_exact_tie_goes_to_pleomorphic_adenoma():
    p = np.array([[0.0, 0.7, 0.3, 0.0], [0.0, 0.3, 0.7, 0.0]])
    assert decide_patient(p).diagnosis == PA_NAME


def test_count_slices_keeps_zero_classes():
    assert count_slices(probs_for([PA, PA, M])) == {"no_tumour": 0, PA_NAME: 2, "warthin": 0,
                                                    "malignant": 1}


def test_to_dict_is_json_serialisable_and_detached():
    d = decide_patient(probs_for(labels_from(n_m=1, n_pa=2, n_w=2)))
    out = d.to_dict()
    json.dumps(out)
    out["trace"]["counts"]["malignant"] = 99
    assert d.trace["counts"]["malignant"] == 1
    assert set(out) == {"diagnosis", "counts", "trace"}
    assert set(out["trace"]) == {"counts", "malignant_min_slices", "branch", "prob_sums"}


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros((2, 4, 1)), np.zeros(4)])
def test_bad_shape_raises(bad):
    with pytest.raises(ValueError, match="shape"):
        decide_patient(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_raises(value):
    p = probs_for([PA, W, M])
    p[1, 2] = value
    with pytest.raises(ValueError, match="non-finite.*row 1"):
        decide_patient(p)


def test_bad_threshold_raises():
    with pytest.raises(ValueError):
        decide_patient(probs_for([PA]), malignant_min_slices=-1)


def test_soft_vote_worked_examples():
    tumour = [[0.05, 0.25, 0.0, 0.70], [0.05, 0.35, 0.0, 0.60], [0.05, 0.54, 0.0, 0.41]]   # mean 0.57
    contra = [[0.92, 0.03, 0.03, 0.02]] * 6                  # the other side: no tumour
    p, mask = np.array(tumour + contra), np.array([True] * 3 + [False] * 6)
    assert tumour_mean_malignant(p, mask) == pytest.approx(0.57)
    assert tumour_mean_malignant(p) == pytest.approx(0.2033, abs=1e-4)
    assert soft_vote(p, 0.5, mask) == "malignant"           # only the tumour slices vote
    assert soft_vote(p, 0.57, mask) == "malignant" and soft_vote(p, 0.571, mask) == PA_NAME
    assert soft_vote(p, 0.5, ~mask) == NO_TUMOUR_FOUND       # no benign slice, low malignancy
    assert soft_vote(p, 0.5, np.zeros(9, bool)) == NO_TUMOUR_FOUND
    warthin = np.array([[0.1, 0.2, 0.6, 0.1], [0.1, 0.3, 0.5, 0.1]])
    assert soft_vote(warthin, 0.5) == "warthin"
    with pytest.raises(ValueError, match="one entry per slice"):
        soft_vote(p, 0.5, mask[:4])


# --- properties -------------------------------------------------------------------------------

@fast
@given(labels=label_lists, seed=seeds, data=st.data())
def test_invariant_to_slice_order(labels, seed, data):
    p = probs_for(labels, seed)
    perm = np.array(data.draw(st.permutations(range(len(labels)))), dtype=int)
    a, b = decide_patient(p), decide_patient(p[perm] if len(labels) else p)
    assert a.diagnosis == b.diagnosis and a.counts == b.counts
    assert a.trace["branch"] == b.trace["branch"]
    assert a.trace["prob_sums"] == pytest.approx(b.trace["prob_sums"])


@fast
@given(labels=label_lists, extra=st.integers(1, 10), seed=seeds)
def test_adding_malignant_slices_keeps_malignant(labels, extra, seed):
    p = probs_for(labels, seed)
    before = decide_patient(p)
    after = decide_patient(np.vstack([p, probs_for([M] * extra, seed + 1)]))
    if before.diagnosis == "malignant":
        assert after.diagnosis == "malignant"
    if before.counts["malignant"] + extra > 2:
        assert after.diagnosis == "malignant"


@fast
@given(labels=label_lists, seed=seeds)
def test_counts_are_the_slice_argmaxes(labels, seed):
    d = decide_patient(probs_for(labels, seed))
    assert sum(d.counts.values()) == len(labels) and d.trace["branch"] in BRANCHES
    assert [d.counts[c] for c in CLASSES] == [labels.count(i) for i in range(4)]


@fast
@given(n_pa=st.integers(0, 8), n_w=st.integers(0, 8), n_nt=st.integers(0, 8), seed=seeds)
def test_monotonic_in_malignant_count(n_pa, n_w, n_nt, seed):
    """More malignant slices (all else equal) never turn a malignant call benign; the switch to
    malignant happens exactly at the third malignant slice, whatever the benign slices say."""
    calls = [decide_patient(probs_for(labels_from(n_m, n_pa, n_w, n_nt), seed)).diagnosis == "malignant"
             for n_m in range(8)]
    assert calls == [False] * 3 + [True] * 5


@fast
@given(labels=label_lists, seed=seeds, threshold=st.floats(0, 1), data=st.data())
def test_soft_vote_invariant_to_slice_order(labels, seed, threshold, data):
    p = probs_for(labels, seed)
    tumour = np.array(data.draw(st.lists(st.booleans(), min_size=len(labels), max_size=len(labels))), bool)
    perm = np.array(data.draw(st.permutations(range(len(labels)))), dtype=int)
    assert soft_vote(p, threshold, tumour) == soft_vote(p[perm], threshold, tumour[perm])


@fast
@given(labels=st.lists(st.integers(0, 3), min_size=1, max_size=20), seed=seeds,
       lo=st.floats(0, 1), hi=st.floats(0, 1))
def test_soft_vote_malignant_calls_shrink_as_threshold_rises(labels, seed, lo, hi):
    p = probs_for(labels, seed)
    lo, hi = min(lo, hi), max(lo, hi)
    if soft_vote(p, hi) == "malignant":
        assert soft_vote(p, lo) == "malignant"


@fast
@given(n_m=st.integers(0, 2), n_pa=st.integers(0, 15), n_w=st.integers(0, 15),
       n_nt=st.integers(0, 15), seed=seeds)
def test_benign_majority_ignores_few_malignant_and_normal_slices(n_m, n_pa, n_w, n_nt, seed):
    d = decide_patient(probs_for(labels_from(n_m, n_pa, n_w, n_nt), seed))
    assert d.diagnosis != "malignant"
    if n_pa != n_w:
        assert d.diagnosis == (PA_NAME if n_pa > n_w else "warthin")


@fast
@given(k=st.integers(1, 10), seed=seeds)
def test_tie_follows_probability_sum(k, seed):
    p = probs_for([PA] * k + [W] * k, seed)
    d = decide_patient(p)
    sums = p[:, PA].sum(), p[:, W].sum()
    assert d.diagnosis == ("warthin" if sums[1] > sums[0] else PA_NAME)
