"""``report.md`` at the root of a leave-one-centre-out cross-validation: each held-out centre's
figures, the in-centre CV's figures on the same patients, and the gap with its paired CI.

Pure formatting: every number comes from :func:`mrparotid.evaluation.centre_gap.centre_comparison`.
"""

from __future__ import annotations

import math

from mrparotid.evaluation.centre_gap import ALL, FIGURES

LABELS = {"rule_accuracy": "patient accuracy (rule)", "answer_accuracy": "patient accuracy (answer, answered)",
          "malignant_sensitivity": "malignant sensitivity (rule)",
          "lesion_slice_accuracy": "lesion-slice accuracy", "auc": "AUC of p(malignant)"}
BANNER = ("> **SYNTHETIC DATA — not clinical.** These figures come from synthetic (phantom) data; no "
          "clinical accuracy is claimed.")


def _num(x, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def figure_cell(r: dict) -> str:
    """``0.800 [0.490, 0.943] (8/10)``; without ``k``/``n`` (an AUC) no counts; ``n/a`` when undefined."""
    if r.get("n") == 0 or r.get("estimate") is None or not math.isfinite(r["estimate"]):
        return "n/a" + (f" ({r['na_reason']})" if r.get("na_reason") else "")
    counts = f" ({r['k']}/{r['n']})" if "k" in r else ""
    return f"{_num(r['estimate'])} [{_num(r['lo'])}, {_num(r['hi'])}]{counts}"


def gap_cell(g: dict) -> str:
    if g["estimate"] is None or not math.isfinite(g["estimate"]):
        return "n/a"
    return f"{_num(g['estimate'], True)} [{_num(g['lo'], True)}, {_num(g['hi'], True)}]"


def _cell(scores: dict, figure: str, cell) -> str:
    """One figure's cell; the answer's accuracy says how many patients it answered."""
    text = cell(scores[figure])
    if figure == "answer_accuracy" and "coverage" in scores:
        text += f"; answered {scores['coverage']['k']}/{scores['coverage']['n']}"
    return text


def _table(groups: dict, cell, key: str) -> list[str]:
    out = ["| centre | patients | " + " | ".join(LABELS[f] for f in FIGURES) + " |",
           "|---|---|" + "---|" * len(FIGURES)]
    for name, g in groups.items():
        label = f"**{name}**" if name == ALL else name
        out.append(f"| {label} | {g['n_patients']} | " + " | ".join(_cell(g[key], f, cell) for f in FIGURES) + " |")
    return out


def centre_cv_markdown(result: dict, comparison: dict, *, synthetic: bool) -> str:
    """The CV root's ``report.md``: ``result`` is the CV summary (``centres``, ``k``, ``reports``),
    ``comparison`` the :func:`~mrparotid.evaluation.centre_gap.centre_comparison` result."""
    groups = comparison["groups"]
    out = [BANNER, ""] if synthetic else []
    out += ["# Leave-one-centre-out cross-validation", "",
            f"{result['k']} centres ({', '.join(result['centres'])}). **Out of centre**: each centre is "
            "tested by a model trained and validated on the other centres only (its decision record "
            "chosen on those centres' validation patients). **In centre**: a cross-validation grouped by "
            f"patient and stratified by centre x diagnosis, with the same {result['k']} folds, so every "
            "patient also has a prediction from a model that saw its centre. Both are scored on the same "
            "patients.", "",
            "## Held-out centres (out of centre)", ""]
    out += _table(groups, figure_cell, "out_of_centre")
    out += ["", "## The same patients, in-centre cross-validation", ""]
    out += _table(groups, figure_cell, "in_centre")
    out += ["", "## Gap: out of centre minus in centre", ""]
    out += _table(groups, gap_cell, "gap")
    out += ["", f"Gap CIs: {comparison['method']}. A negative gap means the figure drops on a centre "
            "the model never saw.", "",
            "Figure CIs: Wilson for patient accuracies (the answer's among the patients it answers, "
            "with how many it answered), Wilson with continuity correction for malignant sensitivity, "
            "patient-clustered bootstrap for lesion-slice accuracy, DeLong for the AUC of p(malignant) "
            "(malignant vs benign patients).", "",
            f"Per-centre detail: [out of centre]({result['reports']['out_of_centre']}), "
            f"[in centre]({result['reports']['in_centre']})."]
    return "\n".join(out) + "\n"
