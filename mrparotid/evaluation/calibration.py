"""Calibration, p(malignant) and the refer band, scored on a predictions table (``evaluate``).

The predictions CSV holds raw (temperature 1) probabilities; the calibration's temperature is
applied here once (:mod:`mrparotid.inference.calibrate`). ECE (15 bins, top-label, L1) comes from
torchmetrics ``multiclass_calibration_error``; its patient-bootstrap replicates use the same bins
(:func:`ece`, checked equal to torchmetrics by the tests). Brier = mean over slices of
``sum_k (p_k - [y = k])^2`` (0 best, 2 worst).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd

from mrparotid.constants import CLASSES
from mrparotid.evaluation import stats
from mrparotid.evaluation.bootstrap import patient_bootstrap_ci
from mrparotid.evaluation.metrics import label_arrays, patient_slices
from mrparotid.inference.calibrate import (T_BOUNDS, apply_temperature, fit_temperature,
                                          logits_from_probs, nll)
from mrparotid.inference import refer

N_BINS = 15


def ece_torchmetrics(probs: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error (top-label, L1) by torchmetrics; nan for no slice."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    if len(y) == 0:
        return math.nan
    return float(multiclass_calibration_error(torch.as_tensor(np.array(probs, dtype=np.float64)),
                                              torch.as_tensor(np.array(y, dtype=np.int64)),
                                              num_classes=len(CLASSES), n_bins=n_bins, norm="l1"))


def ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE from top-label confidence (n,) and correctness (n,), binned as torchmetrics does
    (bins ``[k/n_bins, (k+1)/n_bins)``, confidence 1.0 in a bin of its own):
    ``sum_bins |sum correct - sum confidence| / n``."""
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.size == 0:
        return math.nan
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges, conf, side="right") - 1
    diff = np.bincount(idx, weights=np.asarray(correct, dtype=np.float64) - conf, minlength=n_bins + 1)
    return float(np.abs(diff).sum() / conf.size)


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """Multiclass Brier score (mean over slices of the squared distance to the one-hot truth)."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return math.nan
    return float(_brier_rows(probs, y).mean())


def _brier_rows(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    onehot = np.eye(probs.shape[1])[np.asarray(y, dtype=np.int64)]
    return ((probs - onehot) ** 2).sum(axis=1)


def calibration_scores(ids: np.ndarray, probs: np.ndarray, y: np.ndarray, n_boot: int = 2000) -> dict:
    """``{"ece", "brier"}`` of (n, 4) probabilities, each ``{estimate, lo, hi, ...}`` with a
    patient-clustered bootstrap CI (:func:`~mrparotid.evaluation.bootstrap.patient_bootstrap_ci`)."""
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    e = patient_bootstrap_ci(ids, ece, conf, correct, n_boot=n_boot)
    e["estimate"] = ece_torchmetrics(probs, y)
    b = patient_bootstrap_ci(ids, lambda r: float(r.mean()), _brier_rows(probs, y), n_boot=n_boot)
    return {"ece": e, "brier": b}


def fit_calibration(val: pd.DataFrame | None, refer_cfg: dict | None = None, *,
                    source: str = "validation predictions", warn: bool = True) -> dict:
    """Temperature, aggregation and refer band chosen on validation predictions (raw probs).

    Returns the record stored in the checkpoint: ``temperature, aggregation, threshold,
    refer_band ([lo, hi] or None), refer_note, target_sensitivity, min_malignant_val,
    n_val_patients, n_val_malignant, n_val_slices, val_nll {before, after} (nats per slice),
    val_log_loss {mean, noisy_or} (patient p(malignant), nats per patient)``. Without validation
    slices: temperature 1, mean, no band, and the note says so. ``warn`` prints a one-line
    warning when the band cannot be chosen.
    """
    rc = {"target_sensitivity": refer.TARGET_SENSITIVITY, "min_malignant_val": refer.MIN_MALIGNANT_VAL,
          **(refer_cfg or {})}
    target, min_mal = float(rc["target_sensitivity"]), int(rc["min_malignant_val"])
    record = {**refer.UNCALIBRATED, "target_sensitivity": target, "min_malignant_val": min_mal,
              "n_val_patients": 0, "n_val_malignant": 0, "n_val_slices": 0, "source": source}
    if val is None or len(val) == 0:
        record["refer_note"] = "no validation patients: temperature 1 (not calibrated), never refer"
        return _warned(record, warn)
    y, _, probs = label_arrays(val)
    t, temperature_note = bounded_temperature(fit_temperature(logits_from_probs(probs), y), len(y))
    pats, _ = patient_slices(val)
    patients = [(truth == "malignant", apply_temperature(p, t), m) for truth, p, m in pats.values()]
    aggregation, losses = refer.choose_aggregation(patients)
    scores = [refer.p_malignant(p, m, aggregation) for _, p, m in patients]
    band = refer.choose_band(scores, [mal for mal, _, _ in patients], target, min_mal)
    record.update(temperature=float(t), temperature_note=temperature_note, aggregation=aggregation,
                  refer_band=list(band.band) if band.band else None, refer_note=band.note,
                  n_val_patients=len(patients), n_val_malignant=sum(m for m, _, _ in patients),
                  n_val_slices=int(len(y)), val_log_loss=losses,
                  val_nll={"before": nll(logits_from_probs(probs), y),
                           "after": nll(logits_from_probs(probs), y, t)})
    return _warned(record, warn)


def bounded_temperature(t: float, n_slices: int) -> tuple[float, str | None]:
    """(temperature to use, warning or None) for a fitted ``t``. At the search's upper bound
    (:data:`~mrparotid.inference.calibrate.T_BOUNDS`) the validation slices say the model's
    probabilities carry little information: ``t`` is kept (it flattens them). At the lower bound
    every validation slice is classified with room to spare, which only says "sharper", not how
    much: sharpening by 1/0.05 would make every answer overconfident, so 1 is used instead."""
    lo, hi = T_BOUNDS
    if t >= hi / 1.1:                  # within 10 % of a bound: the bounded search stops short of it
        return t, (f"the temperature reached its upper bound {hi:g} on {n_slices} validation slices: "
                   "the model's probabilities carry little information there; treat p(malignant) "
                   "with care")
    if t <= lo * 1.1:
        return 1.0, (f"the temperature reached its lower bound {lo:g} on {n_slices} validation "
                     "slices (all classified with room to spare): temperature 1 kept, not sharpened; "
                     "more validation patients would calibrate it")
    return t, None


def _warned(record: dict, warn: bool) -> dict:
    if warn and record.get("temperature_note"):
        print(f"WARNING: {record['temperature_note']}", file=sys.stderr)
    if warn and record["refer_band"] is None:
        print(f"WARNING: {record['refer_note']}", file=sys.stderr)
    return record


def patient_answers(df: pd.DataFrame, calibration: dict) -> pd.DataFrame:
    """One row per patient with a tumour slice: ``patient_id, true, malignant, p_malignant,
    p_malignant_raw`` (temperature 1), ``answer``, ``referred``, ``benign_type`` (the answer
    below the band)."""
    raw_cal = dict(calibration, temperature=1.0, refer_band=None)
    rows = []
    for pid, (truth, p, m) in patient_slices(df)[0].items():
        a = refer.answer_patient(p, m, calibration)
        cal = apply_temperature(p, float(calibration["temperature"]))
        rows.append({"patient_id": pid, "true": truth, "malignant": truth == "malignant",
                     "p_malignant": a["p_malignant"],
                     "p_malignant_raw": refer.answer_patient(p, m, raw_cal)["p_malignant"],
                     "answer": a["answer"], "referred": a["answer"] == refer.REFER,
                     "benign_type": refer.benign_type(cal, m)})
    return pd.DataFrame(rows, columns=["patient_id", "true", "malignant", "p_malignant", "p_malignant_raw",
                                       "answer", "referred", "benign_type"])


def band_scores(table: pd.DataFrame) -> dict:
    """Coverage (share answered), exact-diagnosis accuracy, benign-vs-malignant accuracy and
    malignant sensitivity on the answered patients, Wilson CIs (``stats.rate_ci``)."""
    answered = table.loc[~table["referred"]]
    mal = answered["malignant"].to_numpy(bool)
    called_mal = (answered["answer"] == "malignant").to_numpy()
    return {"n_patients": int(len(table)), "n_referred": int(table["referred"].sum()),
            "coverage": stats.rate_ci(len(answered), len(table), stats.ACCURACY_CI_METHOD),
            "accuracy": stats.rate_ci(int((answered["answer"] == answered["true"]).sum()), len(answered),
                                      stats.ACCURACY_CI_METHOD),
            "bvm_accuracy": stats.rate_ci(int((mal == called_mal).sum()), len(answered),
                                          stats.ACCURACY_CI_METHOD),
            "sensitivity": stats.rate_ci(int((mal & called_mal).sum()), int(mal.sum()), stats.RATE_CI_METHOD)}


def band_curve(table: pd.DataFrame, hi: float) -> pd.DataFrame:
    """Coverage, accuracy and malignant sensitivity on the answered patients for every band
    [lo, hi) as ``lo`` goes from ``hi`` (refer none) down to 0 (refer all below ``hi``)."""
    p = table["p_malignant"].to_numpy(float)
    los = np.unique(np.r_[hi, p[p < hi], 0.0])[::-1]
    rows = []
    for lo in los:
        said = np.where(p >= hi, "malignant", np.where(p < lo, table["benign_type"], refer.REFER))
        ans = said != refer.REFER
        mal = table["malignant"].to_numpy(bool) & ans
        rows.append({"lo": float(lo), "coverage": float(ans.mean()) if len(p) else math.nan,
                     "accuracy": float((said[ans] == table["true"].to_numpy()[ans]).mean()) if ans.any() else math.nan,
                     "sensitivity": float((said[mal] == "malignant").mean()) if mal.any() else math.nan})
    return pd.DataFrame(rows)


def auc_p_malignant(table: pd.DataFrame) -> dict:
    """Patient-level AUC of p(malignant) (malignant vs benign) with its DeLong CI."""
    y, p = table["malignant"].to_numpy(bool), table["p_malignant"].to_numpy(float)
    if y.all() or not y.any():
        return {"auc": math.nan, "lo": math.nan, "hi": math.nan, "method": "DeLong",
                "na_reason": "needs malignant and benign patients"}
    auc, lo, hi = stats.delong_ci(y, p)
    return {"auc": auc, "lo": lo, "hi": hi, "method": "DeLong", "na_reason": "",
            "n_malignant": int(y.sum()), "n_benign": int((~y).sum())}


def calibration_section(df: pd.DataFrame, out_dir, *, val: pd.DataFrame | None = None,
                        calibration: dict | None = None, refer_cfg: dict | None = None,
                        synthetic: bool = False, title: str = "", n_boot: int = 2000) -> dict:
    """Score the calibration on ``df`` (test predictions, raw probs) and draw its figures.

    ``calibration``: the checkpoint's record (:func:`fit_calibration`); None fits one here on
    ``val`` (or, without it, uses temperature 1 and no band). Writes ``reliability.png``,
    ``coverage_accuracy.png`` and ``patients_p_malignant.csv`` into ``out_dir``; returns
    ``{calibration, source, slice: {ece, brier: {before, after}}, patient: {n, auc, band},
    curve, files, warnings}``.
    """
    from pathlib import Path

    from mrparotid.evaluation.calibration_report import plot_band_curve, plot_reliability
    from mrparotid.io.atomic import write_text

    if calibration is None:
        calibration = fit_calibration(val, refer_cfg, warn=False)
        source = ("fitted here on the validation predictions" if val is not None
                  else "none: no validation predictions and no checkpoint")
    else:
        source = "the checkpoint (chosen on the run's validation patients)"
    out = Path(out_dir)
    ids = df["patient_id"].astype(str).to_numpy()
    y, _, raw = label_arrays(df)
    cal = apply_temperature(raw, float(calibration["temperature"]))
    scores = {"before": calibration_scores(ids, raw, y, n_boot), "after": calibration_scores(ids, cal, y, n_boot)}
    table = patient_answers(df, calibration)
    band = calibration.get("refer_band")
    hi = float(band[1]) if band else float(calibration.get("threshold", refer.THRESHOLD))
    curve = band_curve(table, hi)
    files = {"reliability_png": "reliability.png", "coverage_accuracy_png": "coverage_accuracy.png",
             "patients_p_malignant": "patients_p_malignant.csv"}
    tag = f" — {title}" if title else ""
    plot_reliability({"before (T = 1)": (raw, y), f"after (T = {calibration['temperature']:.2f})": (cal, y)},
                     out / files["reliability_png"], n_bins=N_BINS, title=f"Reliability{tag}",
                     synthetic=synthetic)
    scored = band_scores(table)
    plot_band_curve(curve, band, scored["coverage"]["estimate"], out / files["coverage_accuracy_png"],
                    title=f"Refer band: coverage vs accuracy{tag}", synthetic=synthetic)
    write_text(out / files["patients_p_malignant"], table.to_csv(index=False, float_format="%.6g"))
    warnings = [str(calibration["temperature_note"])] if calibration.get("temperature_note") else []
    if band is None:
        warnings.append(str(calibration.get("refer_note", "no refer band")))
    return {"calibration": calibration, "source": source,
            "slice": {"ece": {k: v["ece"] for k, v in scores.items()},
                      "brier": {k: v["brier"] for k, v in scores.items()}, "n_bins": N_BINS},
            "patient": {"n": int(len(table)), "aggregation": calibration["aggregation"],
                        "auc": auc_p_malignant(table), "band": scored},
            "curve": curve.to_dict(orient="list"), "files": files, "warnings": warnings}
