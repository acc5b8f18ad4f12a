"""ECE and Brier of the evaluation's slice calibration."""

from __future__ import annotations


import numpy as np
import pytest

from mrparotid.evaluation.calibration import brier, ece, ece_torchmetrics

HAND = np.array([[0.9, 0.1, 0, 0], [0.9, 0.1, 0, 0], [0.55, 0.45, 0, 0]])
HAND_Y = np.array([0, 1, 0])


def test_ece_and_brier_on_a_hand_example():
    # bins of 1/15: both 0.9 slices share a bin (1 of 2 right), 0.55 has its own (right)
    want = (abs(1 - 1.8) + abs(1 - 0.55)) / 3
    assert ece_torchmetrics(HAND, HAND_Y) == pytest.approx(want, abs=1e-6)
    assert ece(HAND.max(1), HAND.argmax(1) == HAND_Y) == pytest.approx(want)
    assert brier(HAND, HAND_Y) == pytest.approx((0.02 + 1.62 + 0.405) / 3)


def test_bootstrap_ece_bins_are_torchmetrics_bins():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, size=(500, 4))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[:5] = [1.0, 0, 0, 0]                        # confidence 1.0: torchmetrics' extra bin
    y = rng.integers(0, 4, 500)
    assert ece(p.max(1), p.argmax(1) == y) == pytest.approx(ece_torchmetrics(p, y), abs=1e-6)
