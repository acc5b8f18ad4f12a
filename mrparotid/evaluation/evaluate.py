"""Evaluation of slice predictions: Table 3/4/5-style metrics with CIs, figures and a report.

The predictions CSV has one slice a row::

    patient_id,side,index,true,pred,p_no_tumour,p_pleomorphic_adenoma,p_warthin,p_malignant

``true``/``pred`` are class names (:data:`~mrparotid.constants.CLASSES`), ``side`` is ``L`` or
``R``, ``index`` the slice index, the ``p_*`` columns class probabilities in [0, 1] whose
largest entry is ``pred``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mrparotid.evaluation import stats
from mrparotid.constants import CLASSES, NO_TUMOUR_FOUND
from mrparotid.errors import InputError
from mrparotid.evaluation.plots import plot_ablation, plot_confusion, plot_roc
from mrparotid.evaluation.report import ablation_markdown, evaluation_markdown

PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{c}" for c in CLASSES)
COLUMNS: tuple[str, ...] = ("patient_id", "side", "index", "true", "pred", *PROB_COLUMNS)
KEY: list[str] = ["patient_id", "side", "index"]
_FIX = "write it with mrparotid.evaluation.evaluate.write_predictions (header: " + ",".join(COLUMNS) + ")"


# --------------------------------------------------------------------------------------------
# Predictions CSV
# --------------------------------------------------------------------------------------------

def _check(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate and normalise a predictions table; InputError names the file, line and fix."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path=source, fix=_FIX)
    if df.empty:
        raise InputError("no prediction rows", path=source, fix="predict at least one slice")
    df = df.loc[:, list(COLUMNS)].copy()
    unlabelled = df["true"].isna() | (df["true"].astype(str).str.strip() == "")
    n_unlabelled = int(unlabelled.sum()) + int(df.attrs.get("unlabelled_rows", 0))  # re-checks keep the count
    lines = np.flatnonzero(~unlabelled.to_numpy()) + 2   # file line of each kept row (header = 1)
    df = df.loc[~unlabelled]          # slices with no known class (e.g. no tumour mask) cannot be scored
    if df.empty:
        raise InputError(f"none of the {n_unlabelled} rows has a true class", path=source,
                         fix="fill the true column (diagnose --csv can only when a tumour mask is given)")

    def bad(i: int, what: str, fix: str):
        raise InputError(f"line {lines[i]}: {what}", path=source, fix=fix)

    df["patient_id"] = df["patient_id"].fillna("").astype(str).str.strip()
    df["side"] = df["side"].astype(str).str.strip().str.upper()
    for col in ("true", "pred"):
        df[col] = df[col].astype(str).str.strip()
        wrong = ~df[col].isin(CLASSES)
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            bad(i, f"{col} {df[col].iloc[i]!r} is not a class", "use one of " + ", ".join(CLASSES))
    wrong = ~df["side"].isin(["L", "R"]) | (df["patient_id"] == "")
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        bad(i, f"patient_id {df['patient_id'].iloc[i]!r} / side {df['side'].iloc[i]!r} invalid",
            "give a non-empty patient_id and side L or R")
    index = pd.to_numeric(df["index"], errors="coerce")
    wrong = index.isna() | (index != np.round(index))
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        bad(i, f"index {df['index'].iloc[i]!r} is not an integer", "write the slice index as an integer")
    df["index"] = index.astype(np.int64)
    probs = df.loc[:, list(PROB_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    wrong = ~(np.isfinite(probs) & (probs >= 0) & (probs <= 1)).all(axis=1)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        bad(i, f"probabilities {probs[i].tolist()} must be finite numbers in [0, 1]",
            "write softmax probabilities, not logits or blanks")
    for j, col in enumerate(PROB_COLUMNS):
        df[col] = probs[:, j]
    pred_idx = df["pred"].map(CLASSES.index).to_numpy()
    wrong = probs[np.arange(len(df)), pred_idx] < probs.max(axis=1)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        bad(i, f"pred {df['pred'].iloc[i]!r} is not the most probable class",
            "set pred to the argmax of the p_* columns")
    dup = df.duplicated(KEY)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        bad(i, "repeats patient_id/side/index {}/{}/{}".format(*df.loc[df.index[i], KEY]),
            "keep one row per slice")
    df = df.reset_index(drop=True)
    df.attrs["unlabelled_rows"] = n_unlabelled
    return df


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions CSV (see module docstring) into a DataFrame, one row a slice.

    Rows with an empty ``true`` (slices whose class is unknown) are left out; their number is in
    ``df.attrs["unlabelled_rows"]``.

    Raises
    ------
    InputError
        Unreadable file, missing column, unknown class name, bad side/index, non-finite or
        out-of-range probability, ``pred`` not the argmax, duplicate slice; the message names the
        file, the line and the fix.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"patient_id": str, "side": str, "true": str, "pred": str},
                         keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError("file not found", path=path, fix="check the path") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV ({str(exc).splitlines()[0]})", path=path, fix=_FIX) from None
    return _check(df, str(path))


def write_predictions(df_or_records: pd.DataFrame | list[dict], path: str | Path) -> Path:
    """Validate predictions (DataFrame or list of row dicts) and write them as CSV; returns ``path``."""
    df = df_or_records if isinstance(df_or_records, pd.DataFrame) else pd.DataFrame(list(df_or_records))
    df = _check(df, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.sort_values(KEY).to_csv(path, index=False, float_format="%.6g")
    return path


def as_predictions(preds: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A validated predictions table from a path (read) or a DataFrame (checked)."""
    return read_predictions(preds) if isinstance(preds, (str, Path)) else _check(preds, "<DataFrame>")


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

