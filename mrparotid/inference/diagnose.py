"""Patient folder + checkpoint → slice probabilities → patient decision → report (JSON/text).

Reports carry the patient id from the folder name or manifest, never names or ids from DICOM
headers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrparotid.constants import CLASSES, SERIES
from mrparotid.inference.decide import decide_patient
from mrparotid.errors import CheckpointError, InputError, MissingSeriesError
from mrparotid.io.manifest import PatientCase
from mrparotid.inference.predict import predict_probs
from mrparotid.models.checkpoint import LoadedModel
from mrparotid.data.crops import PLANES, select_channels
from mrparotid.data.labels import UNLABELLED


def diagnose_case(case: PatientCase, loaded: LoadedModel, *, roles_file: str | Path | None = None) -> dict:
    """Predict every gland slice of a patient and apply the patient rule.

    Returns the report dict: ``patient_id, diagnosis, counts, slices, rule, model``
    (+ ``synthetic``, ``true_diagnosis`` when the case carries one).
    """
    from mrparotid.data.preprocess import load_study, patient_files, slices_of_study

    meta = loaded.meta
    channels = loaded.channels
    needed = tuple(c for c in channels if c in SERIES)
    series_mask = meta.get("series_mask", "none")
    try:
        files = patient_files(case, require_tumour=False, series=needed)
    except MissingSeriesError as err:
        raise CheckpointError(f"{err.message}, but the checkpoint was trained on "
                              f"{','.join(channels)}", patient=case.patient_id, path=err.path,
                              fix="add the series, or use a checkpoint trained without it "
                                  "(mrparotid ablate --channels ...)") from None
    study = load_study(case, mode="all", files=files, roles_file=roles_file)
    if series_mask == "tumour" and (study.tumour is None or not study.tumour.any()):
        raise InputError("the checkpoint zeroes the series outside the tumour (series_mask: tumour) "
                         "but the patient has no tumour mask", patient=case.patient_id,
                         path=case.patient_dir, fix="add tumour.nii.gz, or use a checkpoint trained "
                         "with --data.series_mask none")
    slices = slices_of_study(study, case.diagnosis, meta["preprocess"], mode="all")
    x = select_channels(slices.crops, channels, series_mask)
    probs = predict_probs(loaded.model, x)
    rule_n = int(meta.get("rule", {}).get("malignant_min_slices", 2))
    decision = decide_patient(probs, rule_n)
    order = np.lexsort((slices.slice_index, slices.sides))
    tumour_on_slice = slices.crops[:, PLANES.index("tumour")].reshape(len(slices), -1).any(1)
    rows = []
    for i in order:
        row = {"side": str(slices.sides[i]), "index": int(slices.slice_index[i]),
               "z_mm": round(float(slices.z_mm[i]), 2), "pred": CLASSES[int(probs[i].argmax())],
               "probs": {c: round(float(p), 4) for c, p in zip(CLASSES, probs[i])}}
        if study.tumour is not None:
            row["tumour_in_mask"] = bool(tumour_on_slice[i])
        if slices.labels[i] != UNLABELLED:
            row["true"] = CLASSES[int(slices.labels[i])]
        rows.append(row)
    report = {"patient_id": case.patient_id, "diagnosis": decision.diagnosis, "counts": decision.counts,
              "slices": rows, "rule": decision.trace,
              "model": {"checkpoint": str(loaded.path), "channels": list(channels),
                        "config_hash": meta.get("config_hash")},
              "synthetic": bool(meta.get("synthetic", False)) or _synthetic_dir(case.patient_dir)}
    if case.diagnosis:
        report["true_diagnosis"] = case.diagnosis
    return report


def _synthetic_dir(patient_dir: Path) -> bool:
    return any((p / "SYNTHETIC.txt").exists() for p in list(Path(patient_dir).parents)[:3])


def format_report(report: dict) -> str:
    """Short human summary: diagnosis, counts, per-slice table."""
    lines = []
    if report.get("synthetic"):
        lines.append("[SYNTHETIC data or model - not a clinical result]")
    lines.append(f"patient {report['patient_id']}: {report['diagnosis'].replace('_', ' ')}"
                 + (f"   (manifest: {report['true_diagnosis']})" if report.get("true_diagnosis") else ""))
    counts = report["counts"]
    lines.append("slices by predicted class: " + ", ".join(f"{c} {counts[c]}" for c in CLASSES))
    rule = report["rule"]
    lines.append(f"rule: > {rule.get('malignant_min_slices')} malignant slices -> malignant; "
                 f"decided by {rule.get('branch')}")
    with_truth = any("true" in s or "tumour_in_mask" in s for s in report["slices"])
    truth_head = f"{'true (from masks)':<20} " if with_truth else ""
    lines.append(f"{'side':>4} {'k':>3} {'z_mm':>7}  {'pred':<20} {truth_head}"
                 + " ".join(f"{'p_' + c[:6]:>8}" for c in CLASSES))
    for s in report["slices"]:
        known = s.get("true") or ("tumour" if s.get("tumour_in_mask") else "-")
        truth = f"{known:<20} " if with_truth else ""
        lines.append(f"{s['side']:>4} {s['index']:>3} {s['z_mm']:>7.1f}  {s['pred']:<20} {truth}"
                     + " ".join(f"{s['probs'][c]:>8.3f}" for c in CLASSES))
    lines.append("research software, not a medical device")
    return "\n".join(lines)
