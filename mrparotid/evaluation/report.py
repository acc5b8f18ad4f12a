"""Markdown reports of evaluation metrics (``report.md``, ``ablation.md``).

Pure formatting: every number comes from :mod:`mrparotid.evaluation.evaluate`.
"""

from __future__ import annotations

import numpy as np

from mrparotid.constants import CLASSES
from mrparotid.evaluation.bootstrap import BOOTSTRAP_METHOD
from mrparotid.evaluation.answers import answer_markdown
from mrparotid.evaluation.centres_report import per_centre_markdown
from mrparotid.evaluation.metrics import INDEPENDENT_NOTE
from mrparotid.evaluation.plots import pretty_class

SYNTHETIC_BANNER = ("> **SYNTHETIC DATA — not clinical.** These figures come from synthetic (phantom) "
                    "data; no clinical accuracy is claimed.")


def _ci(lo, hi) -> str:
    return "[n/a]" if lo is None or not (np.isfinite(lo) and np.isfinite(hi)) else f"[{lo:.3f}, {hi:.3f}]"


_CI_LABELS = {"wilson": "Wilson", "wilson_cc": "Wilson cc"}


def fmt_rate(r: dict) -> str:
    """``0.882 [0.827, 0.921] (164/186)`` from a ``{k, n, estimate, lo, hi}`` rate; a slice-level
    rate (with ``independent``) adds the independent-slices interval: ``; Wilson [..]``."""
    if r["n"] == 0:
        return "n/a (0 cases)"
    text = f"{r['estimate']:.3f} {_ci(r['lo'], r['hi'])} ({r['k']}/{r['n']})"
    if "independent" in r:
        ind = r["independent"]
        text += f"; {_CI_LABELS.get(ind['method'], ind['method'])} {_ci(ind['lo'], ind['hi'])}"
    return text


def fmt_auc(a: dict) -> str:
    """``0.930 [0.890, 0.970]`` from an ``{auc, lo, hi}`` dict; ``n/a (reason)`` when undefined."""
    if a["auc"] is None or not np.isfinite(a["auc"]):
        return f"n/a ({a['na_reason']})" if a.get("na_reason") else "n/a"
    return f"{a['auc']:.3f} {_ci(a['lo'], a['hi'])}"


def _auc_row(name: str, a: dict) -> str:
    delong = "" if a["auc"] is None or not np.isfinite(a["auc"]) else _ci(a["delong"]["lo"], a["delong"]["hi"])
    return f"| {name} | {fmt_auc(a)} | {delong} |"


def methods_markdown(bootstrap_method: str) -> list[str]:
    """The paragraph that documents how slice-level intervals are computed."""
    return ["## Methods: confidence intervals", "",
            "Slices of one patient are correlated, so every slice-level interval (accuracies, "
            f"recalls, sensitivities, specificities, AUCs) is the primary {bootstrap_method}. "
            "Beside it stand the Wilson (accuracy) / Wilson with continuity correction (recalls) "
            f'and DeLong (AUC) intervals, labelled "{INDEPENDENT_NOTE}" (too narrow when slices '
            "of a patient agree); "
            "they are kept to compare with Xia et al. 2021. Patient-level rates use Wilson "
            "intervals (patients are independent).", ""]


VIEW_TITLES = {"benign_vs_malignant": "Benign vs malignant (lesion slices)",
               "pa_vs_warthin": "Pleomorphic adenoma vs Warthin (benign slices)",
               "lesion_vs_no_lesion": "Lesion vs no lesion (all slices)"}


