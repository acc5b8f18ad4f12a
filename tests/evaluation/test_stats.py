"""Tests for mrparotid.evaluation.stats: binomial CIs (paper Table 4), binary views, DeLong against pROC."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mrparotid.evaluation import stats
from shared_dir import SHARED_DIR
from mrparotid.constants import CLASSES

ASAH = SHARED_DIR / "fixtures" / "asah"

# Xia et al. 2021, Table 4: (k, n, estimate, lo, hi, CI method)
TABLE4 = [
    (164, 186, 0.882, 0.827, 0.921, "wilson"),       # benign vs malignant accuracy
    (88, 93, 0.946, 0.873, 0.980, "wilson_cc"),      # benign vs malignant "sensitivity" (benign recall)
    (76, 93, 0.817, 0.721, 0.887, "wilson_cc"),      # benign vs malignant "specificity" (malignant recall)
    (59, 93, 0.634, 0.533, 0.725, "wilson"),         # PA vs Warthin accuracy
    (41, 59, 0.695, 0.560, 0.805, "wilson_cc"),      # PA vs Warthin "sensitivity"
    (18, 34, 0.529, 0.354, 0.698, "wilson_cc"),      # PA vs Warthin "specificity"
    (275, 275, 1.0, 0.986, 1.0, "wilson"),           # lesion vs no lesion accuracy
    (89, 89, 1.0, 0.948, 1.0, "wilson_cc"),          # "sensitivity" (no-lesion recall)
    (186, 186, 1.0, 0.975, 1.0, "wilson_cc"),        # "specificity" (lesion recall)
]

# The paper's slice confusion reconstructed from its text (rows true, columns predicted, CLASSES
# order): 89 no-tumour all right; PA 41 right, 16 wrong, 1 of them malignant (5 benign slices
# called malignant, 4 of them Warthin); Warthin 18 right, 14 called PA, 4 malignant; malignant
# 76 right, 17 called benign (split between PA and Warthin unknown; any split gives Table 4).
PAPER_CM = np.array([[89, 0, 0, 0], [0, 41, 15, 1], [0, 14, 18, 4], [0, 9, 8, 76]])


def r3(x: float) -> float:
    return round(x, 3)


@pytest.mark.parametrize("k,n,est,lo,hi,method", TABLE4)
def test_proportion_ci_reproduces_table4(k, n, est, lo, hi, method):
    e, l, h = stats.proportion_ci(k, n, method=method)
    assert (r3(e), r3(l), r3(h)) == (est, lo, hi)


def test_default_method_is_wilson_and_named():
    assert stats.proportion_ci(164, 186) == stats.proportion_ci(164, 186, method="wilson")
    assert "Wilson" in stats.METHOD_NAME and "continuity" in stats.METHOD_NAME


def test_proportion_ci_edge_cases():
    assert all(math.isnan(v) for v in stats.proportion_ci(0, 0))
    for m in set(stats.PROPORTION_METHODS) - {"normal"}:   # Wald collapses to [0, 0] / [1, 1]
        e, lo, hi = stats.proportion_ci(0, 10, method=m)
        assert e == 0 and lo == 0 and 0 < hi < 1
        e, lo, hi = stats.proportion_ci(10, 10, method=m)
        assert e == 1 and hi == 1 and 0 < lo < 1
    with pytest.raises(ValueError):
        stats.proportion_ci(5, 3)
    with pytest.raises(ValueError):
        stats.proportion_ci(1, 3, method="bogus")


@given(n=st.integers(1, 300), data=st.data())
@settings(max_examples=60, deadline=None)
def test_proportion_ci_contains_estimate(n, data):
    k = data.draw(st.integers(0, n))
    for m in ("wilson", "wilson_cc", "beta"):
        e, lo, hi = stats.proportion_ci(k, n, method=m)
        assert 0 <= lo <= e <= hi <= 1


def test_binary_views_on_paper_confusion():
    v = stats.binary_views(PAPER_CM)
    bvm, pw, les = v["benign_vs_malignant"], v["pa_vs_warthin"], v["lesion_vs_no_lesion"]
    assert (bvm["positive"], pw["positive"], les["positive"]) == (
        "malignant", "pleomorphic_adenoma", "lesion")
    assert les["positive_classes"] == ["pleomorphic_adenoma", "warthin", "malignant"]
    assert (bvm["negative"], pw["negative"], les["negative"]) == ("benign", "warthin", "no_lesion")
    # accuracies as in Table 4
    assert (bvm["accuracy"]["k"], bvm["accuracy"]["n"]) == (164, 186)
    assert (pw["accuracy"]["k"], pw["accuracy"]["n"]) == (59, 93)
    assert (les["accuracy"]["k"], les["accuracy"]["n"]) == (275, 275)
    for view, (est, lo, hi) in ((bvm, (0.882, 0.827, 0.921)), (pw, (0.634, 0.533, 0.725)),
                                (les, (1.0, 0.986, 1.0))):
        a = view["accuracy"]
        assert (r3(a["estimate"]), r3(a["lo"]), r3(a["hi"])) == (est, lo, hi)
    # positive = malignant: Table 4's sensitivity/specificity (positive = benign) appear swapped
    s, p = bvm["sensitivity"], bvm["specificity"]
    assert (s["k"], s["n"], r3(s["lo"]), r3(s["hi"])) == (76, 93, 0.721, 0.887)
    assert (p["k"], p["n"], r3(p["lo"]), r3(p["hi"])) == (88, 93, 0.873, 0.980)
    # positive = lesion: likewise swapped with Table 4's "without lesion" positive
    s, p = les["sensitivity"], les["specificity"]
    assert (s["k"], s["n"], r3(s["lo"])) == (186, 186, 0.975)
    assert (p["k"], p["n"], r3(p["lo"])) == (89, 89, 0.948)
    # PA vs Warthin: recalls 41/57, 18/36; the paper's 41/59 and 18/34 come from the same counts
    c = pw["counts"]
    assert (c["positive_correct"], c["positive_total"], c["negative_correct"], c["negative_total"]) == (41, 57, 18, 36)
    pa_miss, w_miss = c["positive_total"] - c["positive_correct"], c["negative_total"] - c["negative_correct"]
    k1, n1 = c["positive_correct"], c["positive_correct"] + w_miss
    k2, n2 = c["negative_correct"], c["negative_correct"] + pa_miss
    assert (k1, n1, k2, n2) == (41, 59, 18, 34)
    assert [r3(x) for x in stats.proportion_ci(k1, n1, method="wilson_cc")] == [0.695, 0.560, 0.805]
    assert [r3(x) for x in stats.proportion_ci(k2, n2, method="wilson_cc")] == [0.529, 0.354, 0.698]


def test_binary_views_out_of_group_prediction_is_a_miss():
    cm = np.zeros((4, 4), int)
    cm[1, 0] = 2   # PA slices called no tumour
    cm[1, 1] = 3
    cm[3, 3] = 5
    v = stats.binary_views(cm)["benign_vs_malignant"]
    assert v["counts"] == {"positive_correct": 5, "positive_total": 5,
                           "negative_correct": 3, "negative_total": 5}
    assert math.isnan(stats.binary_views(np.zeros((4, 4), int))["pa_vs_warthin"]["accuracy"]["lo"])
    with pytest.raises(ValueError):
        stats.binary_views(np.zeros((3, 3)))


# ------------------------------------------------------------------ DeLong vs pROC (aSAH)

@pytest.fixture(scope="module")
def asah():
    if not (ASAH / "reference.json").is_file():
        pytest.skip(f"pROC reference fixture not found at {ASAH} (needs the shared/ folder beside the repo)")
    import pandas as pd
    data = pd.read_csv(ASAH / "asah.csv")
    assert len(data) == 113 and data["poor_outcome"].sum() == 41
    return data, json.loads((ASAH / "reference.json").read_text(encoding="utf-8"))


def test_delong_matches_proc(asah):
    data, ref = asah
    y = data["poor_outcome"].to_numpy()
    for col in ("s100b", "wfns", "ndka"):
        auc, var = stats.delong_auc_variance(y, data[col])
        assert auc == pytest.approx(ref["auc"][col], abs=1e-12)
        assert var == pytest.approx(ref["delong_var"][col], abs=1e-12)
    auc, lo, hi = stats.delong_ci(y, data["ndka"])
    assert (lo, hi) == pytest.approx(tuple(ref["delong_ci95_ndka"]), abs=1e-10)
    for pair, cov in ref["delong_cov"].items():
        a, b = pair.split(",")
        assert stats.delong_paired_test(y, data[a], data[b])["cov"][0][1] == pytest.approx(cov, abs=1e-12)


def test_delong_paired_test_matches_proc(asah):
    data, ref = asah
    y = data["poor_outcome"].to_numpy()
    for pair, r in ref["roc_test_delong_paired_two_sided"].items():
        a, b = pair.split(" vs ")
        t = stats.delong_paired_test(y, data[a], data[b])
        assert t["z"] == pytest.approx(r["z"], abs=1e-10)
        assert t["p"] == pytest.approx(r["p"], abs=1e-10)
        assert t["diff_ci"] == pytest.approx(tuple(r["ci95_diff"]), abs=1e-10)


def _brute_delong(y, s):
    """O(m n) DeLong from the definition (structural components, ties count 1/2)."""
    y = np.asarray(y, bool)
    x, z = s[y], s[~y]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(z)


@given(data=st.data())
@settings(max_examples=50, deadline=None)
def test_delong_equals_definition(data):
    n = data.draw(st.integers(4, 40))
    y = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if y.sum() < 2 or (~y).sum() < 2:
        y[:2], y[2:4] = True, False
    s = np.array(data.draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), float)  # many ties
    auc, var = stats.delong_auc_variance(y, s)
    bauc, bvar = _brute_delong(y, s)
    assert auc == pytest.approx(bauc, abs=1e-12) and var == pytest.approx(bvar, abs=1e-12)
    fpr, tpr, _ = stats.roc_curve(y, s)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=1e-12)


def test_delong_degenerate_inputs():
    assert math.isnan(stats.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    t = stats.delong_paired_test([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4])
    assert t["z"] == 0 and t["p"] == 1
    assert stats.delong_ci([0, 1], [0.2, 0.9]) == (1.0, 1.0, 1.0)


# ------------------------------------------------------------------ multi-class AUROC

def _toy(n=120, seed=0, signal=1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_multiclass_auc():
    y, p = _toy()
    per = stats.per_class_auc(y, p)
    assert list(per) == list(CLASSES)
    for j, c in enumerate(CLASSES):
        assert per[c]["auc"] == pytest.approx(stats.roc_auc(y == j, p[:, j]))
        assert per[c]["lo"] <= per[c]["auc"] <= per[c]["hi"]
    assert stats.macro_auc(y, p) == pytest.approx(np.mean([v["auc"] for v in per.values()]))
    onehot = np.eye(4, dtype=bool)[y]
    assert stats.micro_auc(y, p) == pytest.approx(stats.roc_auc(onehot.ravel(), p.ravel()))
    auc, lo, hi = stats.micro_auc_ci(y, p)
    assert lo < auc < hi and auc == stats.micro_auc(y, p)
    perfect = np.eye(4)[y]
    assert stats.micro_auc(y, perfect) == 1.0


def test_multiclass_auc_missing_class():
    y = np.array([0, 0, 1, 1, 3, 3])
    p = np.full((6, 4), 0.25)
    per = stats.per_class_auc(y, p)
    assert math.isnan(per["warthin"]["auc"]) and per["warthin"]["n_pos"] == 0
    assert stats.macro_auc(y, p) == pytest.approx(0.5)


def test_compare_micro_auc():
    y, good = _toy(seed=1, signal=2.5)
    _, weak = _toy(seed=2, signal=0.0)
    r = stats.compare_micro_auc(y, good, weak)
    assert r["auc1"] > r["auc2"] and r["p"] < 1e-3 and r["z"] > 0
    same = stats.compare_micro_auc(y, good, good)
    assert same["p"] == 1.0
    with pytest.raises(ValueError):
        stats.compare_micro_auc(y, good, good[:, :3])
