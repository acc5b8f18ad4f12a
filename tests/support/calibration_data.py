"""Hand-made predictions tables for the calibration and refer-band tests (no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES


def slice_row(pid: str, index: int, true: str, p_malignant: float, benign: str = "pleomorphic_adenoma",
              side: str = "L") -> dict:
    """One predictions-CSV row: ``p_malignant`` for malignant, most of the rest on ``benign``."""
    p = {c: 0.0 for c in CLASSES}
    p["malignant"] = p_malignant
    rest = 1.0 - p_malignant
    p[benign], p["no_tumour"] = 0.8 * rest, 0.1 * rest
    other = "warthin" if benign == "pleomorphic_adenoma" else "pleomorphic_adenoma"
    p[other] = 1.0 - sum(v for c, v in p.items() if c != other)
    pred = max(CLASSES, key=lambda c: p[c])
    return {"patient_id": pid, "side": side, "index": index, "true": true, "pred": pred,
            **{f"p_{c}": p[c] for c in CLASSES}}


def patients_table(patients: dict[str, tuple[str, list[float]]]) -> pd.DataFrame:
    """patient_id -> (diagnosis, malignant probability of each tumour slice); each patient also
    gets one contralateral ``no_tumour`` slice (side R) that the patient scores must ignore."""
    rows = []
    for pid, (truth, ps) in patients.items():
        benign = truth if truth != "malignant" else "pleomorphic_adenoma"
        rows += [slice_row(pid, i, truth, p, benign) for i, p in enumerate(ps)]
        rows.append(dict(slice_row(pid, 0, "no_tumour", 0.9, benign, side="R")))
    return pd.DataFrame(rows)


def five_malignant() -> pd.DataFrame:
    """10 validation patients, exactly 5 malignant (one of them with low scores)."""
    pats = {f"M{i}": ("malignant", [p, p]) for i, p in enumerate([0.9, 0.8, 0.7, 0.6, 0.3])}
    pats.update({f"B{i}": ("warthin" if i % 2 else "pleomorphic_adenoma", [p, p])
                 for i, p in enumerate([0.4, 0.2, 0.1, 0.05, 0.02])})
    return patients_table(pats)


def overconfident_logits(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(logits (n, 4), labels (n,)): labels drawn from softmax(z), the logits given are z * T, so
    the temperature that calibrates them is T."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, len(CLASSES)))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(len(CLASSES), p=row) for row in p])
    return z * temperature, y
