"""The two cuts of the answer on p(malignant), chosen on validation patients for a stated
operating point, each with its counts and a one-sided 95 % Clopper-Pearson lower bound.

* ``lo`` (rule-out edge): the highest cut that keeps the malignant sensitivity at or above
  ``target_sensitivity`` (malignant patients with p >= lo, over all malignant patients).
* ``hi`` (rule-in edge): the lowest cut that keeps the specificity at or above
  ``target_specificity`` (benign patients with p < hi, over all benign patients).

At or above ``hi``: malignant. Below ``lo``: benign. Between: refer. Each cut sits midway between
the validation score it must keep and the next one, so the counts hold with a margin. When
``lo > hi`` the band collapses to one cut at ``lo``: sensitivity is kept (a missed cancer is the
costlier error) and the specificity target is given up, which the record says.

>>> e = sensitivity_edge([0.9, 0.8, 0.2, 0.1], [True, True, False, False], 0.95)
>>> round(e.cut, 2), e.k, e.n
(0.5, 2, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Edge:
    """One cut and what it keeps on validation: ``k`` of ``n`` patients on the right side of it,
    ``lower``: the one-sided 95 % Clopper-Pearson lower bound of ``k / n``."""

    cut: float
    k: int
    n: int
    lower: float
    target: float

    def to_dict(self) -> dict:
        return {"cut": self.cut, "k": self.k, "n": self.n, "lower": self.lower, "target": self.target}


def lower_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound of a proportion ``k / n`` (0 for k = 0, nan for n = 0).

    >>> round(lower_bound(14, 14), 2)
    0.81
    """
    from scipy.stats import beta

    if n <= 0:
        return math.nan
    return 0.0 if k <= 0 else float(beta.ppf(1.0 - confidence, k, n - k + 1))


def _arrays(scores, malignant) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(malignant, dtype=bool)
    keep = np.isfinite(s)
    return s[keep], y[keep]


def _between(a: float, below: np.ndarray, floor: float) -> float:
    """Midway between ``a`` and the largest value of ``below`` under it, else midway to ``floor``."""
    under = below[below < a]
    return float((a + (under.max() if under.size else floor)) / 2)


def sensitivity_edge(scores: Sequence[float], malignant: Sequence[bool], target: float) -> Edge:
    """The highest cut with sensitivity (malignant p >= cut) >= ``target``; 0 without malignant
    patients (nothing to keep, refer nobody by it)."""
    s, y = _arrays(scores, malignant)
    mal = np.sort(s[y])[::-1]
    if mal.size == 0:
        return Edge(0.0, 0, 0, math.nan, target)
    need = max(1, math.ceil(target * mal.size - 1e-9))
    keep = mal[need - 1]                               # the lowest malignant score kept above
    cut = _between(keep, s, 0.0)
    k = int((mal >= cut).sum())
    return Edge(cut, k, int(mal.size), lower_bound(k, int(mal.size)), target)


def specificity_edge(scores: Sequence[float], malignant: Sequence[bool], target: float) -> Edge:
    """The lowest cut with specificity (benign p < cut) >= ``target``; 1 without benign patients."""
    s, y = _arrays(scores, malignant)
    ben = np.sort(s[~y])
    if ben.size == 0:
        return Edge(1.0, 0, 0, math.nan, target)
    need = max(1, math.ceil(target * ben.size - 1e-9))
    keep = ben[need - 1]                               # the highest benign score kept below
    above = s[s > keep]
    cut = float((keep + above.min()) / 2) if above.size else float((keep + 1.0) / 2)
    k = int((ben < cut).sum())
    return Edge(cut, k, int(ben.size), lower_bound(k, int(ben.size)), target)


def choose_edges(scores: Sequence[float], malignant: Sequence[bool], target_sensitivity: float,
                 target_specificity: float) -> tuple[Edge, Edge, str | None]:
    """(rule-out edge, rule-in edge, what was given up or None). When the rule-out edge lies above
    the rule-in edge the band collapses to one cut at the rule-out edge and the specificity target
    is given up: the rule-in edge is moved to that cut, with its counts re-taken there."""
    for name, t in (("target_sensitivity", target_sensitivity), ("target_specificity", target_specificity)):
        if not 0 < float(t) < 1:
            raise ValueError(f"{name} must lie in (0, 1), got {t!r}")
    lo = sensitivity_edge(scores, malignant, float(target_sensitivity))
    hi = specificity_edge(scores, malignant, float(target_specificity))
    if lo.cut <= hi.cut:
        return lo, hi, None
    s, y = _arrays(scores, malignant)
    k = int((s[~y] < lo.cut).sum())
    n = int((~y).sum())
    kept = Edge(lo.cut, k, n, lower_bound(k, n), hi.target)
    return lo, kept, (f"specificity target {hi.target:g} given up: it needs a cut at {hi.cut:.3f}, "
                      f"below the {lo.target:g}-sensitivity cut {lo.cut:.3f}; one cut at {lo.cut:.3f} "
                      f"keeps specificity {k}/{n}")
