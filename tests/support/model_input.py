"""A spy on what ``diagnose`` feeds the classifier, for the diagnosis tests."""

from __future__ import annotations

import numpy as np

from mrparotid.inference import procedure


def catch_model_input(monkeypatch) -> list[np.ndarray]:
    """Every array the diagnosis procedure hands ``predict_probs`` (uint8 (n, C, H, W)), in call
    order, in the list returned; the real ``predict_probs`` still runs on it."""
    seen = []
    real = procedure.predict_probs

    def catch(model, x, **kw):
        seen.append(np.array(x))
        return real(model, x, **kw)

    monkeypatch.setattr(procedure, "predict_probs", catch)
    return seen
