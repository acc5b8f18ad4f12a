"""Markdown of the per-centre figures (``report.md``'s "Per centre" section): one table for the
slice figures and one for the patient figures, the pooled figure first and each centre beside it.

Pure formatting: every number comes from :mod:`mrparotid.evaluation.centres`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mrparotid.evaluation.plots import pretty_class

VIEWS = {"benign_vs_malignant": "benign vs malignant", "pa_vs_warthin": "PA vs Warthin",
         "lesion_vs_no_lesion": "lesion vs no lesion"}
ANSWER_ROWS = (("coverage", "coverage (answered)"), ("accuracy", "accuracy among the answered"),
               ("sensitivity", "malignant sensitivity among the answered"),
               ("specificity", "specificity among the answered"))


def _num(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def cell_rate(r: dict | None) -> str:
    """``0.882 [0.827, 0.921] (164/186)``; ``n/a`` without cases."""
    if not r or not r.get("n"):
        return "n/a"
    return f"{_num(r['estimate'])} [{_num(r['lo'])}, {_num(r['hi'])}] ({r['k']}/{r['n']})"


def cell_auc(a: dict | float | None) -> str:
    """``0.930 [0.890, 0.970]`` from ``{auc, lo, hi}`` (or a bare number: the macro-average)."""
    if a is None or isinstance(a, float):
        return _num(a)
    if a.get("auc") is None or not math.isfinite(a["auc"]):
        return "n/a"
    return f"{_num(a['auc'])} [{_num(a['lo'])}, {_num(a['hi'])}]"


def _get(m: dict, *path):
    for key in path:
        if not isinstance(m, dict):
            return None
        m = m.get(key)
    return m


def slice_rows() -> list[tuple[str, tuple, Callable]]:
    """(label, path into a metrics dict, formatter) of each slice figure of the table."""
    rows = [("4-class accuracy", ("slice", "accuracy"), cell_rate)]
    rows += [(f"{title}: {m}", ("slice", "binary_views", view, m), cell_rate)
             for view, title in VIEWS.items() for m in ("accuracy", "sensitivity", "specificity")]
    rows += [(f"AUC {pretty_class(c)} vs rest", ("slice", "auc", "per_class", c), cell_auc)
             for c in ("no_tumour", "pleomorphic_adenoma", "warthin", "malignant")]
    rows += [("micro-AUC", ("slice", "auc", "micro"), cell_auc), ("macro-AUC", ("slice", "auc", "macro"), cell_auc)]
    return rows


def patient_rows() -> list[tuple[str, tuple, Callable]]:
    """(label, path, formatter) of each patient figure of the table: the rule, the soft vote and
    the answer."""
    rows = []
    for key, name in (("rule", "rule"), ("soft_vote", "soft vote")):
        rows.append((f"{name}: exact diagnosis accuracy", ("patient", key, "accuracy"), cell_rate))
        rows += [(f"{name}: benign vs malignant {m}", ("patient", key, "benign_vs_malignant", m), cell_rate)
                 for m in ("accuracy", "sensitivity", "specificity")]
    rows += [(f"answer: {label}", ("answer", "patient", "rates", key), cell_rate) for key, label in ANSWER_ROWS]
    rows.append(("answer: patient AUC of p(malignant)", ("answer", "patient", "auc"), cell_auc))
    return rows


def _pooled_answer(m: dict) -> dict:
    """The per-centre layout (``answer.patient``) of the pooled metrics' answer section."""
    return {**m, "answer": {"patient": _get(m, "answer", "patient")}}


def _centre_answer(c: dict) -> dict:
    return {**c, "answer": {"patient": c.get("answer")}}


def per_centre_markdown(m: dict) -> list[str]:
    """The "Per centre" section of ``report.md`` (no lines when ``m`` has no ``per_centre``)."""
    per = m.get("per_centre")
    if not per:
        return []
    columns = [("pooled", _pooled_answer(m))] + [(name, _centre_answer(c)) for name, c in per.items()]
    head = "| figure | " + " | ".join(name for name, _ in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    sizes = "| slices / patients | " + " | ".join(
        f"{_get(c, 'slice', 'n_slices') if name == 'pooled' else c['n_slices']} / "
        f"{_get(c, 'slice', 'n_patients') if name == 'pooled' else c['n_patients']}" for name, c in columns) + " |"
    out = ["", "## Per centre", "",
           "Every figure of this report on each centre's rows alone, beside the pooled figure, with the "
           "same intervals (slice level: patient-clustered bootstrap; patient level: Wilson, "
           "continuity-corrected for sensitivity and specificity; AUCs of p(malignant): DeLong)."]
    notes = [f"- {name}: {c['note']}" for name, c in per.items() if c.get("note")]
    out += ([""] + notes) if notes else []
    for title, rows in (("Slice level", slice_rows()), ("Patient level", patient_rows())):
        out += ["", f"### {title}", "", head, rule, sizes]
        out += [f"| {label} | " + " | ".join(fmt(_get(c, *path)) for _, c in columns) + " |"
                for label, path, fmt in rows]
    return out
