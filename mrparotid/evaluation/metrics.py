"""Slice- and patient-level metrics of a validated predictions table (Tables 4 and 5 of the paper),
with confidence intervals from :mod:`mrparotid.evaluation.stats`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES, NO_TUMOUR_FOUND
from mrparotid.errors import InputError
from mrparotid.evaluation import stats
from mrparotid.evaluation.predictions import KEY, PROB_COLUMNS



def label_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true ints (n,), pred ints (n,), probs (n, 4))."""
    return (df["true"].map(CLASSES.index).to_numpy(np.int64), df["pred"].map(CLASSES.index).to_numpy(np.int64),
            df.loc[:, list(PROB_COLUMNS)].to_numpy(np.float64))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Counts, shape (C, C): rows = true class index, columns = predicted class index."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def slice_metrics(df: pd.DataFrame) -> dict:
    """Slice-level metrics of a validated predictions table (see :func:`evaluate_predictions`)."""
    y, yhat, p = label_arrays(df)
    cm = confusion_matrix(y, yhat)
    micro = stats.micro_auc_ci(y, p)
    return {
        "n_slices": int(len(df)), "confusion": cm.tolist(),
        "accuracy": stats.rate_ci(int(np.trace(cm)), int(cm.sum()), stats.ACCURACY_CI_METHOD, 0.05),
        "recall": {c: stats.rate_ci(int(cm[i, i]), int(cm[i].sum()), stats.RATE_CI_METHOD, 0.05)
                   for i, c in enumerate(CLASSES)},
        "binary_views": stats.binary_views(cm),
        "auc": {"per_class": stats.per_class_auc(y, p), "macro": stats.macro_auc(y, p),
                "micro": {"auc": micro[0], "lo": micro[1], "hi": micro[2],
                          "note": "DeLong CI on the flattened one-vs-rest problem (pairs treated as independent)"}},
    }


def _patients(df: pd.DataFrame) -> tuple[dict[str, tuple[str, np.ndarray]], list[str]]:
    """patient_id -> (true diagnosis, probs (n, 4) ordered by side, index); and excluded ids."""
    out, excluded = {}, []
    for pid, g in df.sort_values(KEY).groupby("patient_id", sort=True):
        tumour = sorted(set(g["true"]) - {"no_tumour"})
        if not tumour:
            excluded.append(str(pid))
            continue
        if len(tumour) > 1:
            raise InputError(f"tumour slices carry several classes ({', '.join(tumour)})", patient=str(pid),
                             fix="give each tumour its own patient_id (e.g. P007_L, P007_R)")
        out[str(pid)] = (tumour[0], g.loc[:, list(PROB_COLUMNS)].to_numpy(np.float64))
    return out, excluded


def _patient_summary(truth: dict[str, str], called: dict[str, str]) -> dict:
    """Table 5 and benign-vs-malignant patient metrics from true and called diagnoses."""
    col = {c: i for i, c in enumerate(CLASSES)} | {NO_TUMOUR_FOUND: 0}
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    for pid, t in truth.items():
        cm[CLASSES.index(t), col[called[pid]]] += 1
    bvm = stats.binary_view(cm, ("malignant",), ("pleomorphic_adenoma", "warthin"), labels=("malignant", "benign"))
    table5 = {c: {"patients": int(cm[i].sum()), "correct": int(cm[i, i])}
              for i, c in enumerate(CLASSES) if c != "no_tumour"}
    table5["benign"] = {"patients": bvm["counts"]["negative_total"], "correct": bvm["counts"]["negative_correct"]}
    table5 = {k: table5[k] for k in ("pleomorphic_adenoma", "warthin", "benign", "malignant")}
    return {"confusion": cm[1:].tolist(), "confusion_rows": list(CLASSES[1:]),
            "confusion_columns": [NO_TUMOUR_FOUND, *CLASSES[1:]], "table5": table5,
            "accuracy": stats.rate_ci(int(np.trace(cm)), int(cm.sum()), stats.ACCURACY_CI_METHOD, 0.05),
            "benign_vs_malignant": bvm,
            "misdiagnosed": sorted(pid for pid, t in truth.items() if called[pid] != t)}


def choose_soft_threshold(val: pd.DataFrame) -> tuple[float, str]:
    """Soft-vote threshold from validation patients: maximise benign-vs-malignant Youden's J
    (sensitivity + specificity - 1, positive = malignant), then exact-diagnosis accuracy, then
    closeness to 0.5; candidates are midpoints between consecutive patient mean malignant
    probabilities. Returns (threshold, source); (0.5, reason) when val lacks either group."""
    from mrparotid.inference.decide import soft_vote
    pats, _ = _patients(val)
    truth = {pid: t for pid, (t, _) in pats.items()}
    if not any(t == "malignant" for t in truth.values()) or all(t == "malignant" for t in truth.values()):
        return 0.5, "default 0.5 (validation set lacks malignant or benign patients)"
    scores = np.unique([p[:, CLASSES.index("malignant")].mean() for _, p in pats.values()])
    cands = np.unique(np.clip(np.r_[scores[0] / 2, (scores[:-1] + scores[1:]) / 2, (scores[-1] + 1) / 2], 0, 1))
    best = None
    for th in cands:
        s = _patient_summary(truth, {pid: soft_vote(p, th) for pid, (_, p) in pats.items()})
        b = s["benign_vs_malignant"]
        key = (b["sensitivity"]["estimate"] + b["specificity"]["estimate"] - 1,
               s["accuracy"]["estimate"], -abs(th - 0.5))
        if best is None or key > best[0]:
            best = (key, float(th))
    return best[1], f"chosen on {len(pats)} validation patients: max Youden J, then accuracy"


