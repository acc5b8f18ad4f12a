"""Statistics for evaluation: binomial CIs, the Table-4 binary views, ROC curves, DeLong AUC tests.

Confidence intervals follow Xia et al. 2021, Table 4, whose figures are reproduced exactly (to the
3 printed decimals) by the *Wilson score* interval for accuracies and the *Wilson score interval
with continuity correction* (Newcombe 1998, method 4) for sensitivities and specificities:

>>> round(proportion_ci(164, 186)[1], 3), round(proportion_ci(164, 186)[2], 3)
(0.827, 0.921)
>>> [round(v, 3) for v in proportion_ci(88, 93, method="wilson_cc")]
[0.946, 0.873, 0.98]

AUCs follow pROC (Robin et al. 2011): direction "controls < cases" (a higher score means the
positive class, never flipped), DeLong variances by the fast midrank algorithm (Sun & Xu 2014),
ties counted one half, normal CIs clipped to [0, 1].
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _sps

from mrparotid.constants import CLASSES

#: CI method for accuracies (statsmodels ``proportion_confint(method="wilson")``).
ACCURACY_CI_METHOD = "wilson"
#: CI method for sensitivity/specificity (scipy ``BinomTestResult.proportion_ci("wilsoncc")``).
RATE_CI_METHOD = "wilson_cc"
#: How CIs are computed, as printed in reports.
METHOD_NAME = ("95% CIs: Wilson score interval for accuracies; Wilson score interval with "
               "continuity correction (Newcombe 1998, method 4) for sensitivity and specificity "
               "(the pair that reproduces Xia et al. 2021, Table 4); AUC CIs by DeLong "
               "(pROC convention, clipped to [0, 1])")

_STATSMODELS_METHODS = {"wilson": "wilson", "beta": "beta", "clopper_pearson": "beta",
                        "agresti_coull": "agresti_coull", "jeffreys": "jeffreys",
                        "normal": "normal"}
PROPORTION_METHODS: tuple[str, ...] = ("wilson", "wilson_cc", *sorted(set(_STATSMODELS_METHODS) - {"wilson"}))


def proportion_ci(k: int, n: int, alpha: float = 0.05,
                  method: str = ACCURACY_CI_METHOD) -> tuple[float, float, float]:
    """Binomial proportion ``k / n`` with a two-sided ``1 - alpha`` confidence interval.

    Parameters
    ----------
    k, n : int
        Successes and trials, ``0 <= k <= n``.
    alpha : float
        One minus the confidence level.
    method : str
        ``"wilson"`` (default; statsmodels), ``"wilson_cc"`` (Wilson with continuity correction;
        scipy), ``"beta"``/``"clopper_pearson"``, ``"agresti_coull"``, ``"jeffreys"``, ``"normal"``.

    Returns
    -------
    (estimate, lo, hi) : tuple of float
        All ``nan`` when ``n == 0`` (no trials: the proportion is undefined).

    >>> [round(v, 3) for v in proportion_ci(275, 275)]
    [1.0, 0.986, 1.0]
    """
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"proportion_ci: need 0 <= k <= n, got k={k}, n={n}")
    if method not in PROPORTION_METHODS:
        raise ValueError(f"proportion_ci: unknown method {method!r}; choose from {PROPORTION_METHODS}")
    if n == 0:
        return (math.nan, math.nan, math.nan)
    if method == "wilson_cc":
        ci = _sps.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilsoncc")
        lo, hi = float(ci.low), float(ci.high)
    else:
        from statsmodels.stats.proportion import proportion_confint
        lo, hi = proportion_confint(k, n, alpha=alpha, method=_STATSMODELS_METHODS[method])
    lo, hi = (0.0 if k == 0 else lo), (1.0 if k == n else hi)   # exact bounds, no rounding noise
    return (k / n, float(min(max(lo, 0.0), 1.0)), float(min(max(hi, 0.0), 1.0)))


def rate_ci(k: int, n: int, method: str = ACCURACY_CI_METHOD, alpha: float = 0.05) -> dict:
    """:func:`proportion_ci` as a record ``{k, n, estimate, lo, hi, method}``."""
    est, lo, hi = proportion_ci(k, n, alpha, method)
    return {"k": int(k), "n": int(n), "estimate": est, "lo": lo, "hi": hi, "method": method}


#: The Table-4 views: name -> ((positive label, classes), (negative label, classes)).
BINARY_VIEWS: dict[str, tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]] = {
    "benign_vs_malignant": (("malignant", ("malignant",)),
                            ("benign", ("pleomorphic_adenoma", "warthin"))),
    "pa_vs_warthin": (("pleomorphic_adenoma", ("pleomorphic_adenoma",)), ("warthin", ("warthin",))),
    "lesion_vs_no_lesion": (("lesion", ("pleomorphic_adenoma", "warthin", "malignant")),
                            ("no_lesion", ("no_tumour",))),
}


def binary_view(confusion: np.ndarray, positive: tuple[str, ...], negative: tuple[str, ...],
                classes: tuple[str, ...] = CLASSES, alpha: float = 0.05,
                labels: tuple[str, str] | None = None) -> dict:
    """Two-group view of a multi-class confusion matrix (see :func:`binary_views`).

    Parameters
    ----------
    confusion : ndarray, shape (C, C)
        Counts, rows = true class, columns = predicted class, in ``classes`` order.
    positive, negative : tuple of str
        Class groups; slices whose true class is in neither are left out.
    labels : (str, str), optional
        Names of the two groups (default: the class names joined by ``+``).

    Returns
    -------
    dict
        ``positive``/``negative`` (group labels), ``positive_classes``/``negative_classes``,
        ``counts`` (positive_correct, positive_total, negative_correct, negative_total) and
        ``accuracy``, ``sensitivity``, ``specificity``, each ``{k, n, estimate, lo, hi, method}``.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    pos = [classes.index(c) for c in positive]
    neg = [classes.index(c) for c in negative]
    pos_ok, pos_n = int(cm[np.ix_(pos, pos)].sum()), int(cm[pos].sum())
    neg_ok, neg_n = int(cm[np.ix_(neg, neg)].sum()), int(cm[neg].sum())
    return {
        "positive": labels[0] if labels else "+".join(positive),
        "negative": labels[1] if labels else "+".join(negative),
        "positive_classes": list(positive), "negative_classes": list(negative),
        "counts": {"positive_correct": pos_ok, "positive_total": pos_n,
                   "negative_correct": neg_ok, "negative_total": neg_n},
        "accuracy": rate_ci(pos_ok + neg_ok, pos_n + neg_n, ACCURACY_CI_METHOD, alpha),
        "sensitivity": rate_ci(pos_ok, pos_n, RATE_CI_METHOD, alpha),
        "specificity": rate_ci(neg_ok, neg_n, RATE_CI_METHOD, alpha),
    }


