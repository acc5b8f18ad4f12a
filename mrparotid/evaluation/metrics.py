"""Slice- and patient-level metrics of a validated predictions table (Tables 4 and 5 of the paper),
with confidence intervals from :mod:`mrparotid.evaluation.stats`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES, NO_TUMOUR_FOUND
from mrparotid.errors import InputError
from mrparotid.evaluation import bootstrap, stats
from mrparotid.evaluation.predictions import KEY, PROB_COLUMNS



def label_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true ints (n,), pred ints (n,), probs (n, 4))."""
    return (df["true"].map(CLASSES.index).to_numpy(np.int64), df["pred"].map(CLASSES.index).to_numpy(np.int64),
            df.loc[:, list(PROB_COLUMNS)].to_numpy(np.float64))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Counts, shape (C, C): rows = true class index, columns = predicted class index."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


#: Label of every interval that treats slices as independent (shown beside the primary one).
INDEPENDENT_NOTE = "assumes independent slices"


def _clustered_rate(ids: np.ndarray, correct: np.ndarray, method: str) -> dict:
    """Slice-level rate ``{k, n, estimate, lo, hi, method, independent}``: the patient-clustered
    bootstrap CI (primary) and the binomial ``method`` CI that assumes independent slices."""
    correct = np.asarray(correct, dtype=bool)
    rate = stats.rate_ci(int(correct.sum()), int(correct.size), method, 0.05)
    indep = {"lo": rate["lo"], "hi": rate["hi"], "method": method, "note": INDEPENDENT_NOTE}
    if correct.size:
        b = bootstrap.bootstrap_accuracy(ids, np.ones(correct.size, bool), correct)
        rate.update(lo=b["lo"], hi=b["hi"], n_patients=b["n_patients"])
    rate.update(method="patient_bootstrap", independent=indep)
    return rate


def _clustered_views(ids: np.ndarray, y: np.ndarray, yhat: np.ndarray, cm: np.ndarray) -> dict:
    """:func:`stats.binary_views` with every rate from :func:`_clustered_rate`."""
    views = stats.binary_views(cm)
    for name, ((_, pos), (_, neg)) in stats.BINARY_VIEWS.items():
        pos_i, neg_i = [CLASSES.index(c) for c in pos], [CLASSES.index(c) for c in neg]
        in_pos, in_neg = np.isin(y, pos_i), np.isin(y, neg_i)
        hit = (in_pos & np.isin(yhat, pos_i)) | (in_neg & np.isin(yhat, neg_i))
        either = in_pos | in_neg
        views[name].update(
            accuracy=_clustered_rate(ids[either], hit[either], stats.ACCURACY_CI_METHOD),
            sensitivity=_clustered_rate(ids[in_pos], hit[in_pos], stats.RATE_CI_METHOD),
            specificity=_clustered_rate(ids[in_neg], hit[in_neg], stats.RATE_CI_METHOD))
    return views


def _auc_record(auc: float, boot: dict | None, delong: tuple[float, float], na: str = "") -> dict:
    lo, hi = (boot["lo"], boot["hi"]) if boot else (math.nan, math.nan)
    return {"auc": auc, "lo": lo, "hi": hi, "method": "patient_bootstrap", "na_reason": na,
            "delong": {"lo": delong[0], "hi": delong[1], "note": INDEPENDENT_NOTE}}