def patient_metrics(df: pd.DataFrame, *, val_preds: pd.DataFrame | None = None,
                    malignant_min_slices: int = 2) -> tuple[dict, pd.DataFrame]:
    """Patient-level metrics (Table 5; rule and soft vote) and a per-patient table."""
    from mrparotid.inference.decide import decide_patient, soft_vote
    pats, excluded = _patients(df)
    threshold, source = (choose_soft_threshold(val_preds) if val_preds is not None
                         else (0.5, "default 0.5 (no validation predictions given)"))
    rows, truth, rule, soft = [], {}, {}, {}
    for pid, (t, p) in pats.items():
        d = decide_patient(p, malignant_min_slices=malignant_min_slices)
        truth[pid], rule[pid], soft[pid] = t, d.diagnosis, soft_vote(p, threshold)
        rows.append({"patient_id": pid, "true": t, "n_slices": len(p),
                     **{f"n_pred_{c}": d.counts[c] for c in CLASSES},
                     "rule_diagnosis": d.diagnosis, "rule_correct": d.diagnosis == t,
                     "rule_branch": d.trace.get("branch", ""),
                     "mean_p_malignant": float(p[:, CLASSES.index("malignant")].mean()),
                     "soft_diagnosis": soft[pid], "soft_correct": soft[pid] == t})
    table = pd.DataFrame(rows, columns=["patient_id", "true", "n_slices", *[f"n_pred_{c}" for c in CLASSES],
                                        "rule_diagnosis", "rule_correct", "rule_branch",
                                        "mean_p_malignant", "soft_diagnosis", "soft_correct"])
    rule_s, soft_s = _patient_summary(truth, rule), _patient_summary(truth, soft)
    by_id = table.set_index("patient_id")
    for s, col in ((rule_s, "rule_diagnosis"), (soft_s, "soft_diagnosis")):
        s["misdiagnosed"] = [{"patient_id": pid, "true": truth[pid], "diagnosis": str(by_id.at[pid, col]),
                              "counts": {c: int(by_id.at[pid, f"n_pred_{c}"]) for c in CLASSES}}
                             for pid in s["misdiagnosed"]]
    return ({"n_patients": len(pats), "excluded_no_tumour_only": excluded,
             "malignant_min_slices": int(malignant_min_slices), "rule": rule_s,
             "soft_vote": {"threshold": threshold, "threshold_source": source, **soft_s}}, table)


#: Metrics summarised across folds: name -> path into the metrics dict.
FOLD_KEYS: dict[str, tuple[str, ...]] = {
    "slice_accuracy": ("slice", "accuracy", "estimate"),
    "slice_micro_auc": ("slice", "auc", "micro", "auc"),
    "slice_macro_auc": ("slice", "auc", "macro"),
    **{f"slice_bvm_{m}": ("slice", "binary_views", "benign_vs_malignant", m, "estimate")
       for m in ("accuracy", "sensitivity", "specificity")},
    "slice_pa_vs_warthin_accuracy": ("slice", "binary_views", "pa_vs_warthin", "accuracy", "estimate"),
    "patient_accuracy": ("patient", "rule", "accuracy", "estimate"),
    **{f"patient_bvm_{m}": ("patient", "rule", "benign_vs_malignant", m, "estimate")
       for m in ("accuracy", "sensitivity", "specificity")},
    "patient_soft_vote_accuracy": ("patient", "soft_vote", "accuracy", "estimate"),
}


def summarise_folds(fold_metrics: list[dict]) -> dict:
    """Mean and SD (ddof=1) of key metrics over cross-validation folds.

    Parameters
    ----------
    fold_metrics : list of dict
        :func:`evaluate_predictions` results, one per fold.

    Returns
    -------
    dict
        name (see :data:`FOLD_KEYS`) -> ``{mean, sd, n, values}``; folds where a metric is
        missing or undefined (nan) are left out of it; ``sd`` is nan with fewer than 2 values.
    """
    out = {}
    for name, path in FOLD_KEYS.items():
        vals = []
        for fm in fold_metrics:
            v = fm
            for key in path:
                v = v.get(key) if isinstance(v, dict) else None
            vals.append(float(v) if v is not None else math.nan)
        arr = np.array([v for v in vals if math.isfinite(v)])
        out[name] = {"mean": float(arr.mean()) if arr.size else math.nan,
                     "sd": float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
                     "n": int(arr.size), "values": vals}
    return out