def binary_views(confusion: np.ndarray, alpha: float = 0.05) -> dict[str, dict]:
    """The three binary views of Table 4 from a 4x4 slice confusion matrix.

    Reading (one rule for all three views): only slices whose *true* class belongs to one of the two
    groups count; a slice is correct when its *predicted* class falls in the group of its true class,
    so a prediction outside both groups (e.g. ``no_tumour`` for a benign slice in
    ``benign_vs_malignant``, ``malignant`` for a Warthin slice in ``pa_vs_warthin``) is a miss.
    Sensitivity = positive-group recall, specificity = negative-group recall.

    - ``benign_vs_malignant``: lesion slices; positive = malignant, negative = PA + Warthin.
    - ``pa_vs_warthin``: PA and Warthin slices; positive = pleomorphic adenoma.
    - ``lesion_vs_no_lesion``: all slices; positive = lesion (PA + Warthin + malignant).

    On the paper's test set (89 no-tumour, 57 PA, 36 Warthin, 93 malignant slices; Fig. 7 text:
    16 PA and 18 Warthin slices misclassified, 76/93 malignant correct, 5 benign called malignant)
    this reading gives every count of Table 4: 164/186, 59/93, 275/275 accuracies, and benign /
    malignant recalls 88/93 and 76/93, no-lesion / lesion recalls 89/89 and 186/186. Table 4 names
    the *first* group as positive (benign; without lesion), so its sensitivity and specificity are
    our specificity and sensitivity. Its PA-vs-Warthin "sensitivity" 41/59 and "specificity" 18/34
    are not recalls (those are 41/57 and 18/36): 59 = 41 PA hits + 18 Warthin misses and
    34 = 18 Warthin hits + 16 PA misses, i.e. TP/(TP+FP) and TN/(TN+FN) with the misses as FP/FN.
    We report the recalls.

    Parameters
    ----------
    confusion : ndarray, shape (4, 4)
        Counts, rows = true class, columns = predicted class, in ``CLASSES`` order.

    Returns
    -------
    dict
        View name -> :func:`binary_view` result.
    """
    cm = np.asarray(confusion)
    if cm.shape != (len(CLASSES), len(CLASSES)):
        raise ValueError(f"binary_views: confusion must be {len(CLASSES)}x{len(CLASSES)}, got {cm.shape}")
    return {name: binary_view(cm, pos, neg, alpha=alpha, labels=(pos_label, neg_label))
            for name, ((pos_label, pos), (neg_label, neg)) in BINARY_VIEWS.items()}


