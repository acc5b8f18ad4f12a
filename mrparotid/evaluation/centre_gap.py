"""Out-of-centre against in-centre: the same patients scored by a leave-one-centre-out CV (each
patient predicted by a model that never saw its centre) and by an in-centre CV (a model that saw
other patients of its centre), and the gap between the two with a paired bootstrap CI.

Figures, per held-out centre and over all centres (patients are the unit; slices stay with their
patient):

- ``rule_accuracy``: exact-diagnosis accuracy of the paper's rule (Wilson CI);
- ``answer_accuracy``: accuracy of the answer among the patients it answers (Wilson CI; its
  ``coverage`` is kept beside it);
- ``malignant_sensitivity``: malignant patients the rule calls malignant (Wilson with continuity
  correction);
- ``lesion_slice_accuracy``: 4-class accuracy of the tumour slices (patient-clustered bootstrap);
- ``auc``: patient AUC of the answer's p(malignant), malignant vs benign (DeLong).

The gap is out-of-centre minus in-centre. Its CI is a paired bootstrap over patients
(:func:`mrparotid.evaluation.bootstrap.bootstrap_paired_difference`): each resample draws patients
with replacement and computes BOTH figures on the same drawn patients, with all slices of a drawn
patient (slices clustered by patient).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mrparotid.decision.score import Records, answer_table
from mrparotid.errors import InputError
from mrparotid.evaluation import stats
from mrparotid.evaluation.answers import auc_p_malignant
from mrparotid.evaluation.bootstrap import bootstrap_accuracy, bootstrap_paired_difference, rank_auc
from mrparotid.evaluation.metrics import patient_slices
from mrparotid.evaluation.predictions import KEY

FIGURES = ("rule_accuracy", "answer_accuracy", "malignant_sensitivity", "lesion_slice_accuracy", "auc")
ALL = "all centres"
N_BOOT = 2000


def paired_method(n_boot: int = N_BOOT, seed: int = 0) -> str:
    """How the gap's CI is computed, as the report says it."""
    return (f"paired bootstrap over patients, {n_boot} resamples (seed {seed}), slices clustered by "
            "patient: each resample draws patients with replacement and computes the out-of-centre and "
            "the in-centre figure on the same drawn patients; 95% percentile interval")


def patient_table(df: pd.DataFrame, records: Records, malignant_min_slices: int) -> pd.DataFrame:
    """One row per patient with a tumour slice: the answer table's columns plus ``centre``,
    ``lesion_correct`` and ``lesion_n`` (tumour slices predicted as their class / all of them),
    sorted by patient id."""
    pats, _ = patient_slices(df)
    table = answer_table(pats, records, malignant_min_slices).set_index("patient_id")
    lesion = df.loc[df["true"] != "no_tumour"]
    table["lesion_correct"] = (lesion["pred"] == lesion["true"]).groupby(lesion["patient_id"]).sum()
    table["lesion_n"] = lesion.groupby("patient_id").size()
    centre = df.groupby("patient_id")["centre"].first() if "centre" in df.columns else None
    table["centre"] = centre.reindex(table.index).fillna("") if centre is not None else ""
    return table.sort_index()


def _arrays(t: pd.DataFrame) -> dict[str, tuple[np.ndarray, ...]]:
    """Per-patient arrays each figure is computed from (one entry per patient row of ``t``)."""
    answered = ~t["referred"].to_numpy(bool)
    malignant = t["malignant"].to_numpy(bool)
    return {"rule_accuracy": ((t["rule"] == t["true"]).to_numpy(float),),
            "answer_accuracy": (answered, (t["answer"] == t["true"]).to_numpy(bool)),
            "malignant_sensitivity": (malignant, (t["rule"] == "malignant").to_numpy(bool)),
            "lesion_slice_accuracy": (t["lesion_correct"].to_numpy(float), t["lesion_n"].to_numpy(float)),
            "auc": (malignant, t["p_malignant"].to_numpy(float))}


def _ratio(k: np.ndarray, n: np.ndarray) -> float:
    total = float(np.sum(n))
    return float(np.sum(k)) / total if total > 0 else math.nan


STATISTICS = {
    "rule_accuracy": lambda correct: float(np.mean(correct)) if correct.size else math.nan,
    "answer_accuracy": lambda answered, correct: _ratio(answered & correct, answered),
    "malignant_sensitivity": lambda malignant, called: _ratio(malignant & called, malignant),
    "lesion_slice_accuracy": _ratio,
    "auc": lambda malignant, p: (rank_auc(malignant[np.isfinite(p)], p[np.isfinite(p)])
                                 if np.isfinite(p).any() else math.nan),
}


