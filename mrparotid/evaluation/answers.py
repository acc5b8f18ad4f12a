"""The answer a clinic acts on, scored on test predictions (``evaluate``): the decision record's
operating point, slice calibration before and after its temperature, the patient AUC of
p(malignant), and coverage, refer rate, accuracy, malignant sensitivity and specificity among the
answered patients beside the paper's rule, each with its CI.

The record comes from the checkpoint (chosen on its validation patients) or, for a predictions CSV
with validation predictions beside it, is fitted here on those; the test patients never choose
it. Without either, the answer refers every patient (fail closed) and the section says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mrparotid.decision.score import Records, answer_counts, answer_table, record_for
from mrparotid.decision.temperature import apply_temperature
from mrparotid.evaluation import stats
from mrparotid.evaluation.calibration import N_BINS, calibration_scores
from mrparotid.evaluation.metrics import label_arrays, patient_slices

#: Rates of the answer and their CI methods.
RATE_METHODS = {"coverage": stats.ACCURACY_CI_METHOD, "refer": stats.ACCURACY_CI_METHOD,
                "accuracy": stats.ACCURACY_CI_METHOD, "sensitivity": stats.RATE_CI_METHOD,
                "specificity": stats.RATE_CI_METHOD, "rule_accuracy": stats.ACCURACY_CI_METHOD,
                "rule_accuracy_answered": stats.ACCURACY_CI_METHOD, "rule_sensitivity": stats.RATE_CI_METHOD}


def with_cis(counts: dict) -> dict:
    """``answer_counts`` with each ``{k, n}`` as a rate with its 95 % CI (``stats.rate_ci``)."""
    return {key: (stats.rate_ci(v["k"], v["n"], RATE_METHODS[key]) if isinstance(v, dict) else v)
            for key, v in counts.items()}


def auc_p_malignant(table: pd.DataFrame) -> dict:
    """Patient-level AUC of p(malignant) (malignant vs benign) with its DeLong CI."""
    y, p = table["malignant"].to_numpy(bool), table["p_malignant"].to_numpy(float)
    keep = np.isfinite(p)
    y, p = y[keep], p[keep]
    if y.all() or not y.any():
        return {"auc": math.nan, "lo": math.nan, "hi": math.nan, "method": "DeLong",
                "na_reason": "needs malignant and benign patients"}
    auc, lo, hi = stats.delong_ci(y, p)
    return {"auc": auc, "lo": lo, "hi": hi, "method": "DeLong", "na_reason": "",
            "n_malignant": int(y.sum()), "n_benign": int((~y).sum())}


def score_answers(df: pd.DataFrame, records: Records, malignant_min_slices: int = 2) -> tuple[pd.DataFrame, dict]:
    """(per-patient answer table, rates with CIs) of a predictions table under ``records`` (one
    record, or one per patient)."""
    pats, _ = patient_slices(df)
    table = answer_table(pats, records, malignant_min_slices)
    return table, with_cis(answer_counts(table))


def answer_section(df: pd.DataFrame, out_dir: str | Path, records: Records, *,
                   source: str, malignant_min_slices: int = 2, synthetic: bool = False,
                   title: str = "", n_boot: int = 2000) -> dict:
    """Score the answer on ``df`` (test predictions, raw probabilities) and draw its figures
    (``reliability.png``, ``p_malignant.png``; ``patients_answers.csv``). ``source`` says where
    ``records`` came from (one record, or one per patient for pooled CV folds). Returns ``{decision, source, operating_point, slice: {ece, brier},
    patient: {n, auc, rates}, files, warnings}``."""
    from mrparotid.decision.fit import warnings_of
    from mrparotid.evaluation.calibration_report import plot_p_malignant, plot_reliability
    from mrparotid.io.atomic import write_text

    out = Path(out_dir)
    ids = df["patient_id"].astype(str).to_numpy()
    y, _, raw = label_arrays(df)
    pooled = isinstance(records, Mapping)
    record = None if pooled else records          # the one record, when there is one
    temps = np.array([(r.temperature if (r := record_for(records, pid)) else 1.0) for pid in ids])
    cal = np.empty_like(raw, dtype=np.float64)
    for t in np.unique(temps):                 # one per record (a CV fold), not one per slice
        cal[temps == t] = apply_temperature(raw[temps == t], float(t))
    t = float(np.median(temps)) if len(temps) else 1.0
    cal_scores = {"before": calibration_scores(ids, raw, y, n_boot), "after": calibration_scores(ids, cal, y, n_boot)}
    table, rates = score_answers(df, records, malignant_min_slices)
    files = {"reliability_png": "reliability.png", "p_malignant_png": "p_malignant.png",
             "patients_answers": "patients_answers.csv"}
    tag = f" — {title}" if title else ""
    plot_reliability({"before (T = 1)": (raw, y), f"after (T = {t:.2f})": (cal, y)}, out / files["reliability_png"],
                     n_bins=N_BINS, title=f"Reliability{tag}", synthetic=synthetic)
    plot_p_malignant(table, record.lo if record and record.validated else None,
                     record.hi if record and record.validated else None, out / files["p_malignant_png"],
                     title=f"p(malignant) per test patient{tag}", synthetic=synthetic)
    write_text(out / files["patients_answers"], table.to_csv(index=False, float_format="%.6g"))
    if pooled:
        warnings = sorted({w for r in records.values() for w in warnings_of(r)})
    else:
        warnings = warnings_of(record) if record else [
            "no decision record (no validation predictions): every answer is 'refer' (fail closed)"]
    op = ("each fold's own record answers that fold's test patients (temperatures: median "
          f"{t:.3f})" if pooled else record.operating_point() if record else "none: not validated")
    return {"decision": record.to_dict() if record else None, "source": source, "operating_point": op,
            "slice": {"ece": {k: v["ece"] for k, v in cal_scores.items()},
                      "brier": {k: v["brier"] for k, v in cal_scores.items()}, "n_bins": N_BINS},
            "patient": {"n": int(len(table)), "auc": auc_p_malignant(table), "rates": rates},
            "files": files, "warnings": warnings}


def _f(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def _rate(r: dict) -> str:
    return (f"{_f(r.get('estimate'))} [{_f(r.get('lo'))}, {_f(r.get('hi'))}] ({r.get('k')}/{r.get('n')})"
            if r.get("n") else "n/a (none)")


def _ci(r: dict) -> str:
    return f"{_f(r.get('estimate'))} [{_f(r.get('lo'))}, {_f(r.get('hi'))}]"


ROWS = (("coverage (answered)", "coverage"), ("refer rate", "refer"), ("accuracy among the answered", "accuracy"),
        ("malignant sensitivity among the answered", "sensitivity"),
        ("specificity among the answered", "specificity"))


def answer_markdown(section: dict | None) -> list[str]:
    """The report's "The answer" section (no lines for None)."""
    if not section:
        return []
    d, r, auc, sl = section.get("decision") or {}, section["patient"]["rates"], section["patient"]["auc"], section["slice"]
    t = d.get("temperature", 1.0)
    lines = ["", "## The answer (operating point chosen on validation)", "",
             f"Operating point: {section['operating_point']}. Decision record: {section['source']}.", ""]
    if d:
        lines += [f"p(malignant) = {d['aggregation'].replace('_', '-')} of the calibrated malignant "
                  f"probability over the tumour slices (chosen by patient log loss on validation: "
                  + ", ".join(f"{k} {_f(v)}" for k, v in (d.get("val_log_loss") or {}).items())
                  + f"); temperature {t:.3f} fitted on {d.get('temperature_slices', '')}.", ""]
    lines += [f"| {section['patient']['n']} test patients | the answer [95% CI] |", "|---|---|"]
    lines += [f"| {name} | {_rate(r[key])} |" for name, key in ROWS]
    lines += [f"| the paper's rule: accuracy (all patients) | {_rate(r['rule_accuracy'])} |",
              f"| the paper's rule: accuracy (the answered patients) | {_rate(r['rule_accuracy_answered'])} |",
              f"| the paper's rule: malignant sensitivity (all) | {_rate(r['rule_sensitivity'])} |", "",
              "Wilson CIs (continuity-corrected for sensitivity and specificity); patients are "
              "independent units here. ![p(malignant)](p_malignant.png)", "",
              f"Patient AUC of p(malignant): {_ci({'estimate': auc['auc'], 'lo': auc['lo'], 'hi': auc['hi']})} "
              f"(DeLong){' - ' + auc['na_reason'] if auc.get('na_reason') else ''}.", "",
              f"| slices | before (T = 1) | after (T = {t:.2f}) |", "|---|---|---|",
              f"| ECE ({sl['n_bins']} bins) | {_ci(sl['ece']['before'])} | {_ci(sl['ece']['after'])} |",
              f"| Brier | {_ci(sl['brier']['before'])} | {_ci(sl['brier']['after'])} |", "",
              "Slice CIs: patient-clustered bootstrap (slices of one patient resampled together). "
              "![reliability](reliability.png)"]
    lines += [f"- **Warning:** {w}" for w in section.get("warnings", [])]
    return lines


def answer_lines(section: dict | None, label: str = "") -> list[str]:
    """What ``mrparotid evaluate`` prints of the answer section."""
    if not section:
        return []
    r = section["patient"]["rates"]
    head = f"answer{' (' + label + ')' if label else ''}"
    return [f"WARNING: {w}" for w in section.get("warnings", [])] + [
        f"{head}: {section['operating_point']}",
        f"{head}: coverage {_rate(r['coverage'])}, accuracy among answered {_rate(r['accuracy'])}, "
        f"malignant sensitivity {_rate(r['sensitivity'])}, specificity {_rate(r['specificity'])}; "
        f"the rule: accuracy {_rate(r['rule_accuracy'])}, malignant sensitivity {_rate(r['rule_sensitivity'])}"]
