"""Temperature scaling: the fit recovers a known temperature; applying it from raw probabilities
equals dividing the model's logits (so it is applied once, never twice)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calibration_data import overconfident_logits
from mrparotid.decision.temperature import (apply_temperature, fit_temperature, logits_from_probs, nll,
                                           softmax)
from mrparotid.inference.predict import predict_probs


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(true_t):
    logits, y = overconfident_logits(20000, true_t)
    t = fit_temperature(logits, y)
    assert t == pytest.approx(true_t, rel=0.06)
    assert nll(logits, y, t) <= nll(logits, y, 1.0) + 1e-12


def test_fit_from_probabilities_equals_fit_from_logits():
    logits, y = overconfident_logits(3000, 2.0, seed=1)
    assert fit_temperature(logits_from_probs(softmax(logits)), y) == pytest.approx(fit_temperature(logits, y),
                                                                                 rel=1e-3)


def test_no_slices_means_temperature_one():
    assert fit_temperature(np.zeros((0, 4)), np.zeros(0, int)) == 1.0


def test_apply_temperature_is_identity_at_one_and_sharpens_below_one():
    p = softmax(np.array([[2.0, 0.5, 0.1, -1.0]]))
    assert np.array_equal(apply_temperature(p, 1.0), p)
    assert apply_temperature(p, 0.5).max() > p.max() > apply_temperature(p, 2.0).max()
    assert apply_temperature(p, 2.0).argmax() == p.argmax()
    with pytest.raises(ValueError):
        apply_temperature(p, 0.0)


class _Fixed(torch.nn.Module):
    """Logits = a fixed linear map of the mean input (a tiny deterministic model)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 4)
        torch.manual_seed(0)
        torch.nn.init.normal_(self.lin.weight, std=3.0)

    def forward(self, x):
        return self.lin(x.mean(dim=(2, 3)))


def test_predict_probs_temperature_equals_apply_temperature_once():
    x = np.random.default_rng(0).integers(0, 255, size=(9, 2, 4, 4), dtype=np.uint8)
    model = _Fixed()
    raw = predict_probs(model, x, precision="32-true")
    cal = predict_probs(model, x, precision="32-true", temperature=2.0)
    once = apply_temperature(raw, 2.0)
    assert np.allclose(cal, once, atol=1e-6)
    assert not np.allclose(cal, apply_temperature(once, 2.0), atol=1e-3)   # twice would differ