def _labels(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true ints (n,), pred ints (n,), probs (n, 4))."""
    return (df["true"].map(CLASSES.index).to_numpy(np.int64), df["pred"].map(CLASSES.index).to_numpy(np.int64),
            df.loc[:, list(PROB_COLUMNS)].to_numpy(np.float64))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Counts, shape (C, C): rows = true class index, columns = predicted class index."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def slice_metrics(df: pd.DataFrame) -> dict:
    """Slice-level metrics of a validated predictions table (see :func:`evaluate_predictions`)."""
    y, yhat, p = _labels(df)
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


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj


def _slice_rows(sm: dict) -> list[dict]:
    rows = [{"metric": "accuracy", "view": "4-class", "positive": "", **sm["accuracy"]}]
    rows += [{"metric": "recall", "view": c, "positive": c, **r} for c, r in sm["recall"].items()]
    for name, v in sm["binary_views"].items():
        rows += [{"metric": m, "view": name, "positive": v["positive"], **v[m]}
                 for m in ("accuracy", "sensitivity", "specificity")]
    for c, a in sm["auc"]["per_class"].items():
        rows.append({"metric": "auc", "view": f"{c}_vs_rest", "positive": c, "estimate": a["auc"],
                     "lo": a["lo"], "hi": a["hi"], "method": "delong"})
    m = sm["auc"]["micro"]
    rows.append({"metric": "auc", "view": "micro", "positive": "", "estimate": m["auc"], "lo": m["lo"],
                 "hi": m["hi"], "method": "delong_flattened"})
    rows.append({"metric": "auc", "view": "macro", "positive": "", "estimate": sm["auc"]["macro"]})
    return rows


def evaluate_predictions(preds: pd.DataFrame | str | Path, out_dir: str | Path, *,
                         val_preds: pd.DataFrame | str | Path | None = None, malignant_min_slices: int = 2,
                         synthetic: bool = False, title: str = "") -> dict:
    """Evaluate slice predictions at slice and patient level and write a report.

    Parameters
    ----------
    preds : DataFrame or path
        Test predictions, one slice a row (module docstring).
    out_dir : path
        Receives ``metrics.json``, ``confusion.csv``, ``slice_metrics.csv``, ``patients.csv``,
        ``confusion.png``, ``roc.png``, ``report.md``.
    val_preds : DataFrame or path, optional
        Validation predictions used only to choose the soft-vote threshold (else 0.5).
    malignant_min_slices : int
        Passed to :func:`mrparotid.inference.decide.decide_patient`.
    synthetic : bool
        Mark report and figures as synthetic data (no clinical claim).

    Returns
    -------
    dict
        ``{"synthetic", "title", "ci_method", "slice": {...}, "patient": {...}, "files": {...}}``;
        slice: confusion (4x4, rows true), accuracy, per-class recall, Table-4 ``binary_views``,
        per-class / micro / macro AUC; patient: ``rule`` and ``soft_vote`` each with ``table5``,
        exact-diagnosis ``accuracy``, ``benign_vs_malignant`` and ``misdiagnosed``. Rates are
        ``{k, n, estimate, lo, hi, method}``. A patient's true diagnosis is the class of its tumour
        slices; patients with only no-tumour slices are listed in ``excluded_no_tumour_only``.
    """
    df = as_predictions(preds)
    val = None if val_preds is None else as_predictions(val_preds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sm = slice_metrics(df)
    pm, table = patient_metrics(df, val_preds=val, malignant_min_slices=malignant_min_slices)
    y, _, p = _labels(df)
    files = {"metrics": "metrics.json", "confusion_csv": "confusion.csv", "slice_metrics": "slice_metrics.csv",
             "patients": "patients.csv", "confusion_png": "confusion.png", "roc_png": "roc.png",
             "report": "report.md"}
    metrics = {"synthetic": bool(synthetic), "title": title, "ci_method": stats.METHOD_NAME,
               "unlabelled_rows": int(df.attrs.get("unlabelled_rows", 0)),
               "slice": sm, "patient": pm, "files": files}
    pd.DataFrame(sm["confusion"], index=pd.Index(CLASSES, name="true\\pred"),
                 columns=list(CLASSES)).to_csv(out / files["confusion_csv"])
    rows = pd.DataFrame(_slice_rows(sm))
    rows[["k", "n"]] = rows[["k", "n"]].astype("Int64")
    rows.to_csv(out / files["slice_metrics"], index=False)
    table.to_csv(out / files["patients"], index=False)
    tag = f" — {title}" if title else ""
    plot_confusion(np.asarray(sm["confusion"]), out / files["confusion_png"],
                   title=f"Slice confusion matrix{tag}", synthetic=synthetic)
    plot_roc(y, p, out / files["roc_png"], title=f"Slice ROC (one-vs-rest){tag}", synthetic=synthetic)
    (out / files["report"]).write_text(evaluation_markdown(metrics, synthetic, title), encoding="utf-8")
    (out / files["metrics"]).write_text(json.dumps(_jsonable(metrics), indent=1), encoding="utf-8")
    return metrics


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


def ablation_table(results: list[dict], reference_name: str, out_dir: str | Path,
                   synthetic: bool = False) -> pd.DataFrame:
    """Table-3 comparison of channel combinations on the same test slices.

    Parameters
    ----------
    results : list of dict
        ``{"name", "channels", "preds"}`` per model; ``preds`` a predictions DataFrame or path.
        All must cover the same slices (matched on patient_id/side/index) with the same true classes.
    reference_name : str
        The model the others are tested against (the three-series model).
    out_dir : path
        Receives ``ablation.csv``, ``ablation.md``, ``ablation.png``.

    Returns
    -------
    DataFrame
        One row a model: name, channels, n_slices, accuracy, acc_lo, acc_hi (Wilson), micro_auc,
        auc_lo, auc_hi (DeLong, flattened one-vs-rest), p_vs_reference (paired DeLong on the
        flattened micro-AUC scores; nan for the reference).
    """
    names = [r["name"] for r in results]
    if reference_name not in names:
        raise InputError(f"reference model {reference_name!r} not among {names}",
                         fix="pass reference_name equal to one result's name")
    frames = {r["name"]: as_predictions(r["preds"]).set_index(KEY).sort_index() for r in results}
    ref = frames[reference_name]
    rows = []
    for r in results:
        f = frames[r["name"]]
        if not f.index.equals(ref.index):
            raise InputError(f"model {r['name']!r} predicts {len(f)} slices, reference {len(ref)}, "
                             "not the same patient_id/side/index set",
                             fix="predict every model on the same test slices")
        if not (f["true"] == ref["true"]).all():
            raise InputError(f"model {r['name']!r} gives different true classes than the reference",
                             fix="use one test manifest for all models")
        y, yhat, p = _labels(f.reset_index())
        acc = stats.proportion_ci(int((y == yhat).sum()), len(y))
        auc = stats.micro_auc_ci(y, p)
        pval = (math.nan if r["name"] == reference_name else
                stats.compare_micro_auc(y, p, _labels(ref.reset_index())[2])["p"])
        ch = r.get("channels", "")
        rows.append({"name": r["name"], "channels": ch if isinstance(ch, str) else ",".join(ch),
                     "n_slices": len(y), "accuracy": acc[0], "acc_lo": acc[1], "acc_hi": acc[2],
                     "micro_auc": auc[0], "auc_lo": auc[1], "auc_hi": auc[2], "p_vs_reference": pval,
                     "reference": r["name"] == reference_name})
    table = pd.DataFrame(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "ablation.csv", index=False)
    md = ablation_markdown(rows, reference_name, synthetic)
    (out / "ablation.md").write_text(md, encoding="utf-8")
    plot_ablation(rows, out / "ablation.png", synthetic=synthetic)
    return table
