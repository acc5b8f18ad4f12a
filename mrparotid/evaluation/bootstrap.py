"""Patient-clustered bootstrap CIs for slice-level metrics.

Each patient contributes several correlated axial slices, so intervals that resample slices as if
independent are too narrow. Here whole patients are resampled with replacement and every slice of a
drawn patient is kept (a drawn-twice patient counts twice); the interval is the percentile interval
of the replicates. Replicates where the statistic is undefined (``nan``, e.g. a resample holding one
class only) are dropped and counted in ``n_boot_valid``.

Conventions: ``patient_ids`` is a 1-D array of str, one per slice; per-slice arrays have the slice on
their first axis; ``y_true_int`` holds ints ``0..C-1``; ``probs`` is float ``(n_slices, C)``.
The same ``seed`` draws the same patients for every function, so the fast paths
(:func:`bootstrap_accuracy`, :func:`bootstrap_micro_auc`) give the replicates that
:func:`patient_bootstrap_ci` gives with :func:`accuracy` / :func:`micro_auc`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from scipy import sparse as _sparse
from scipy.stats import rankdata


def _method_text(n_boot: int, seed: int, alpha: float) -> str:
    return (f"{100 * (1 - alpha):g}% patient-clustered percentile bootstrap: resample patients with "
            f"replacement (B={n_boot}, seed {seed}), keep all slices of each drawn patient; "
            "replicates with an undefined statistic are dropped")


#: How the intervals are computed (default parameters), as printed in reports.
BOOTSTRAP_METHOD: str = _method_text(2000, 0, 0.05)


def rank_auc(labels: Any, scores: Any) -> float:
    """Exact ROC AUC by ranks (Mann-Whitney U / (n1 n0)); ties count one half.

    ``labels`` is binary (bool or 0/1, 1 = positive), ``scores`` float, higher = more positive.
    Returns ``nan`` when either class is absent.
    """
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores, dtype=float).ravel()
    n1 = int(labels.sum())
    n0 = labels.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)                          # average ranks for ties
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of slices with ``y_true == y_pred`` (``nan`` when empty)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def micro_auc(y_true_int: Any, probs: Any) -> float:
    """Micro-averaged AUC: :func:`rank_auc` of ``one_hot(y_true_int, C).ravel()`` vs ``probs.ravel()``."""
    y, p = np.asarray(y_true_int), np.asarray(probs, dtype=float)
    onehot = np.zeros(p.shape, dtype=bool)
    onehot[np.arange(len(y)), y] = True
    return rank_auc(onehot.ravel(), p.ravel())


def _check(patient_ids: Any, arrays: Sequence[Any], n_boot: int, alpha: float, who: str):
    """Validate inputs; return (ids, arrays, inverse patient index per slice, n_patients)."""
    ids = np.asarray(patient_ids)
    if ids.ndim != 1:
        raise ValueError(f"{who}: patient_ids must be 1-D (one id per slice), got shape {ids.shape}")
    if ids.size == 0:
        raise ValueError(f"{who}: empty input (no slices)")
    if len(arrays) == 0:
        raise ValueError(f"{who}: need at least one per-slice array")
    arrays = [np.asarray(a) for a in arrays]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[0] != ids.size:
            raise ValueError(f"{who}: length mismatch: patient_ids has {ids.size} slices but array "
                             f"{i} has shape {a.shape} (first axis must be the slice)")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"{who}: n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{who}: alpha must lie in (0, 1), got {alpha!r}")
    _, inv = np.unique(ids, return_inverse=True)
    inv = inv.ravel()
    return ids, arrays, inv, int(inv.max()) + 1


def _draws(n_patients: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_patients) patient indices drawn with replacement; shared by every function."""
    return np.random.default_rng(seed).integers(0, n_patients, size=(int(n_boot), n_patients))


def _weights(draws: np.ndarray, n_patients: int) -> np.ndarray:
    """(B, P) float: how many times each patient was drawn in each replicate."""
    b = draws.shape[0]
    flat = (draws + n_patients * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n_patients).reshape(b, n_patients).astype(float)


