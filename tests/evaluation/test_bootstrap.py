"""Tests for the patient-clustered bootstrap (mrparotid.evaluation.bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest

from mrparotid.evaluation.bootstrap import (BOOTSTRAP_METHOD, accuracy, bootstrap_accuracy,
                                            bootstrap_micro_auc, bootstrap_paired_difference,
                                            micro_auc, patient_bootstrap_ci, rank_auc)


def _ids(n_patients: int, n_slices: int) -> np.ndarray:
    return np.repeat([f"P{i:03d}" for i in range(n_patients)], n_slices)


def _multiclass(seed: int = 1, n_patients: int = 30, n_classes: int = 4):
    """Patients of 3..14 slices, one class each; rounded probabilities (so with ties)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 15, n_patients)
    ids = np.repeat([f"P{i:03d}" for i in range(n_patients)], sizes)
    y = np.repeat(rng.integers(0, n_classes, n_patients), sizes)
    probs = rng.dirichlet(np.ones(n_classes), ids.size)
    probs[np.arange(ids.size), y] += 0.4
    probs = np.round(probs / probs.sum(1, keepdims=True), 2)
    return ids, y, probs


def _width(r: dict) -> float:
    return r["hi"] - r["lo"]


# ---------------------------------------------------------------- AUC helpers

def test_rank_auc_hand_example_ties_and_missing_class():
    assert rank_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert rank_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert rank_auc([0, 1, 1], [0.2, 0.2, 0.9]) == pytest.approx(0.75)
    assert np.isnan(rank_auc([1, 1], [0.2, 0.3]))
    assert np.isnan(rank_auc([0, 0], [0.2, 0.3]))


def test_rank_auc_matches_pairwise_count():
    rng = np.random.default_rng(3)
    labels, scores = rng.integers(0, 2, 60), rng.integers(0, 6, 60).astype(float)   # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    cmp = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert rank_auc(labels, scores) == pytest.approx(cmp.mean())


def test_micro_auc_is_auc_of_flattened_one_vs_rest():
    _, y, probs = _multiclass()
    onehot = np.eye(probs.shape[1], dtype=int)[y]
    assert micro_auc(y, probs) == pytest.approx(rank_auc(onehot.ravel(), probs.ravel()))


# ---------------------------------------------------------------- estimates and fast paths

def test_estimate_is_plain_statistic():
    ids, y, probs = _multiclass()
    pred = probs.argmax(1)
    assert bootstrap_accuracy(ids, y, pred, n_boot=200)["estimate"] == pytest.approx(np.mean(y == pred))
    assert bootstrap_micro_auc(ids, y, probs, n_boot=200)["estimate"] == pytest.approx(micro_auc(y, probs))
    r = patient_bootstrap_ci(ids, lambda p: float(np.max(p)), probs, n_boot=50)
    assert r["estimate"] == probs.max()
    assert (r["n_patients"], r["n_slices"], r["n_boot"]) == (30, ids.size, 50)


def test_fast_paths_match_generic_bootstrap():
    ids, y, probs = _multiclass()
    pred = probs.argmax(1)
    fast, slow = bootstrap_accuracy(ids, y, pred, n_boot=300), patient_bootstrap_ci(ids, accuracy, y, pred, n_boot=300)
    assert (fast["lo"], fast["hi"]) == pytest.approx((slow["lo"], slow["hi"]), abs=1e-12)
    fast = bootstrap_micro_auc(ids, y, probs, n_boot=300, block=1000)    # several blocks
    slow = patient_bootstrap_ci(ids, micro_auc, y, probs, n_boot=300)
    assert (fast["lo"], fast["hi"]) == pytest.approx((slow["lo"], slow["hi"]), abs=1e-12)
    assert fast["lo"] < fast["estimate"] < fast["hi"]


