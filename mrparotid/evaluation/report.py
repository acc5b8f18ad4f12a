"""Markdown reports of evaluation metrics (``report.md``, ``ablation.md``).

Pure formatting: every number comes from :mod:`mrparotid.evaluation.evaluate`.
"""

from __future__ import annotations

import numpy as np

from mrparotid.evaluation import stats
from mrparotid.constants import CLASSES
from mrparotid.evaluation.plots import pretty_class

SYNTHETIC_BANNER = ("> **SYNTHETIC DATA — not clinical.** These figures come from synthetic (phantom) "
                    "data; no clinical accuracy is claimed.")


def fmt_rate(r: dict) -> str:
    """``0.882 [0.827, 0.921] (164/186)`` from a ``{k, n, estimate, lo, hi}`` rate."""
    if r["n"] == 0:
        return "n/a (0 cases)"
    return f"{r['estimate']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({r['k']}/{r['n']})"


def fmt_auc(a: dict) -> str:
    """``0.930 [0.890, 0.970]`` from an ``{auc, lo, hi}`` dict; ``n/a`` when undefined."""
    return "n/a" if a["auc"] is None or not np.isfinite(a["auc"]) else f"{a['auc']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]"


VIEW_TITLES = {"benign_vs_malignant": "Benign vs malignant (lesion slices)",
               "pa_vs_warthin": "Pleomorphic adenoma vs Warthin (benign slices)",
               "lesion_vs_no_lesion": "Lesion vs no lesion (all slices)"}


def evaluation_markdown(m: dict, synthetic: bool, title: str) -> str:
    """``report.md`` of :func:`mrparotid.evaluation.evaluate.evaluate_predictions` metrics (figures linked)."""
    sm, pm = m["slice"], m["patient"]
    out = [SYNTHETIC_BANNER, ""] if synthetic else []
    out += [f"# {title or 'mrparotid evaluation'}", "",
            f"Slices: {sm['n_slices']}; patients: {pm['n_patients']}. CI method: {stats.METHOD_NAME}."
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
            "![ROC curves](roc.png)", "", "| AUC (one-vs-rest) | AUC [95% CI] |", "|---|---|"]
    out += [f"| {pretty_class(c)} | {fmt_auc(a)} |" for c, a in sm["auc"]["per_class"].items()]
    out += [f"| micro-average | {fmt_auc(sm['auc']['micro'])} (CI approximate: see note) |",
            "| macro-average | " + (f"{sm['auc']['macro']:.3f}" if np.isfinite(sm["auc"]["macro"]) else "n/a") + " |",
            "", f"Note: the micro-average CI is a {sm['auc']['micro']['note']}.", "", "## Patient level", "",
            f"Rule: malignant when more than {pm['malignant_min_slices']} slices are predicted malignant, "
            f"else the benign type with more slices. Soft vote: malignant when the mean malignant "
            f"probability >= {pm['soft_vote']['threshold']:.3f}; {pm['soft_vote']['threshold_source']}.", "",
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
    return "\n".join(out) + "\n"



def ablation_markdown(rows: list[dict], reference_name: str, synthetic: bool) -> str:
    """``ablation.md``: the Table-3 comparison rows of :func:`mrparotid.evaluation.evaluate.ablation_table`."""
    md = [SYNTHETIC_BANNER, ""] if synthetic else []
    md += ["# Channel ablation (slice level)", "",
           f"Accuracy: Wilson 95% CI. Micro-AUC: DeLong 95% CI on the flattened one-vs-rest problem; "
           f"p: paired DeLong test against `{reference_name}` on the same slices.", "",
           "| model | channels | accuracy [95% CI] | micro-AUC [95% CI] | p vs reference |", "|---|---|---|---|---|"]
    for t in rows:
        p = "reference" if t["reference"] else ("n/a" if not np.isfinite(t["p_vs_reference"])
                                                else f"{t['p_vs_reference']:.3g}")
        md.append(f"| {t['name']} | {t['channels']} | {t['accuracy']:.3f} [{t['acc_lo']:.3f}, {t['acc_hi']:.3f}] | "
                  f"{t['micro_auc']:.3f} [{t['auc_lo']:.3f}, {t['auc_hi']:.3f}] | {p} |")
    md += ["", "![ablation](ablation.png)", ""]
    return "\n".join(md)
