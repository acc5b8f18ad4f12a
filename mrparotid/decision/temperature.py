"""Temperature scaling of slice logits (Guo et al. 2017): one scalar ``T > 0`` divides the logits
before the softmax, fitted on validation slices by minimising the negative log-likelihood.

Convention: the predictions CSV and every ``probs`` array in the package hold the model's
*uncalibrated* softmax (temperature 1). Calibrated probabilities are made from them here, by
:func:`apply_temperature`, and nowhere else (``predict_probs(..., temperature=T)`` gives the same
numbers straight from the model). ``log(p)`` differs from the logits by a per-slice constant, which
the softmax removes, so raw probabilities are enough. Numpy only at import (``diagnose`` starts fast).

>>> import numpy as np
>>> p = np.array([[0.7, 0.1, 0.1, 0.1]])
>>> apply_temperature(p, 1.0) is not p, bool(np.allclose(apply_temperature(p, 1.0), p))
(True, True)
"""

from __future__ import annotations

import math

import numpy as np

#: Smallest probability taken to the log (a float32 softmax can underflow to exactly 0).
EPS = 1e-12
#: Search range of the temperature fit.
T_BOUNDS = (0.05, 20.0)


def logits_from_probs(probs: np.ndarray) -> np.ndarray:
    """Logits up to a per-row constant: ``log(max(p, EPS))``, float64 (n, C)."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax, float64, numerically stable."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(log(p) / T)`` from uncalibrated ones (n, C); a copy of
    ``probs`` when ``T == 1``. Apply it once, to raw probabilities only (module docstring)."""
    check_temperature(temperature)
    probs = np.array(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (n_slices, n_classes), got {probs.shape}")
    if temperature == 1.0 or len(probs) == 0:
        return probs
    return softmax(logits_from_probs(probs) / float(temperature))


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float; ValueError unless finite and > 0."""
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return t


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats per slice) of labels ``y`` (n,) under
    ``softmax(logits / T)``; nan for no slice."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return math.nan
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising :func:`nll` on ``(logits, y)``: a bounded 1-D search over
    ``log T`` in :data:`T_BOUNDS` (the NLL is smooth and unimodal in ``log T`` for fixed
    logits). Returns 1.0 when there is no slice.

    Parameters
    ----------
    logits : ndarray, shape (n, C)
        Slice logits, or :func:`logits_from_probs` of uncalibrated probabilities.
    y : int array, shape (n,)
        True class index per slice.
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return 1.0
    if logits.ndim != 2 or len(logits) != len(y):
        raise ValueError(f"logits {logits.shape} and labels {y.shape} do not match")
    lo, hi = (math.log(b) for b in T_BOUNDS)
    res = minimize_scalar(lambda s: nll(logits, y, math.exp(s)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-5})
    t = math.exp(float(res.x))
    return t if nll(logits, y, t) <= nll(logits, y, 1.0) else 1.0
