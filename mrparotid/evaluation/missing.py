"""``ablate --missing`` comparison: one series-dropout model, scored on every series subset, beside
the dedicated model trained on that subset alone (same test slices).

Slice accuracy of each with a patient-clustered bootstrap CI, and the paired difference (dropout
minus dedicated; both scored on the same resampled patients) with its CI and bootstrap p-value.
``margin`` is the issue's target: the dropout model may trail the dedicated one by at most that
much (0.02 with every series present, 0.03 with one series missing; none with two missing), and
``within_margin`` says whether the point estimate of the difference is ``>= -margin``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mrparotid.errors import InputError
from mrparotid.evaluation.bootstrap import (BOOTSTRAP_METHOD, accuracy, bootstrap_accuracy,
                                            bootstrap_paired_difference)
from mrparotid.evaluation.metrics import label_arrays
from mrparotid.evaluation.predictions import KEY, as_predictions
from mrparotid.io.atomic import atomic_path, write_text

#: Target margin (slice accuracy) by number of missing series; absent = no target.
MARGINS: dict[int, float] = {0: 0.02, 1: 0.03}

SYNTHETIC_BANNER = ("> **SYNTHETIC DATA — not clinical.** These figures come from synthetic (phantom) "
                    "data; no clinical accuracy is claimed.")


def _aligned(dedicated: pd.DataFrame, dropout: pd.DataFrame, subset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables on the same slices in the same order, or an InputError."""
    a, b = dedicated.set_index(KEY).sort_index(), dropout.set_index(KEY).sort_index()
    if not a.index.equals(b.index):
        raise InputError(f"subset {subset}: the dedicated model predicts {len(a)} slices, the dropout "
                         f"model {len(b)}, not the same patient_id/side/index set",
                         fix="score both models on the same test split (one ablate --missing --out folder)")
    if not (a["true"] == b["true"]).all():
        raise InputError(f"subset {subset}: the two models' true classes differ",
                         fix="score both models on one test manifest")
    return a.reset_index(), b.reset_index()


def missing_row(subset: str, missing: list[str], dedicated, dropout, *, n_boot: int = 2000) -> dict:
    """One comparison row: accuracies with patient-bootstrap CIs, the paired difference."""
    ded, drop = _aligned(as_predictions(dedicated), as_predictions(dropout), subset)
    ids = ded["patient_id"].astype(str).to_numpy()
    y, yhat_ded, _ = label_arrays(ded)
    _, yhat_drop, _ = label_arrays(drop)
    a_ded = bootstrap_accuracy(ids, y, yhat_ded, n_boot=n_boot)
    a_drop = bootstrap_accuracy(ids, y, yhat_drop, n_boot=n_boot)
    diff = bootstrap_paired_difference(ids, accuracy, (y, yhat_drop), (y, yhat_ded), n_boot=n_boot)
    margin = MARGINS.get(len(missing), math.nan)
    return {"subset": subset, "missing": ",".join(missing) or "none", "n_slices": len(y),
            "n_patients": a_ded["n_patients"],
            "dedicated_acc": a_ded["estimate"], "dedicated_lo": a_ded["lo"], "dedicated_hi": a_ded["hi"],
            "dropout_acc": a_drop["estimate"], "dropout_lo": a_drop["lo"], "dropout_hi": a_drop["hi"],
            "diff": diff["estimate"], "diff_lo": diff["lo"], "diff_hi": diff["hi"], "p_value": diff["p_value"],
            "margin": margin,
            "within_margin": (bool(diff["estimate"] >= -margin - 1e-12) if math.isfinite(margin) else None)}