# --------------------------------------------------------------------------------------------
# ROC and DeLong
# --------------------------------------------------------------------------------------------

def _binary_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if s.shape[-1] != y.size:
        raise ValueError(f"scores have {s.shape[-1]} entries but y_true has {y.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return y, s


def _delong(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs, shape (k,), and DeLong covariance, shape (k, k), for k score rows (Sun & Xu 2014)."""
    y, s = _binary_inputs(y_true, scores)
    m, n = int(y.sum()), int((~y).sum())
    k = s.shape[0]
    if m == 0 or n == 0:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    x, z = s[:, y], s[:, ~y]                              # cases, controls
    tx = _sps.rankdata(x, axis=1)                          # midranks within cases
    tz = _sps.rankdata(z, axis=1)                          # midranks within controls
    txz = _sps.rankdata(np.concatenate([x, z], axis=1), axis=1)
    aucs = (txz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (txz[:, :m] - tx) / n                            # per case: P(control < case)
    v01 = 1.0 - (txz[:, m:] - tz) / m                      # per control: P(case > control)
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((k, k))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((k, k))
    return aucs, s10 / m + s01 / n


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count 1/2); ``nan`` without both classes.

    Parameters
    ----------
    y_true : array, shape (n,)
        1/True = case (positive), 0/False = control.
    scores : array, shape (n,)
        Higher = more likely a case.
    """
    return float(_delong(y_true, scores)[0][0])


def delong_auc_variance(y_true, scores) -> tuple[float, float]:
    """AUC and its DeLong variance, shapes (n,) -> (auc, var); pROC ``var(roc, method="delong")``."""
    auc, cov = _delong(y_true, scores)
    return float(auc[0]), float(cov[0, 0])


def delong_ci(y_true, scores, alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC with pROC's DeLong CI: ``auc -/+ z(1 - alpha/2) * sqrt(var)``, clipped to [0, 1]."""
    auc, var = delong_auc_variance(y_true, scores)
    half = _sps.norm.ppf(1 - alpha / 2) * math.sqrt(max(var, 0.0)) if np.isfinite(var) else math.nan
    return auc, float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


def delong_paired_test(y_true, scores1, scores2, alpha: float = 0.05) -> dict:
    """Paired DeLong test of two AUCs on the same cases (pROC ``roc.test(method="delong")``).

    Parameters
    ----------
    y_true : array, shape (n,)
    scores1, scores2 : array, shape (n,)

    Returns
    -------
    dict
        ``auc1``, ``auc2``, ``z`` = (auc1 - auc2) / se, two-sided ``p``, ``diff_ci`` = (lo, hi) of
        auc1 - auc2, ``cov`` (2x2 covariance as nested lists). ``z = 0, p = 1`` when the
        difference and its variance are both 0 (identical rankings).
    """
    aucs, cov = _delong(y_true, np.vstack([np.ravel(scores1), np.ravel(scores2)]))
    diff = aucs[0] - aucs[1]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    se = math.sqrt(max(var, 0.0)) if np.isfinite(var) else math.nan
    if se > 0:
        z = diff / se
    else:
        z = 0.0 if diff == 0 else (math.copysign(math.inf, diff) if np.isfinite(diff) else math.nan)
    p = 2 * _sps.norm.sf(abs(z)) if np.isfinite(z) or np.isinf(z) else math.nan
    half = _sps.norm.ppf(1 - alpha / 2) * se
    return {"auc1": float(aucs[0]), "auc2": float(aucs[1]), "z": float(z), "p": float(p),
            "diff_ci": (float(diff - half), float(diff + half)), "cov": cov.tolist()}


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve points, shapes (n,) -> (fpr, tpr, thresholds), each shape (t,), from (0, 0) to (1, 1).

    A point per distinct score (predict positive when ``score >= threshold``); the first threshold
    is ``+inf``.
    """
    y, s = _binary_inputs(y_true, scores)
    s = s[0]
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    m, n = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return (np.r_[0.0, fps / n], np.r_[0.0, tps / m], np.r_[np.inf, s[last]])


# --------------------------------------------------------------------------------------------
# Multi-class AUROC (one-vs-rest)
# --------------------------------------------------------------------------------------------

def _onehot(y_true_int, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true_int, dtype=np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.size:
        raise ValueError(f"probs must have shape (n, C) with n = {y.size}, got {p.shape}")
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"class indices must lie in [0, {p.shape[1]})")
    return np.eye(p.shape[1], dtype=bool)[y], p


def per_class_auc(y_true_int, probs, alpha: float = 0.05,
                  classes: tuple[str, ...] = CLASSES) -> dict[str, dict]:
    """One-vs-rest AUC per class with DeLong CIs.

    Parameters
    ----------
    y_true_int : array of int, shape (n,)
    probs : array, shape (n, C)

    Returns
    -------
    dict
        class name -> ``{auc, lo, hi, n_pos, n_neg}``; ``nan`` where a class has no positives
        or no negatives.
    """
    onehot, p = _onehot(y_true_int, probs)
    out = {}
    for j, name in enumerate(classes[:p.shape[1]]):
        auc, lo, hi = delong_ci(onehot[:, j], p[:, j], alpha)
        out[name] = {"auc": auc, "lo": lo, "hi": hi,
                     "n_pos": int(onehot[:, j].sum()), "n_neg": int((~onehot[:, j]).sum())}
    return out


def macro_auc(y_true_int, probs) -> float:
    """Mean of the one-vs-rest AUCs over the classes that have both positives and negatives."""
    aucs = [v["auc"] for v in per_class_auc(y_true_int, probs).values()]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else math.nan


def micro_auc(y_true_int, probs) -> float:
    """Micro-average AUC: one binary AUC over all (slice, class) pairs, shapes (n,), (n, C)."""
    onehot, p = _onehot(y_true_int, probs)
    return roc_auc(onehot.ravel(), p.ravel())


def micro_auc_ci(y_true_int, probs, alpha: float = 0.05) -> tuple[float, float, float]:
    """Micro-AUC with a DeLong CI on the flattened one-vs-rest problem.

    Approximation: the n*C (slice, class) pairs are treated as independent although the C scores
    of one slice are not (they sum to 1), so the CI is indicative rather than exact.
    """
    onehot, p = _onehot(y_true_int, probs)
    return delong_ci(onehot.ravel(), p.ravel(), alpha)


def compare_micro_auc(y_true_int, probs_a, probs_b, alpha: float = 0.05) -> dict:
    """Paired DeLong test of two models' micro-AUCs on the same slices (flattened, as
    :func:`micro_auc_ci`); shapes (n,), (n, C), (n, C). Returns :func:`delong_paired_test`'s dict."""
    onehot, pa = _onehot(y_true_int, probs_a)
    _, pb = _onehot(y_true_int, probs_b)
    if pa.shape != pb.shape:
        raise ValueError(f"probs_a {pa.shape} and probs_b {pb.shape} differ in shape")
    return delong_paired_test(onehot.ravel(), pa.ravel(), pb.ravel(), alpha)
