"""What a channel set adds over a reference model on the same test patients: lesion-slice
accuracy and pleomorphic-adenoma-vs-Warthin patient accuracy, each with a paired,
patient-clustered bootstrap CI of the difference (issue 23: what ADC adds to T1, CE-T1 and T2).

- **Lesion-slice accuracy**: the share of tumour slices (``true != no_tumour``) given their true
  class; slices cluster within patients, so the bootstrap resamples patients.
- **PA vs Warthin patient accuracy**: among the patients whose true diagnosis is a pleomorphic
  adenoma or a Warthin tumour, the share the paper's rule calls correctly (any other call, e.g.
  malignant, counts as wrong): the distinction that ADC is known to carry (PA about 1.6–2.0, Warthin
  about 0.8–1.0 x 10⁻³ mm²/s). One value per patient; the bootstrap resamples those patients.

Both models are scored on the same resampled patients (paired), B = 2000, seed 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mrparotid.evaluation.bootstrap import accuracy, bootstrap_paired_difference
from mrparotid.evaluation.metrics import label_arrays, patient_slices

BENIGN_PAIR: tuple[str, str] = ("pleomorphic_adenoma", "warthin")
GAIN_KEYS: tuple[str, ...] = ("lesion_acc", "pa_warthin_acc")


def rule_calls(df: pd.DataFrame, malignant_min_slices: int = 2) -> dict[str, tuple[str, str]]:
    """patient_id → (true diagnosis, the paper's rule's diagnosis) from slice predictions."""
    from mrparotid.decision.rule import decide_patient

    pats, _ = patient_slices(df)
    return {pid: (truth, decide_patient(p, malignant_min_slices=malignant_min_slices).diagnosis)
            for pid, (truth, p, _) in pats.items()}


def _paired(ids: np.ndarray, a: tuple, b: tuple) -> dict:
    """Estimate, CI and p of ``accuracy(*a) - accuracy(*b)``; nan without data."""
    if ids.size == 0:
        return {"estimate": math.nan, "lo": math.nan, "hi": math.nan, "p_value": math.nan}
    return bootstrap_paired_difference(ids, accuracy, a, b)


def channel_gains(f: pd.DataFrame, ref: pd.DataFrame, *, malignant_min_slices: int = 2) -> dict:
    """Lesion-slice and PA-vs-Warthin patient accuracy of ``f`` and of the reference ``ref`` (the
    same slices, same order), and their paired differences (``f`` minus ``ref``) with 95% CIs.

    Returns ``{lesion_acc, lesion_acc_ref, lesion_acc_diff, _lo, _hi, _p, n_lesion_slices,
    n_lesion_patients, pa_warthin_acc, ..._ref, ..._diff, _lo, _hi, _p, n_pa_warthin_patients}``.
    """
    y, yhat, _ = label_arrays(f)
    _, ref_hat, _ = label_arrays(ref)
    lesion = (f["true"] != "no_tumour").to_numpy()
    ids = f["patient_id"].astype(str).to_numpy()[lesion]
    out: dict = {"n_lesion_slices": int(lesion.sum()), "n_lesion_patients": int(np.unique(ids).size)}
    a, b = (y[lesion], yhat[lesion]), (y[lesion], ref_hat[lesion])
    d = _paired(ids, a, b)
    out.update(lesion_acc=accuracy(*a) if lesion.any() else math.nan,
               lesion_acc_ref=accuracy(*b) if lesion.any() else math.nan,
               lesion_acc_diff=d["estimate"], lesion_acc_diff_lo=d["lo"], lesion_acc_diff_hi=d["hi"],
               lesion_acc_p=d["p_value"])
    calls, ref_calls = rule_calls(f, malignant_min_slices), rule_calls(ref, malignant_min_slices)
    pids = np.array(sorted(p for p, (t, _) in calls.items() if t in BENIGN_PAIR), dtype=object)
    truth = np.array([calls[p][0] for p in pids], dtype=object)
    mine = np.array([calls[p][1] for p in pids], dtype=object)
    theirs = np.array([ref_calls[p][1] for p in pids], dtype=object)
    d = _paired(pids.astype(str), (truth, mine), (truth, theirs))
    out.update(n_pa_warthin_patients=int(pids.size),
               pa_warthin_acc=accuracy(truth, mine) if pids.size else math.nan,
               pa_warthin_acc_ref=accuracy(truth, theirs) if pids.size else math.nan,
               pa_warthin_acc_diff=d["estimate"], pa_warthin_acc_diff_lo=d["lo"],
               pa_warthin_acc_diff_hi=d["hi"], pa_warthin_acc_p=d["p_value"])
    return out


def gains_markdown(rows: list[dict], reference_name: str) -> list[str]:
    """Markdown lines: per model, lesion-slice and PA-vs-Warthin patient accuracy against the
    reference, with the paired CIs."""
    def ci(t: dict, key: str) -> str:
        if t.get("reference"):
            return "reference"
        if not math.isfinite(t.get(f"{key}_diff", math.nan)):
            return "n/a"
        p = t[f"{key}_p"]
        p_text = "p < 0.001" if p < 0.001 else f"p {p:.3g}"      # 2/B = 0.001: the bootstrap's resolution
        return (f"{t[f'{key}_diff']:+.3f} [{t[f'{key}_diff_lo']:+.3f}, {t[f'{key}_diff_hi']:+.3f}] "
                f"({p_text})")

    md = ["## What a channel set adds: lesion slices and PA vs Warthin", "",
          f"Against `{reference_name}` on the same test patients. Lesion-slice accuracy: tumour slices "
          "only, slices clustered within patients. PA vs Warthin: the paper's rule's patient call among "
          "the pleomorphic-adenoma and Warthin patients (a malignant call counts as wrong). Differences "
          "are this model minus the reference; 95% CIs and p from a paired bootstrap over patients "
          "(both models scored on the same resampled patients, B = 2000, seed 0).", "",
          "| model | lesion-slice accuracy | difference [95% CI] | PA vs Warthin patients | "
          "difference [95% CI] |", "|---|---|---|---|---|"]
    for t in rows:
        md.append(f"| {t['name']} | {t['lesion_acc']:.3f} ({t['n_lesion_slices']} slices, "
                  f"{t['n_lesion_patients']} patients) | {ci(t, 'lesion_acc')} | "
                  f"{t['pa_warthin_acc']:.3f} ({t['n_pa_warthin_patients']} patients) | "
                  f"{ci(t, 'pa_warthin_acc')} |")
    return md