def evaluation_markdown(m: dict, synthetic: bool, title: str) -> str:
    """``report.md`` of :func:`mrparotid.evaluation.evaluate.evaluate_predictions` metrics (figures linked)."""
    sm, pm = m["slice"], m["patient"]
    out = [SYNTHETIC_BANNER, ""] if synthetic else []
    out += [f"# {title or 'mrparotid evaluation'}", ""]
    out += [f"> **Incomplete test set:** {w}." for w in m.get("warnings", [])] + ([""] if m.get("warnings") else [])
    sv = pm["soft_vote"]
    out += [f"Slices: {sm['n_slices']} of {sm['n_patients']} patients ({pm['n_patients']} with a tumour slice). "
            f"Soft-vote threshold {sv['threshold']:.3f} ({sv['threshold_source']}). Slice-level CIs: "
            f'patient-clustered bootstrap (see Methods); beside them the intervals labelled "{INDEPENDENT_NOTE}". '
            "Patient-level CIs: Wilson score (accuracy), Wilson with continuity correction "
            "(sensitivity, specificity)."
            + (f" {m['unlabelled_rows']} slice(s) without a true class were left out."
               if m.get("unlabelled_rows") else ""), "",
            "## Slice level", "", f"4-class accuracy: {fmt_rate(sm['accuracy'])}", "",
            "![confusion matrix](confusion.png)", "",
            "| view | positive class | accuracy | sensitivity | specificity |", "|---|---|---|---|---|"]
    for name, v in sm["binary_views"].items():
        out.append(f"| {VIEW_TITLES[name]} | {pretty_class(v['positive'])} | "
                   f"{fmt_rate(v['accuracy'])} | {fmt_rate(v['sensitivity'])} | {fmt_rate(v['specificity'])} |")
    out += ["", "A slice counts as correct when its predicted class lies in the group of its true class "
            "(so e.g. a Warthin slice called malignant is a miss in the PA-vs-Warthin view). "
            "Sensitivity = recall of the positive class, specificity = recall of the other. "
            "(Xia et al. 2021, Table 4, take the first-named group as positive — benign; without lesion — "
            "so their sensitivity/specificity correspond to our specificity/sensitivity there.)", "",
            "![ROC curves](roc.png)", "",
            f"| AUC (one-vs-rest) | AUC [95% CI, patient bootstrap] | DeLong 95% CI ({INDEPENDENT_NOTE}) |",
            "|---|---|---|"]
    out += [_auc_row(pretty_class(c), a) for c, a in sm["auc"]["per_class"].items()]
    macro = sm["auc"]["macro"]
    out += [_auc_row("micro-average", sm["auc"]["micro"]),
            "| macro-average | " + (f"{macro:.3f}" if macro is not None and np.isfinite(macro) else "n/a") + " | |",
            "", "The micro-average pools every (slice, class) pair into one binary problem; its DeLong "
            "interval also treats the pairs of one slice as independent.", "", "## Patient level", "",
            f"Rule: malignant when more than {pm['malignant_min_slices']} slices are predicted malignant, "
            f"else the benign type with more slices. Soft vote: malignant when the mean malignant "
            f"probability over the patient's tumour slices >= {sv['threshold']:.3f} "
            f"({sv['threshold_source']}), else the benign type with more tumour slices.", "",
            "| diagnosis | patients | correct (rule) | correct (soft vote) |", "|---|---|---|---|"]
    for k, r in pm["rule"]["table5"].items():
        out.append(f"| {pretty_class(k)} | {r['patients']} | {r['correct']} | "
                   f"{pm['soft_vote']['table5'][k]['correct']} |")
    out += ["", "| patients (positive class: malignant) | rule | soft vote |", "|---|---|---|",
            f"| exact diagnosis accuracy | {fmt_rate(pm['rule']['accuracy'])} | {fmt_rate(pm['soft_vote']['accuracy'])} |"]
    for key in ("accuracy", "sensitivity", "specificity"):
        out.append(f"| benign vs malignant {key} | {fmt_rate(pm['rule']['benign_vs_malignant'][key])} | "
                   f"{fmt_rate(pm['soft_vote']['benign_vs_malignant'][key])} |")
    out += ["", "Misdiagnosed by the rule (predicted slices per class: no tumour/PA/Warthin/malignant):", ""]
    out += [f"- {d['patient_id']}: true {pretty_class(d['true'])}, called {pretty_class(d['diagnosis'])} "
            f"({'/'.join(str(d['counts'][c]) for c in CLASSES)})" for d in pm["rule"]["misdiagnosed"]] or ["- none"]
    if pm["excluded_no_tumour_only"]:
        out += ["", "Excluded from patient level (no tumour slice in the CSV): "
                + ", ".join(pm["excluded_no_tumour_only"])]
    out += answer_markdown(m.get("answer"))
    out += per_centre_markdown(m)
    out += [""] + methods_markdown(m.get("bootstrap_method", BOOTSTRAP_METHOD))
    return "\n".join(out)



def _fmt_p(p: float, resolution: float = 0.0) -> str:
    """A p-value; below a bootstrap's resolution (2/B) as ``< 0.001``."""
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"< {resolution:.1g}" if p < resolution else f"{p:.3g}"


def ablation_markdown(rows: list[dict], reference_name: str, synthetic: bool) -> str:
    """``ablation.md``: the Table-3 comparison rows of :func:`mrparotid.evaluation.evaluate.ablation_table`."""
    md = [SYNTHETIC_BANNER, ""] if synthetic else []
    md += ["# Channel ablation (slice level)", "",
           f"Primary 95% CIs and p-values: {BOOTSTRAP_METHOD}; differences and p are paired (both "
           f"models scored on the same resampled patients) against `{reference_name}`. Beside them: "
           f'Wilson (accuracy) and DeLong (micro-AUC, paired test) intervals, labelled "{INDEPENDENT_NOTE}".', "",
           "| model | channels | accuracy [95% CI] | Wilson CI (assumes independent slices) | micro-AUC [95% CI] | DeLong CI (assumes independent slices) "
           "| micro-AUC difference [95% CI] | p (bootstrap) | p (DeLong) |", "|---|---|---|---|---|---|---|---|---|"]
    for t in rows:
        if t["reference"]:
            diff = p_boot = p_delong = "reference"
        else:
            diff = f"{t['auc_diff']:+.3f} {_ci(t['auc_diff_lo'], t['auc_diff_hi'])}"
            p_boot, p_delong = _fmt_p(t["p_vs_reference"], 2 / 2000), _fmt_p(t["p_delong"])
        md.append(f"| {t['name']} | {t['channels']} | {t['accuracy']:.3f} {_ci(t['acc_lo'], t['acc_hi'])} | "
                  f"{_ci(t['acc_wilson_lo'], t['acc_wilson_hi'])} | {t['micro_auc']:.3f} "
                  f"{_ci(t['auc_lo'], t['auc_hi'])} | {_ci(t['auc_delong_lo'], t['auc_delong_hi'])} | "
                  f"{diff} | {p_boot} | {p_delong} |")
    from mrparotid.evaluation.gains import gains_markdown

    md += ["", "![ablation](ablation.png)", ""] + gains_markdown(rows, reference_name) + [""]
    md += methods_markdown(BOOTSTRAP_METHOD)
    return "\n".join(md)