def missing_table(rows: list[dict], out_dir: str | Path, *, synthetic: bool = False,
                  dropout_rate: float | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """Compare the dropout model with the dedicated models; write ``missing.csv`` and ``missing.md``.

    Parameters
    ----------
    rows : list of dict
        ``{"subset", "missing" (list of series), "dedicated", "dropout"}`` per series subset; the
        last two are predictions tables or CSV paths over the same test slices.
    out_dir : path
        Receives ``missing.csv`` and ``missing.md``.
    synthetic : bool
        Mark the outputs synthetic (also when any predictions file says so).
    dropout_rate : float, optional
        The dropout model's ``augment.series_dropout``, named in the Markdown.
    """
    frames = [(r, as_predictions(r["dedicated"]), as_predictions(r["dropout"])) for r in rows]
    synthetic = bool(synthetic or any(f.attrs.get("synthetic") for _, a, b in frames for f in (a, b)))
    table = pd.DataFrame([missing_row(r["subset"], list(r["missing"]), a, b, n_boot=n_boot)
                          for r, a, b in frames])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "missing.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    write_text(out / "missing.md", missing_markdown(table, synthetic=synthetic, dropout_rate=dropout_rate))
    return table


def _ci(lo: float, hi: float) -> str:
    return "[n/a]" if not (np.isfinite(lo) and np.isfinite(hi)) else f"[{lo:.3f}, {hi:.3f}]"


def _target(row) -> str:
    if row["within_margin"] is None or not math.isfinite(row["margin"]):
        return "-"
    return f"{'met' if row['within_margin'] else 'MISSED'} (>= -{row['margin']:.2f})"


def missing_markdown(table: pd.DataFrame, *, synthetic: bool = False, dropout_rate: float | None = None) -> str:
    """``missing.md``: the comparison table with its method."""
    rate = f" (`augment.series_dropout: {dropout_rate:g}`)" if dropout_rate is not None else ""
    md = [SYNTHETIC_BANNER, ""] if synthetic else []
    md += ["# Missing series: one series-dropout model vs dedicated per-subset models (slice level)", "",
           f"The dropout model{rate} is trained once on every series; for each subset the other "
           "series' planes are zeroed and flagged absent. The dedicated model of a subset was trained "
           "on that subset alone (`ablate --all`). Both score the same test slices.", "",
           f"95% CIs: {BOOTSTRAP_METHOD}. The difference is dropout minus dedicated, paired (both "
           "models on the same resampled patients). Target: the difference is at least -0.02 with "
           "every series present and at least -0.03 with one series missing (point estimate).", "",
           "| series given | missing | dedicated accuracy [95% CI] | dropout accuracy [95% CI] "
           "| difference [95% CI] | p | target |", "|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        md.append(f"| {r['subset']} | {r['missing']} | {r['dedicated_acc']:.3f} "
                  f"{_ci(r['dedicated_lo'], r['dedicated_hi'])} | {r['dropout_acc']:.3f} "
                  f"{_ci(r['dropout_lo'], r['dropout_hi'])} | {r['diff']:+.3f} {_ci(r['diff_lo'], r['diff_hi'])} "
                  f"| {r['p_value']:.3g} | {_target(r)} |")
    n = table["n_slices"].iloc[0] if len(table) else 0
    p = table["n_patients"].iloc[0] if len(table) else 0
    md += ["", f"{n} test slices of {p} patients.", ""]
    return "\n".join(md)


def format_missing(table: pd.DataFrame) -> str:
    """The comparison as console lines."""
    lines = [f"{'series given':<16} {'missing':<12} {'dedicated':>22} {'dropout':>22} {'difference':>24}  target"]
    for _, r in table.iterrows():
        lines.append(f"{r['subset']:<16} {r['missing']:<12} "
                     f"{r['dedicated_acc']:>6.3f} {_ci(r['dedicated_lo'], r['dedicated_hi']):>15} "
                     f"{r['dropout_acc']:>6.3f} {_ci(r['dropout_lo'], r['dropout_hi']):>15} "
                     f"{r['diff']:>+7.3f} {_ci(r['diff_lo'], r['diff_hi']):>16}  {_target(r)}")
    return "\n".join(lines)


def subset_answers(preds: dict[str, str | Path], record, malignant_min_slices: int = 2) -> dict[str, dict]:
    """The dropout model's answer (its own decision record, chosen with every series present) on
    each series subset's test predictions: subset → coverage, refer rate, accuracy, malignant
    sensitivity and specificity among the answered, Wilson CIs."""
    from mrparotid.evaluation.answers import score_answers

    return {subset: score_answers(as_predictions(path), record, malignant_min_slices)[1]
            for subset, path in preds.items()}


def subset_answers_markdown(answers: dict[str, dict]) -> str:
    """The answer per series subset, for ``missing.md``."""
    def rate(r: dict) -> str:
        return f"{r['estimate']:.3f} ({r['k']}/{r['n']})" if r.get("n") else "n/a"

    md = ["## The answer per series subset (dropout model, its decision record)", "",
          "The record was chosen on the validation patients with every series present; it is applied "
          "unchanged to each subset. Wilson CIs are in missing.json.", "",
          "| series given | coverage | refer rate | accuracy (answered) | malignant sensitivity (answered) "
          "| specificity (answered) |", "|---|---|---|---|---|---|"]
    md += [f"| {subset} | {rate(r['coverage'])} | {rate(r['refer'])} | {rate(r['accuracy'])} | "
           f"{rate(r['sensitivity'])} | {rate(r['specificity'])} |" for subset, r in answers.items()]
    return "\n".join(md) + "\n"
