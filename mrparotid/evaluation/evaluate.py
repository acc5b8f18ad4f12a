"""``evaluate``: a predictions table → metrics, figures and a Markdown report in one folder; the
channel-ablation comparison (the paper's Table 3)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES
from mrparotid.errors import InputError
from mrparotid.evaluation import stats
from mrparotid.evaluation.answers import answer_section
from mrparotid.evaluation.bootstrap import (BOOTSTRAP_METHOD, accuracy, bootstrap_accuracy, bootstrap_micro_auc,
                                            bootstrap_paired_difference, micro_auc)
from mrparotid.evaluation.centres import per_centre_metrics
from mrparotid.evaluation.metrics import check_scorable, label_arrays, patient_metrics, slice_metrics
from mrparotid.evaluation.plots import plot_ablation, plot_confusion, plot_roc
from mrparotid.evaluation.predictions import KEY, as_predictions
from mrparotid.evaluation.report import ablation_markdown, evaluation_markdown
from mrparotid.io.atomic import write_json, write_text


def _row(metric: str, view: str, positive: str, r: dict, independent: dict, estimate: str) -> dict:
    """One ``slice_metrics.csv`` row: primary (patient bootstrap) CI, then the independent-slices one."""
    return {"metric": metric, "view": view, "positive": positive, "k": r.get("k"), "n": r.get("n"),
            "estimate": r[estimate], "lo": r["lo"], "hi": r["hi"], "method": r["method"],
            "indep_lo": independent["lo"], "indep_hi": independent["hi"],
            "indep_method": independent.get("method", "delong") + " (" + independent["note"] + ")"}


def _slice_rows(sm: dict) -> list[dict]:
    rates = [("accuracy", "4-class", "", sm["accuracy"])]
    rates += [("recall", c, c, r) for c, r in sm["recall"].items()]
    rates += [(m, name, v["positive"], v[m]) for name, v in sm["binary_views"].items()
              for m in ("accuracy", "sensitivity", "specificity")]
    rows = [_row(m, view, pos, r, r["independent"], "estimate") for m, view, pos, r in rates]
    rows += [_row("auc", f"{c}_vs_rest", c, a, a["delong"], "auc") for c, a in sm["auc"]["per_class"].items()]
    rows.append(_row("auc", "micro", "", sm["auc"]["micro"], sm["auc"]["micro"]["delong"], "auc"))
    rows.append({"metric": "auc", "view": "macro", "positive": "", "estimate": sm["auc"]["macro"]})
    return rows


def evaluate_predictions(preds: pd.DataFrame | str | Path, out_dir: str | Path, *,
                         val_preds: pd.DataFrame | str | Path | None = None, malignant_min_slices: int = 2,
                         synthetic: bool = False, title: str = "", val_source: str = "",
                         decision=None, decision_cfg: dict | None = None,
                         decision_source: str = "") -> dict:
    """Evaluate slice predictions at slice and patient level and write a report.

    Parameters
    ----------
    preds : DataFrame or path
        Test predictions, one slice a row (module docstring).
    out_dir : path
        Receives ``metrics.json``, ``confusion.csv``, ``slice_metrics.csv``, ``patients.csv``,
        ``confusion.png``, ``roc.png``, ``report.md``.
    val_preds : DataFrame or path, optional
        Validation predictions, used only when no ``decision`` record is given: one is then
        fitted here on them (:func:`mrparotid.decision.fit.fit_decision`, ``decision_cfg``).
        Without either, the answer refers everyone and the soft vote uses 0.5, and the report
        says so.
    val_source : str
        Where ``val_preds`` come from, as the report names it (default: its file name).
    malignant_min_slices : int
        Passed to :func:`mrparotid.decision.rule.decide_patient`.
    synthetic : bool
        Mark report and figures as synthetic data (no clinical claim); also set when the
        predictions file starts with ``# SYNTHETIC``.
    decision : DecisionRecord, optional
        The checkpoint's decision record (``decision_source`` says where it came from);
        ``metrics["answer"]`` scores it (:func:`mrparotid.evaluation.answers.answer_section`).

    Returns
    -------
    dict
        ``{"synthetic", "title", "ci_method", "slice": {...}, "patient": {...}, "files": {...}}``;
        slice: confusion (4x4, rows true), accuracy, per-class recall, Table-4 ``binary_views``,
        per-class / micro / macro AUC; ``warnings`` (classes with no slice); patient: ``rule`` and ``soft_vote`` each with ``table5``,
        exact-diagnosis ``accuracy``, ``benign_vs_malignant`` and ``misdiagnosed``. Rates are
        ``{k, n, estimate, lo, hi, method}``; slice-level CIs are patient-clustered bootstraps
        with the independent-slices interval beside them. A patient's true diagnosis is the class of its tumour
        slices; patients with only no-tumour slices are listed in ``excluded_no_tumour_only``.
        ``per_centre`` (only when the predictions have a ``centre`` column naming centres): centre
        → the same slice, patient and answer figures on that centre's rows alone
        (:mod:`mrparotid.evaluation.centres`).

    Raises
    ------
    InputError
        No tumour slice at all (:func:`~mrparotid.evaluation.metrics.check_scorable`).
    """
    df = as_predictions(preds)
    warnings = check_scorable(df, preds if isinstance(preds, (str, Path)) else "predictions")
    synthetic = bool(synthetic or df.attrs.get("synthetic"))
    val = None if val_preds is None else as_predictions(val_preds)
    val_source = val_source or (Path(val_preds).name if isinstance(val_preds, (str, Path)) else "validation predictions")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sm = slice_metrics(df)
    if decision is None and val is not None:
        from mrparotid.decision.fit import fit_decision
        from mrparotid.evaluation.metrics import patient_slices

        decision = fit_decision(patient_slices(val)[0], decision_cfg, source=f"fitted here on {val_source}",
                                warn=False)
        decision_source = decision.source
    if isinstance(decision, Mapping):       # cross-validation: each fold's record for its own patients
        soft = ({pid: r.soft_threshold for pid, r in decision.items()},
                f"each fold's own, chosen like the answer's rule-out edge ({decision_source}); median shown")
    else:
        soft = ((decision.soft_threshold, f"chosen like the answer's rule-out edge on {decision.n_val_malignant} "
                 f"malignant validation patients ({decision_source})") if decision is not None else (None, ""))
    pm, table = patient_metrics(df, soft_threshold=soft[0], soft_source=soft[1],
                                malignant_min_slices=malignant_min_slices)
    y, _, p = label_arrays(df)
    files = {"metrics": "metrics.json", "confusion_csv": "confusion.csv", "slice_metrics": "slice_metrics.csv",
             "patients": "patients.csv", "confusion_png": "confusion.png", "roc_png": "roc.png",
             "report": "report.md"}
    metrics = {"synthetic": synthetic, "title": title, "ci_method": stats.METHOD_NAME,
               "bootstrap_method": BOOTSTRAP_METHOD, "warnings": warnings,
               "unlabelled_rows": int(df.attrs.get("unlabelled_rows", 0)),
               "slice": sm, "patient": pm, "files": files}
    metrics["answer"] = answer_section(df, out, decision, source=decision_source or "none",
                                       malignant_min_slices=malignant_min_slices, synthetic=synthetic,
                                       title=title)
    files.update(metrics["answer"]["files"])
    per_centre = per_centre_metrics(df, records=decision, soft_threshold=soft[0], soft_source=soft[1],
                                    malignant_min_slices=malignant_min_slices)
    if per_centre is not None:      # the predictions name centres: each centre's figures too
        metrics["per_centre"] = per_centre
    write_text(out / files["confusion_csv"], pd.DataFrame(
        sm["confusion"], index=pd.Index(CLASSES, name="true\\pred"), columns=list(CLASSES)).to_csv())
    rows = pd.DataFrame(_slice_rows(sm))
    rows[["k", "n"]] = rows[["k", "n"]].astype("Int64")
    write_text(out / files["slice_metrics"], rows.to_csv(index=False))
    write_text(out / files["patients"], table.to_csv(index=False))
    tag = f" — {title}" if title else ""
    plot_confusion(np.asarray(sm["confusion"]), out / files["confusion_png"],
                   title=f"Slice confusion matrix{tag}", synthetic=synthetic)
    plot_roc(y, p, out / files["roc_png"], title=f"Slice ROC (one-vs-rest){tag}", synthetic=synthetic)
    write_text(out / files["report"], evaluation_markdown(metrics, synthetic, title))
    write_json(out / files["metrics"], metrics, indent=1)
    return metrics


def _ablation_row(f: pd.DataFrame, ref: pd.DataFrame, is_reference: bool) -> dict:
    """Accuracy and micro-AUC of one model with clustered and independent-slices CIs, and its
    paired differences from the reference (same slices, same order)."""
    ids = f["patient_id"].astype(str).to_numpy()
    y, yhat, p = label_arrays(f)
    _, ref_hat, ref_p = label_arrays(ref)
    acc, acc_w = bootstrap_accuracy(ids, y, yhat), stats.proportion_ci(int((y == yhat).sum()), len(y))
    auc, auc_d = bootstrap_micro_auc(ids, y, p), stats.micro_auc_ci(y, p)
    row = {"n_slices": len(y), "n_patients": acc["n_patients"],
           "accuracy": acc["estimate"], "acc_lo": acc["lo"], "acc_hi": acc["hi"],
           "acc_wilson_lo": acc_w[1], "acc_wilson_hi": acc_w[2],
           "micro_auc": auc["estimate"], "auc_lo": auc["lo"], "auc_hi": auc["hi"],
           "auc_delong_lo": auc_d[1], "auc_delong_hi": auc_d[2]}
    diffs = {"auc_diff": (micro_auc, (y, p), (y, ref_p)), "acc_diff": (accuracy, (y, yhat), (y, ref_hat))}
    for key, (stat, a, b) in diffs.items():
        d = (None if is_reference else bootstrap_paired_difference(ids, stat, a, b))
        row.update({key: d["estimate"] if d else math.nan, f"{key}_lo": d["lo"] if d else math.nan,
                    f"{key}_hi": d["hi"] if d else math.nan})
        row["p_vs_reference" if key == "auc_diff" else "acc_p"] = d["p_value"] if d else math.nan
    row["p_delong"] = math.nan if is_reference else stats.compare_micro_auc(y, p, ref_p)["p"]
    from mrparotid.evaluation.gains import channel_gains

    row.update(channel_gains(f, ref))      # lesion slices and PA vs Warthin, paired against the reference
    return row


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
    synthetic : bool
        Mark the outputs synthetic (also when any predictions file says so).

    Returns
    -------
    DataFrame
        One row a model: name, channels, n_slices, n_patients; accuracy with acc_lo, acc_hi
        (patient-clustered bootstrap, primary) and acc_wilson_lo, acc_wilson_hi (assume
        independent slices); micro_auc with auc_lo, auc_hi (bootstrap) and auc_delong_lo,
        auc_delong_hi; against the reference (nan for the reference itself): auc_diff,
        auc_diff_lo, auc_diff_hi, p_vs_reference (paired patient bootstrap of the micro-AUC
        difference), acc_diff, acc_diff_lo, acc_diff_hi, acc_p (same for accuracy) and
        p_delong (paired DeLong, assumes independent slices). Bootstrap: B = 2000, seed 0,
        patients from ``patient_id``.
    """
    names = [r["name"] for r in results]
    if reference_name not in names:
        raise InputError(f"reference model {reference_name!r} not among {names}",
                         fix="pass reference_name equal to one result's name")
    checked = {r["name"]: as_predictions(r["preds"]) for r in results}
    synthetic = bool(synthetic or any(f.attrs.get("synthetic") for f in checked.values()))
    frames = {name: f.set_index(KEY).sort_index() for name, f in checked.items()}
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
        ch = r.get("channels", "")
        rows.append({"name": r["name"], "channels": ch if isinstance(ch, str) else ",".join(ch),
                     **_ablation_row(f.reset_index(), ref.reset_index(), r["name"] == reference_name),
                     "reference": r["name"] == reference_name})
    table = pd.DataFrame(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "ablation.csv", table.to_csv(index=False))
    md = ablation_markdown(rows, reference_name, synthetic)
    write_text(out / "ablation.md", md)
    plot_ablation(rows, out / "ablation.png", synthetic=synthetic)
    return table


def add_error_pictures(out_dir: str | Path, metrics: dict, *, checkpoint: str | Path | None = None,
                       cfg: dict | None = None, ids: Mapping[str, str] | None = None
                       ) -> dict[str, Path] | None:
    """Write a montage per patient the rule misdiagnosed beside ``report.md`` and append a section
    listing them to it (:mod:`mrparotid.report.misdiagnosed`). Without ``checkpoint`` (an
    evaluation of a predictions CSV: no crops) the section says montages need ``--checkpoint``.
    ``ids``: the manifest id of each (pseudonymised) id in ``metrics``. Returns patient →
    montage path, or None without a checkpoint."""
    from mrparotid.io.atomic import write_text
    from mrparotid.report.misdiagnosed import error_montages, montage_section

    wrong = metrics["patient"]["rule"]["misdiagnosed"]
    written = (None if checkpoint is None else
               error_montages(checkpoint, cfg, wrong, out_dir, synthetic=bool(metrics.get("synthetic")),
                              ids=ids))
    report = Path(out_dir) / metrics["files"]["report"]
    write_text(report, report.read_text(encoding="utf-8").rstrip("\n") + "\n"
               + montage_section(wrong, written))
    return written
