"""Patient folder + checkpoint → slice probabilities → patient decision → report (JSON/text).

Reports carry the patient id from the folder name or manifest, never names or ids from DICOM
headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrparotid.constants import CLASSES, SERIES
from mrparotid.data.grid import Study
from mrparotid.data.preprocess import PatientSlices
from mrparotid.inference.decide import PatientDecision, decide_patient
from mrparotid.errors import CheckpointError, InputError, MissingSeriesError
from mrparotid.io.manifest import PatientCase
from mrparotid.inference.predict import predict_probs
from mrparotid.models.checkpoint import LoadedModel
from mrparotid.data.crops import PLANES, select_channels
from mrparotid.data.labels import UNLABELLED


#: Report note: ``series_mask: gland`` on a patient without a tumour mask.
GLAND_WITHOUT_TUMOUR = ("no tumour mask: the model was trained on series zeroed outside gland ∪ tumour "
                        "(series_mask: gland); the tumour's extent is unknown here, so the series are "
                        "kept whole instead of blanking the tumour")

#: Short column heads of the per-slice table, by class.
SHORT = {"no_tumour": "p_none", "pleomorphic_adenoma": "p_PA", "warthin": "p_Warthin",
         "malignant": "p_malig"}

LEGEND = ("true: the slice's class from the tumour mask and the manifest diagnosis; 'tumour' = "
          "tumour in the mask, diagnosis not given; '-' = not known (no tumour mask, or a "
          "tumour-side slice without tumour)")


@dataclass(frozen=True)
class PatientEvidence:
    """What a diagnosis rests on: the study on the T1 grid, the predicted slices (crops in
    :data:`PLANES` order), the model input ``x`` (uint8, n, C, H, W), the slice probabilities
    (float64, n, 4) and the patient decision. Heat maps, montages and the HTML page start here."""

    case: PatientCase
    study: Study
    slices: PatientSlices
    x: np.ndarray
    probs: np.ndarray
    decision: PatientDecision
    notes: tuple[str, ...] = ()


def predict_patient(case: PatientCase, loaded: LoadedModel, *, roles_file: str | Path | None = None,
                    hint: str = "manifest") -> PatientEvidence:
    """Read one patient, cut its slices, predict them and apply the patient rule. ``hint``: where
    the folder was named, ``"manifest"`` or ``"folder"`` (command line), for a missing-folder fix."""
    from mrparotid.data.preprocess import load_study, patient_files, slices_of_study

    meta = loaded.meta
    channels = loaded.channels
    needed = tuple(c for c in channels if c in SERIES)
    series_mask = meta.get("series_mask", "none")
    try:
        files = patient_files(case, require_tumour=False, series=needed, hint=hint)
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
    tumour_known = study.tumour is not None and bool(study.tumour.any())
    x = select_channels(slices.crops, channels, series_mask, tumour_known=tumour_known,
                        **meta.get("channel_options", {}))
    probs = predict_probs(loaded.model, x)
    rule_n = int(meta.get("rule", {}).get("malignant_min_slices", 2))
    notes = (GLAND_WITHOUT_TUMOUR,) if series_mask == "gland" and not tumour_known else ()
    return PatientEvidence(case, study, slices, np.asarray(x), probs, decide_patient(probs, rule_n),
                           notes)


def slice_rows(evidence: PatientEvidence) -> list[dict]:
    """The per-slice table of the report, ordered by side then slice index."""
    slices, probs, study = evidence.slices, evidence.probs, evidence.study
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
    return rows


def build_report(evidence: PatientEvidence, loaded: LoadedModel) -> dict:
    """The report dict: ``patient_id, diagnosis, counts, slices, rule, model, synthetic``
    (+ ``notes``, ``true_diagnosis`` when known)."""
    case, decision, meta = evidence.case, evidence.decision, loaded.meta
    report = {"patient_id": case.patient_id, "diagnosis": decision.diagnosis, "counts": decision.counts,
              "slices": slice_rows(evidence), "rule": decision.trace,
              "model": {"checkpoint": str(loaded.path), "channels": list(loaded.channels),
                        "config_hash": meta.get("config_hash")},
              "synthetic": bool(meta.get("synthetic", False)) or _synthetic_dir(case.patient_dir)}
    if evidence.notes:
        report["notes"] = list(evidence.notes)
    if case.diagnosis:
        report["true_diagnosis"] = case.diagnosis
    return report


def diagnose_case(case: PatientCase, loaded: LoadedModel, *, roles_file: str | Path | None = None,
                  hint: str = "manifest") -> dict:
    """:func:`predict_patient` then :func:`build_report`: the report dict of one patient."""
    return build_report(predict_patient(case, loaded, roles_file=roles_file, hint=hint), loaded)


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
    lines.extend(f"note: {n}" for n in report.get("notes", []))
    with_truth = any("true" in s or "tumour_in_mask" in s for s in report["slices"])
    truth_head = f"{'true':<20} " if with_truth else ""
    lines.append(f"{'side':>4} {'k':>3} {'z_mm':>7}  {'pred':<20} {truth_head}"
                 + " ".join(f"{SHORT[c]:>9}" for c in CLASSES))
    for s in report["slices"]:
        known = s.get("true") or ("tumour" if s.get("tumour_in_mask") else "-")
        truth = f"{known:<20} " if with_truth else ""
        lines.append(f"{s['side']:>4} {s['index']:>3} {s['z_mm']:>7.1f}  {s['pred']:<20} {truth}"
                     + " ".join(f"{s['probs'][c]:>9.3f}" for c in CLASSES))
    lines.append("p_*: probability of no tumour, pleomorphic adenoma (PA), Warthin tumour, malignant")
    if with_truth:
        lines.append(LEGEND)
    lines.append("research software, not a medical device")
    return "\n".join(lines)
