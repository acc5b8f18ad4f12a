"""Per-centre figures: every slice and patient figure of ``evaluate``, computed again on the rows
of each centre (the predictions CSV's ``centre`` column), with the same intervals.

A centre's figures are exactly what :func:`mrparotid.evaluation.evaluate.evaluate_predictions`
reports pooled when given that centre's rows only: slice figures with patient-clustered bootstrap
CIs (same B and seed), patient figures with Wilson CIs, the answer's rates under the same decision
record(s) and soft-vote cut. Patients with an empty centre form the group :data:`NO_CENTRE` when
other patients have one; predictions without any centre have no per-centre section.
"""

from __future__ import annotations

import pandas as pd

from mrparotid.decision.score import Records
from mrparotid.evaluation.answers import auc_p_malignant, score_answers
from mrparotid.evaluation.metrics import patient_metrics, slice_metrics

#: The group of patients without a centre, beside named centres.
NO_CENTRE = "(no centre)"


def centre_labels(df: pd.DataFrame) -> pd.Series | None:
    """Each row's centre (empty → :data:`NO_CENTRE`), or None when no row names a centre."""
    if "centre" not in df.columns:
        return None
    labels = df["centre"].fillna("").astype(str).str.strip()
    if not (labels != "").any():
        return None
    return labels.where(labels != "", NO_CENTRE)


def centre_rows(df: pd.DataFrame, labels: pd.Series, centre: str) -> pd.DataFrame:
    """The rows of one centre as a validated-looking predictions table (index reset, attrs kept)."""
    sub = df.loc[(labels == centre).to_numpy()].reset_index(drop=True)
    sub.attrs = dict(df.attrs)
    return sub


def centre_figures(df: pd.DataFrame, *, records: Records, soft_threshold, soft_source: str,
                   malignant_min_slices: int) -> dict:
    """One centre's figures (``df`` holds its rows only): ``slice`` (:func:`slice_metrics`),
    ``patient`` (:func:`patient_metrics`), ``answer`` (``n``, ``auc`` of p(malignant), ``rates``);
    a centre without a tumour slice gets a ``note`` instead (nothing can be scored)."""
    ids = df["patient_id"].astype(str)
    out = {"n_slices": int(len(df)), "n_patients": int(ids.nunique())}
    if set(df["true"]) <= {"no_tumour"}:
        return {**out, "note": "no tumour slice: not scored"}
    pm, _ = patient_metrics(df, soft_threshold=soft_threshold, soft_source=soft_source,
                            malignant_min_slices=malignant_min_slices)
    table, rates = score_answers(df, records, malignant_min_slices)
    return {**out, "slice": slice_metrics(df), "patient": pm,
            "answer": {"n": int(len(table)), "auc": auc_p_malignant(table), "rates": rates}}


def per_centre_metrics(df: pd.DataFrame, *, records: Records = None, soft_threshold=None,
                       soft_source: str = "", malignant_min_slices: int = 2) -> dict | None:
    """Centre → :func:`centre_figures` of its rows (centres sorted, :data:`NO_CENTRE` last), or
    None when the predictions name no centre. ``records``, ``soft_threshold`` and
    ``soft_source`` are the pooled evaluation's, so a centre's figures equal an evaluation of
    its rows alone."""
    labels = centre_labels(df)
    if labels is None:
        return None
    names = sorted(set(labels) - {NO_CENTRE}) + ([NO_CENTRE] if (labels == NO_CENTRE).any() else [])
    return {name: centre_figures(centre_rows(df, labels, name), records=records,
                                 soft_threshold=soft_threshold, soft_source=soft_source,
                                 malignant_min_slices=malignant_min_slices) for name in names}