def test_slice_order_does_not_matter():
    ids, y, probs = _multiclass()
    perm = np.random.default_rng(5).permutation(ids.size)                 # interleave patients
    pred = probs.argmax(1)
    for fn, args in [(bootstrap_accuracy, (y, pred)), (bootstrap_micro_auc, (y, probs))]:
        a, b = fn(ids, *args, n_boot=300), fn(ids[perm], *(x[perm] for x in args), n_boot=300)
        assert (a["lo"], a["hi"]) == pytest.approx((b["lo"], b["hi"]), abs=1e-12)
    a = patient_bootstrap_ci(ids, accuracy, y, pred, n_boot=200)
    b = patient_bootstrap_ci(ids[perm], accuracy, y[perm], pred[perm], n_boot=200)
    assert (a["lo"], a["hi"]) == (b["lo"], b["hi"])


def test_resamples_hold_whole_patients():
    ids = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 1 + ["d"] * 7)[np.random.default_rng(0).permutation(16)]
    slice_no = np.arange(16)

    def whole(pid: np.ndarray, sno: np.ndarray) -> float:
        for p in np.unique(pid):
            own = np.sort(slice_no[ids == p])
            got = np.sort(sno[pid == p])
            if got.size % own.size or not np.array_equal(got, np.repeat(own, got.size // own.size)):
                return float("nan")
        return 1.0
    r = patient_bootstrap_ci(ids, whole, ids, slice_no, n_boot=200)
    assert r["n_boot_valid"] == 200 and r["n_patients"] == 4


# ---------------------------------------------------------------- interval widths

def test_one_slice_per_patient_matches_iid_binomial_bootstrap():
    n, k = 200, 160
    y = np.zeros(n, int)
    pred = np.r_[np.zeros(k, int), np.ones(n - k, int)]
    r = bootstrap_accuracy(_ids(n, 1), y, pred, n_boot=2000)
    binom = np.random.default_rng(11).binomial(n, k / n, 2000) / n
    iid_width = np.diff(np.quantile(binom, [0.025, 0.975]))[0]
    assert abs(_width(r) / iid_width - 1) < 0.2


def test_clustered_interval_wider_than_iid_on_clustered_data():
    n_pat, n_sl = 20, 15
    ids = _ids(n_pat, n_sl)
    y = np.zeros(ids.size, int)
    pred = np.repeat(np.r_[np.zeros(14, int), np.ones(6, int)], n_sl)      # patients all right/wrong
    clustered = bootstrap_accuracy(ids, y, pred)
    iid = bootstrap_accuracy(np.arange(ids.size).astype(str), y, pred)
    assert clustered["estimate"] == iid["estimate"] == pytest.approx(0.7)
    assert _width(clustered) > 2 * _width(iid)
    assert iid["n_patients"] == 300 and clustered["n_patients"] == 20


# ---------------------------------------------------------------- seeds, method

def test_seed_reproducible_and_different_seed_differs_slightly():
    ids, y, probs = _multiclass()
    a, b = bootstrap_micro_auc(ids, y, probs, seed=0), bootstrap_micro_auc(ids, y, probs, seed=0)
    assert a == b
    c = bootstrap_micro_auc(ids, y, probs, seed=1)
    assert (a["lo"], a["hi"]) != (c["lo"], c["hi"])
    assert abs(a["lo"] - c["lo"]) < 0.02 and abs(a["hi"] - c["hi"]) < 0.02
    assert a["method"] == BOOTSTRAP_METHOD and "patient" in BOOTSTRAP_METHOD
    assert "B=500, seed 7" in bootstrap_accuracy(ids, y, y, n_boot=500, seed=7)["method"]


# ---------------------------------------------------------------- micro-AUC, undefined replicates

def test_perfect_probabilities_give_auc_one():
    ids, y, _ = _multiclass()
    r = bootstrap_micro_auc(ids, y, np.eye(4)[y])
    assert r["estimate"] == 1.0 and r["lo"] == 1.0 and r["hi"] == 1.0
    assert r["n_boot_valid"] == r["n_boot"] == 2000


def test_undefined_replicates_are_dropped_and_counted():
    ids = _ids(5, 4)
    labels = np.r_[np.ones(4, int), np.zeros(16, int)]                     # only P000 has positives
    scores = np.random.default_rng(2).random(20)
    r = patient_bootstrap_ci(ids, rank_auc, labels, scores, n_boot=1000)
    assert 0.6 < r["n_boot_valid"] / 1000 < 0.75                            # 1 - 0.8**5 = 0.672
    assert np.isfinite(r["lo"]) and np.isfinite(r["hi"])
    none = patient_bootstrap_ci(ids, rank_auc, np.zeros(20, int), scores, n_boot=100)
    assert none["n_boot_valid"] == 0 and np.isnan(none["lo"]) and np.isnan(none["estimate"])


# ---------------------------------------------------------------- paired differences

def test_paired_difference_with_itself_is_zero():
    ids, y, probs = _multiclass()
    r = bootstrap_paired_difference(ids, micro_auc, (y, probs), (y, probs), n_boot=300)
    assert (r["estimate"], r["lo"], r["hi"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert r["n_boot_valid"] == 300 and "patient" in r["method"]


def test_paired_difference_detects_better_model():
    rng = np.random.default_rng(4)
    ids = _ids(40, 10)
    y = rng.integers(0, 3, ids.size)
    good = np.where(rng.random(ids.size) < 0.9, y, (y + 1) % 3)
    bad = np.where(rng.random(ids.size) < 0.6, y, (y + 1) % 3)
    r = bootstrap_paired_difference(ids, accuracy, (y, good), (y, bad), n_boot=1000)
    assert r["estimate"] == pytest.approx(accuracy(y, good) - accuracy(y, bad))
    assert r["estimate"] > 0.2 and r["lo"] > 0 and r["p_value"] < 0.01
    rev = bootstrap_paired_difference(ids, accuracy, (y, bad), (y, good), n_boot=1000)
    assert rev["hi"] < 0 and rev["p_value"] == r["p_value"]


def test_paired_interval_and_p_value_follow_the_replicates():
    rng = np.random.default_rng(6)
    ids = _ids(25, 6)
    y = rng.integers(0, 2, ids.size)
    pa = np.where(rng.random(ids.size) < 0.75, y, 1 - y)
    pb = np.where(rng.random(ids.size) < 0.70, y, 1 - y)
    seen: list[float] = []

    def recording(yy: np.ndarray, pp: np.ndarray) -> float:
        value = accuracy(yy, pp)
        if yy is not y:                                                    # skip the estimate calls
            seen.append(value)
        return value
    r = bootstrap_paired_difference(ids, recording, (y, pa), (y, pb), n_boot=500, seed=3)
    diff = np.array(seen[0::2]) - np.array(seen[1::2])
    assert diff.size == 500
    assert (r["lo"], r["hi"]) == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])))
    expected = min(1.0, 2 * min(np.mean(diff <= 0), np.mean(diff >= 0)))
    assert 0.02 < expected < 1 and r["p_value"] == pytest.approx(expected)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, match", [
    (lambda: bootstrap_accuracy(["a", "b"], [0, 1, 1], [0, 1, 1]), "length mismatch"),
    (lambda: patient_bootstrap_ci(["a", "b", "c"], accuracy, [0, 1, 1], [0, 1]), "length mismatch"),
    (lambda: bootstrap_accuracy([], [], []), "empty"),
    (lambda: patient_bootstrap_ci(["a"], lambda: 1.0), "at least one"),
    (lambda: bootstrap_accuracy(["a"], [0], [0], n_boot=0), "n_boot"),
    (lambda: bootstrap_accuracy(["a"], [0], [0], alpha=1.5), "alpha"),
    (lambda: bootstrap_micro_auc(["a", "b"], [0, 1], [0.2, 0.8]), r"\(n_slices, C\)"),
    (lambda: bootstrap_micro_auc(["a", "b"], [0, 2], [[0.5, 0.5]] * 2), "0..1"),
    (lambda: bootstrap_micro_auc(["a", "b"], [0, 1], [[0.5, np.nan]] * 2), "nan"),
    (lambda: bootstrap_paired_difference(["a", "b"], accuracy, ([0, 1], [0, 1]), ([0, 1], [0])),
     "length mismatch"),
    (lambda: bootstrap_paired_difference(["a"], accuracy, np.array([0]), np.array([0])), "tuples"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