def figures(t: pd.DataFrame, lesion_ids: np.ndarray, lesion_hit: np.ndarray) -> dict:
    """The figures of one scheme on the patients of ``t``, each with its CI (module docstring);
    ``lesion_ids``/``lesion_hit``: the tumour slices' patient ids and whether each was right."""
    answered = ~t["referred"].to_numpy(bool)
    malignant = t["malignant"].to_numpy(bool)
    right = (t["answer"] == t["true"]).to_numpy(bool)
    rule_right = (t["rule"] == t["true"]).to_numpy(bool)
    called = (t["rule"] == "malignant").to_numpy(bool)
    lesion = (bootstrap_accuracy(lesion_ids, np.ones(lesion_hit.size, bool), lesion_hit)
              if lesion_hit.size else {"estimate": math.nan, "lo": math.nan, "hi": math.nan})
    auc = auc_p_malignant(t.reset_index())
    return {
        "n_patients": int(len(t)),
        "rule_accuracy": stats.rate_ci(int(rule_right.sum()), len(t), stats.ACCURACY_CI_METHOD),
        "answer_accuracy": stats.rate_ci(int((right & answered).sum()), int(answered.sum()),
                                         stats.ACCURACY_CI_METHOD),
        "coverage": stats.rate_ci(int(answered.sum()), len(t), stats.ACCURACY_CI_METHOD),
        "malignant_sensitivity": stats.rate_ci(int((malignant & called).sum()), int(malignant.sum()),
                                               stats.RATE_CI_METHOD),
        "lesion_slice_accuracy": {"k": int(lesion_hit.sum()), "n": int(lesion_hit.size),
                                  "estimate": lesion["estimate"], "lo": lesion["lo"], "hi": lesion["hi"],
                                  "method": "patient_bootstrap"},
        "auc": {"estimate": auc["auc"], "lo": auc["lo"], "hi": auc["hi"], "method": "DeLong",
                "na_reason": auc.get("na_reason", "")},
    }


def paired_gaps(out_t: pd.DataFrame, in_t: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Figure → out-of-centre minus in-centre on the same patients (rows of both tables in the same
    order) with its paired bootstrap CI: ``{estimate, lo, hi, p_value, n_boot, n_boot_valid}``."""
    ids = out_t.index.astype(str).to_numpy()
    a, b = _arrays(out_t), _arrays(in_t)
    out = {}
    for name in FIGURES:
        d = bootstrap_paired_difference(ids, STATISTICS[name], a[name], b[name], n_boot=n_boot, seed=seed)
        out[name] = {k: d[k] for k in ("estimate", "lo", "hi", "p_value", "n_boot", "n_boot_valid")}
    return out


def check_same_slices(out_df: pd.DataFrame, in_df: pd.DataFrame) -> None:
    """Raise InputError unless both predictions cover the same slices with the same true class."""
    a, b = out_df.set_index(KEY).sort_index(), in_df.set_index(KEY).sort_index()
    if not a.index.equals(b.index) or not (a["true"] == b["true"]).all():
        raise InputError(f"the out-of-centre ({len(a)}) and in-centre ({len(b)}) predictions do not cover "
                         "the same slices", fix="run both cross-validations on the same prepared cohort")


def centre_comparison(out_df: pd.DataFrame, in_df: pd.DataFrame, *, out_records: Records,
                      in_records: Records, malignant_min_slices: int = 2, n_boot: int = N_BOOT,
                      seed: int = 0) -> dict:
    """Each held-out centre and all centres: out-of-centre figures (``out_df``, the LOCO CV's
    pooled out-of-fold predictions, with ``out_records``), in-centre figures (``in_df``,
    ``in_records``), and their paired gaps. The centre of a patient is ``out_df``'s ``centre``.

    Returns
    -------
    dict
        ``{"figures", "method", "groups": {centre | ALL: {"n_patients", "out_of_centre",
        "in_centre", "gap"}}}``.
    """
    check_same_slices(out_df, in_df)
    out_t = patient_table(out_df, out_records, malignant_min_slices)
    in_t = patient_table(in_df, in_records, malignant_min_slices).reindex(out_t.index)
    lesion = {name: df.loc[df["true"] != "no_tumour"] for name, df in (("out", out_df), ("in", in_df))}
    groups = {}
    for centre in sorted(set(out_t["centre"])) + [ALL]:
        keep = np.ones(len(out_t), bool) if centre == ALL else (out_t["centre"] == centre).to_numpy()
        pids = set(out_t.index[keep])
        scored = {}
        for name, t in (("out_of_centre", out_t), ("in_centre", in_t)):
            sl = lesion["out" if name == "out_of_centre" else "in"]
            sl = sl.loc[sl["patient_id"].isin(pids)]
            scored[name] = figures(t.loc[keep], sl["patient_id"].astype(str).to_numpy(),
                                   (sl["pred"] == sl["true"]).to_numpy())
        groups[centre] = {"n_patients": int(keep.sum()), **scored,
                          "gap": paired_gaps(out_t.loc[keep], in_t.loc[keep], n_boot=n_boot, seed=seed)}
    return {"figures": list(FIGURES), "method": paired_method(n_boot, seed), "n_boot": n_boot,
            "groups": groups}