def _clustered_aucs(ids: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    """Per-class and micro AUCs with patient-clustered bootstrap CIs and DeLong CIs beside them."""
    per = {}
    for j, (c, d) in enumerate(stats.per_class_auc(y, p).items()):
        na = f"no {c} slices" if d["n_pos"] == 0 else (f"only {c} slices" if d["n_neg"] == 0 else "")
        boot = None if na else bootstrap.patient_bootstrap_ci(ids, bootstrap.rank_auc, y == j, p[:, j])
        per[c] = {**_auc_record(d["auc"], boot, (d["lo"], d["hi"]), na), "n_pos": d["n_pos"], "n_neg": d["n_neg"]}
    micro = stats.micro_auc_ci(y, p)
    return {"per_class": per, "macro": stats.macro_auc(y, p),
            "micro": _auc_record(micro[0], bootstrap.bootstrap_micro_auc(ids, y, p), micro[1:]),
            "bootstrap_method": bootstrap.BOOTSTRAP_METHOD}


def check_scorable(df: pd.DataFrame, source: str = "predictions") -> list[str]:
    """Refuse a table with no tumour slice; return one warning per class with no slice.

    Raises
    ------
    InputError
        Every labelled slice is ``no_tumour`` (e.g. the tumour-side slices were dropped).
    """
    present = set(df["true"])
    if present <= {"no_tumour"}:
        raise InputError(f"all {len(df)} labelled slices are no_tumour: nothing to score (the tumour "
                         "slices are missing)", path=source,
                         fix="score predictions that include the tumour slices (true = the tumour class)")
    return [f"no {c} slices: its AUC is n/a and accuracy covers the other classes only"
            for c in CLASSES if c not in present]


def slice_metrics(df: pd.DataFrame) -> dict:
    """Slice-level metrics of a validated predictions table (see :func:`evaluate_predictions`).

    Every slice-level CI is a patient-clustered bootstrap (:mod:`mrparotid.evaluation.bootstrap`,
    patients from ``patient_id``); the Wilson / DeLong intervals that assume independent slices
    are kept beside it (``independent`` / ``delong``).
    """
    y, yhat, p = label_arrays(df)
    ids = df["patient_id"].astype(str).to_numpy()
    cm = confusion_matrix(y, yhat)
    return {
        "n_slices": int(len(df)), "n_patients": int(len(set(ids))), "confusion": cm.tolist(),
        "accuracy": _clustered_rate(ids, y == yhat, stats.ACCURACY_CI_METHOD),
        "recall": {c: _clustered_rate(ids[y == i], yhat[y == i] == i, stats.RATE_CI_METHOD)
                   for i, c in enumerate(CLASSES)},
        "binary_views": _clustered_views(ids, y, yhat, cm),
        "auc": _clustered_aucs(ids, y, p),
    }


def _patients(df: pd.DataFrame) -> tuple[dict[str, tuple[str, np.ndarray, np.ndarray]], list[str]]:
    """patient_id -> (true diagnosis, probs (n, 4) ordered by side, index, tumour-slice mask (n,));
    and the ids of patients without a tumour slice."""
    out, excluded = {}, []
    for pid, g in df.sort_values(KEY).groupby("patient_id", sort=True):
        tumour = sorted(set(g["true"]) - {"no_tumour"})
        if not tumour:
            excluded.append(str(pid))
            continue
        if len(tumour) > 1:
            raise InputError(f"tumour slices carry several classes ({', '.join(tumour)})", patient=str(pid),
                             fix="give each tumour its own patient_id (e.g. P007_L, P007_R)")
        out[str(pid)] = (tumour[0], g.loc[:, list(PROB_COLUMNS)].to_numpy(np.float64),
                         (g["true"] != "no_tumour").to_numpy())
    return out, excluded


def patient_slices(df: pd.DataFrame) -> tuple[dict[str, tuple[str, np.ndarray, np.ndarray]], list[str]]:
    """patient_id -> (true diagnosis, probs (n, 4), tumour-slice mask (n,)) and the ids of patients
    without a tumour slice: the patient grouping every patient-level score uses."""
    return _patients(df)


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


def patient_metrics(df: pd.DataFrame, *, soft_threshold: float | dict | None = None, soft_source: str = "",
                    malignant_min_slices: int = 2) -> tuple[dict, pd.DataFrame]:
    """Patient-level metrics (Table 5; rule and soft vote) and a per-patient table.

    The soft vote averages the malignant probability over each patient's tumour slices
    (``true != no_tumour``); its cut ``soft_threshold`` is the decision record's (chosen on
    validation like the answer's rule-out edge, :func:`mrparotid.decision.fit.soft_cut`, and named
    by ``soft_source``), else 0.5 and the report says it was not chosen on validation.
    """
    from mrparotid.decision.rule import decide_patient, soft_vote, tumour_mean_malignant
    pats, excluded = _patients(df)
    if isinstance(soft_threshold, dict):     # one cut per patient (each CV fold's own)
        cuts, source = {str(k): float(v) for k, v in soft_threshold.items()}, soft_source
        threshold = float(np.median(list(cuts.values()))) if cuts else 0.5
    else:
        threshold, source = ((float(soft_threshold), soft_source) if soft_threshold is not None
                             else (0.5, "default 0.5, NOT chosen on validation (no validation predictions given)"))
        cuts = {}
    rows, truth, rule, soft = [], {}, {}, {}
    for pid, (t, p, m) in pats.items():
        d = decide_patient(p, malignant_min_slices=malignant_min_slices)
        truth[pid], rule[pid], soft[pid] = t, d.diagnosis, soft_vote(p, cuts.get(pid, threshold), m)
        rows.append({"patient_id": pid, "true": t, "n_slices": len(p),
                     **{f"n_pred_{c}": d.counts[c] for c in CLASSES},
                     "rule_diagnosis": d.diagnosis, "rule_correct": d.diagnosis == t,
                     "rule_branch": d.trace.get("branch", ""),
                     "n_tumour_slices": int(m.sum()), "mean_p_malignant": tumour_mean_malignant(p, m),
                     "soft_diagnosis": soft[pid], "soft_correct": soft[pid] == t})
    table = pd.DataFrame(rows, columns=["patient_id", "true", "n_slices", *[f"n_pred_{c}" for c in CLASSES],
                                        "rule_diagnosis", "rule_correct", "rule_branch",
                                        "n_tumour_slices", "mean_p_malignant", "soft_diagnosis", "soft_correct"])
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