def _index_builder(inv: np.ndarray, n_patients: int) -> Callable[[np.ndarray], np.ndarray]:
    """Return f(drawn patients) -> slice indices of those patients, concatenated in draw order."""
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv, minlength=n_patients)
    starts = np.cumsum(counts) - counts

    def build(drawn: np.ndarray) -> np.ndarray:
        lengths = counts[drawn]
        offsets = np.cumsum(lengths) - lengths
        pos = np.arange(int(lengths.sum())) + np.repeat(starts[drawn] - offsets, lengths)
        return order[pos]
    return build


def _summary(estimate: float, reps: np.ndarray, alpha: float, n_patients: int, n_slices: int,
             n_boot: int, seed: int) -> dict:
    valid = reps[np.isfinite(reps)]
    lo, hi = ((float(q) for q in np.quantile(valid, [alpha / 2, 1 - alpha / 2])) if valid.size
              else (float("nan"), float("nan")))
    return {"estimate": float(estimate), "lo": lo, "hi": hi, "n_boot": int(n_boot),
            "n_boot_valid": int(valid.size), "n_patients": n_patients, "n_slices": n_slices,
            "method": _method_text(n_boot, seed, alpha)}


def patient_bootstrap_ci(patient_ids: Any, statistic: Callable[..., float], *arrays: Any,
                         n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Patient-clustered percentile bootstrap CI of ``statistic(*arrays) -> float``.

    Parameters
    ----------
    patient_ids : array of str, one per slice
    statistic : callable taking the (resampled) arrays, returning a float (``nan`` = undefined)
    *arrays : per-slice arrays, first axis = slice
    n_boot, seed, alpha : replicates, RNG seed, one minus the confidence level

    Returns
    -------
    dict with ``estimate`` (statistic on the original data), ``lo``, ``hi`` (percentiles over finite
    replicates; ``nan`` if none), ``n_boot``, ``n_boot_valid``, ``n_patients``, ``n_slices``, ``method``.
    """
    ids, arrs, inv, n_pat = _check(patient_ids, arrays, n_boot, alpha, "patient_bootstrap_ci")
    build = _index_builder(inv, n_pat)
    reps = np.array([statistic(*(a[idx] for a in arrs))
                     for idx in map(build, _draws(n_pat, n_boot, seed))], dtype=float)
    return _summary(statistic(*arrs), reps, alpha, n_pat, ids.size, n_boot, seed)


def bootstrap_accuracy(patient_ids: Any, y_true: Any, y_pred: Any, *, n_boot: int = 2000,
                       seed: int = 0, alpha: float = 0.05) -> dict:
    """Slice accuracy with a patient-clustered CI; O(B * n_patients) via per-patient sums.

    Same keys and replicates as ``patient_bootstrap_ci(patient_ids, accuracy, y_true, y_pred)``.
    """
    ids, (yt, yp), inv, n_pat = _check(patient_ids, (y_true, y_pred), n_boot, alpha,
                                       "bootstrap_accuracy")
    correct = np.bincount(inv, weights=(yt == yp).astype(float), minlength=n_pat)
    n = np.bincount(inv, minlength=n_pat).astype(float)
    w = _weights(_draws(n_pat, n_boot, seed), n_pat)
    return _summary(accuracy(yt, yp), (w @ correct) / (w @ n), alpha, n_pat, ids.size, n_boot, seed)


def _check_probs(y: np.ndarray, p: np.ndarray, who: str) -> None:
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"{who}: probs must be (n_slices, C) with C >= 2, got shape {p.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{who}: y_true_int must be a 1-D integer array, got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"{who}: y_true_int must lie in 0..{p.shape[1] - 1}, "
                         f"got {y.min()}..{y.max()}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{who}: probs contain nan or inf")


def bootstrap_micro_auc(patient_ids: Any, y_true_int: Any, probs: Any, *, n_boot: int = 2000,
                        seed: int = 0, alpha: float = 0.05, block: int = 500_000) -> dict:
    """Micro-AUC (see :func:`micro_auc`) with a patient-clustered CI, exact and vectorised.

    Each replicate is the weighted Mann-Whitney AUC with weight = times the slice's patient was
    drawn; per-patient counts at each distinct score go through one sparse product per block of
    replicates (``block`` bounds the dense work array). Same replicates as
    ``patient_bootstrap_ci(patient_ids, micro_auc, y_true_int, probs)`` up to rounding.
    """
    ids, (y, p), inv, n_pat = _check(patient_ids, (y_true_int, probs), n_boot, alpha,
                                     "bootstrap_micro_auc")
    _check_probs(y, p, "bootstrap_micro_auc")
    n_cls = p.shape[1]
    onehot = np.zeros(p.shape, dtype=bool)
    onehot[np.arange(ids.size), y] = True
    lab, pat = onehot.ravel(), np.repeat(inv, n_cls)
    uniq, k = np.unique(p.ravel(), return_inverse=True)
    k = k.ravel()

    def counts(mask: np.ndarray) -> _sparse.csr_matrix:    # (distinct scores, patients)
        return _sparse.csr_matrix((np.ones(int(mask.sum())), (k[mask], pat[mask])),
                                  shape=(uniq.size, n_pat))
    m_pos, m_neg = counts(lab), counts(~lab)
    w = _weights(_draws(n_pat, n_boot, seed), n_pat)
    reps = np.empty(int(n_boot))
    step = max(1, block // max(uniq.size, 1))
    for s in range(0, int(n_boot), step):
        wt = w[s:s + step].T                               # (P, b)
        pos, neg = np.asarray(m_pos @ wt), np.asarray(m_neg @ wt)   # (K, b) weighted counts
        below = np.cumsum(neg, axis=0) - neg               # negatives strictly below each score
        num = np.sum(pos * (below + 0.5 * neg), axis=0)
        den = pos.sum(axis=0) * neg.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[s:s + step] = np.where(den > 0, num / den, np.nan)
    return _summary(micro_auc(y, p), reps, alpha, n_pat, ids.size, n_boot, seed)


def bootstrap_paired_difference(patient_ids: Any, statistic: Callable[..., float],
                                arrays_a: tuple, arrays_b: tuple, *, n_boot: int = 2000,
                                seed: int = 0, alpha: float = 0.05) -> dict:
    """Paired patient-clustered bootstrap of ``statistic(*arrays_a) - statistic(*arrays_b)``.

    Both models are scored on the same resampled patients. Adds ``p_value``, the two-sided bootstrap
    p-value ``min(1, 2 * min(mean(diff <= 0), mean(diff >= 0)))`` over replicates where both
    statistics are defined (``nan`` if none).
    """
    if not isinstance(arrays_a, (tuple, list)) or not isinstance(arrays_b, (tuple, list)):
        raise ValueError("bootstrap_paired_difference: arrays_a and arrays_b must be tuples of "
                         "per-slice arrays")
    ids, arrs, inv, n_pat = _check(patient_ids, (*arrays_a, *arrays_b), n_boot, alpha,
                                   "bootstrap_paired_difference")
    if len(arrays_a) == 0 or len(arrays_b) == 0:
        raise ValueError("bootstrap_paired_difference: arrays_a and arrays_b must be non-empty")
    na = len(arrays_a)
    build = _index_builder(inv, n_pat)

    def diff(*xs: np.ndarray) -> float:
        return float(statistic(*xs[:na])) - float(statistic(*xs[na:]))
    reps = np.array([diff(*(a[idx] for a in arrs))
                     for idx in map(build, _draws(n_pat, n_boot, seed))], dtype=float)
    out = _summary(diff(*arrs), reps, alpha, n_pat, ids.size, n_boot, seed)
    valid = reps[np.isfinite(reps)]
    out["p_value"] = (float(min(1.0, 2 * min(np.mean(valid <= 0), np.mean(valid >= 0))))
                      if valid.size else float("nan"))
    return out
