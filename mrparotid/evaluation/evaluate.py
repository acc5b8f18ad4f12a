"""``evaluate``: a predictions table → metrics, figures and a Markdown report in one folder; the
channel-ablation comparison (the paper's Table 3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES
from mrparotid.errors import InputError
from mrparotid.evaluation import stats
from mrparotid.evaluation.metrics import label_arrays, patient_metrics, slice_metrics
from mrparotid.evaluation.plots import plot_ablation, plot_confusion, plot_roc
from mrparotid.evaluation.predictions import KEY, as_predictions
from mrparotid.evaluation.report import ablation_markdown, evaluation_markdown



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
    y, _, p = label_arrays(df)
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
        y, yhat, p = label_arrays(f.reset_index())
        acc = stats.proportion_ci(int((y == yhat).sum()), len(y))
        auc = stats.micro_auc_ci(y, p)
        pval = (math.nan if r["name"] == reference_name else
                stats.compare_micro_auc(y, p, label_arrays(ref.reset_index())[2])["p"])
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
