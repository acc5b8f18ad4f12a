"""Patient folder + checkpoint → slice probabilities → patient decision → report (JSON/text).

Reports carry the patient id from the folder name or manifest, never names or ids from DICOM
headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrparotid.constants import CLASSES
from mrparotid.data.grid import Study
from mrparotid.data.preprocess import PatientSlices
from mrparotid.decision.rule import PatientDecision
from mrparotid.inference.answer import answer_lines, answer_report
from mrparotid.errors import InputError, MissingSeriesError
from mrparotid.inference.missing import missing_series, missing_series_error, read_series, required_series
from mrparotid.io.manifest import PatientCase
from mrparotid.inference.masks import Segmenter, StudyMasks
from mrparotid.models.checkpoint import LoadedModel
from mrparotid.data.labels import UNLABELLED


#: Report note: ``series_mask: gland`` on a patient without a tumour mask.
GLAND_WITHOUT_TUMOUR = ("no tumour mask: the model was trained on series zeroed outside gland ∪ tumour "
                        "(series_mask: gland); the tumour's extent is unknown here, so the series are "
                        "kept whole instead of blanking the tumour")

#: Report note: the procedure's view on a patient whose given tumour mask is empty.
EMPTY_TUMOUR_MASK = "the tumour mask is empty: no tumour slice, so no tumour diagnosis"

#: How the text report names a mask's source.
SOURCE_WORDS = {"given": "given (patient folder)", "auto": "AUTOMATIC (segmenter)", "none": "none"}

#: Short column heads of the per-slice table, by class.
SHORT = {"no_tumour": "p_none", "pleomorphic_adenoma": "p_PA", "warthin": "p_Warthin",
         "malignant": "p_malig"}

LEGEND = ("true: the slice's class from the tumour mask and the manifest diagnosis; 'tumour' = "
          "tumour in the mask, diagnosis not given; 'tumour (auto)' = tumour in the segmenter's "
          "mask, not a truth; '-' = not known (no tumour mask, or a tumour-side slice without "
          "tumour)")


def truth_cell(row: dict, report: dict) -> str:
    """The 'true' cell of a slice row: its known class, ``tumour`` (in the given tumour mask),
    ``tumour (auto)`` (in the segmenter's mask: never shown as a truth) or ``-``."""
    if row.get("true"):
        return row["true"]
    if not row.get("tumour_in_mask"):
        return "-"
    return "tumour (auto)" if report.get("masks", {}).get("tumour") == "auto" else "tumour"


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
    #: The model's series the patient lacks (a series-dropout model only; their planes in ``x``
    #: are 0) and the present flags over ``loaded.series_flags`` (bool (k,); k = 0 without
    #: dropout) that the model gets beside ``x`` (``predict_probs(..., present=...)``).
    missing_series: tuple[str, ...] = ()
    present: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: Where the masks came from (given/auto), tumour found per side, warnings; and the view of
    #: the slices: ``"procedure"`` or ``"screening"`` (``--all-slices``).
    masks: StudyMasks | None = None
    view: str = "procedure"


def predict_patient(case: PatientCase, loaded: LoadedModel, *, roles_file: str | Path | None = None,
                    hint: str = "manifest", segmenter: Segmenter | None = None,
                    all_slices: bool = False) -> PatientEvidence:
    """Read one patient, take its masks (from the folder, else from ``segmenter``), cut the
    slices of the slice procedure (``all_slices``: every gland slice, the screening view), predict
    them and apply the patient rule (:func:`mrparotid.inference.procedure.predict_study`).
    ``hint``: where the folder was named, ``"manifest"`` or ``"folder"`` (command line), for a
    missing-folder fix."""
    from mrparotid.data.preprocess import load_study, patient_files
    from mrparotid.inference.masks import NO_TUMOUR_BY_SEGMENTER, resolve_masks
    from mrparotid.inference.procedure import SCREENING_NOTE, predict_study

    series_mask = loaded.meta.get("series_mask", "none")
    try:
        files = patient_files(case, require_tumour=False, series=required_series(loaded), hint=hint,
                              require_gland=False)
    except MissingSeriesError as err:
        raise missing_series_error(err, case, loaded) from None
    read = load_study(case, mode="diagnose", files=files, roles_file=roles_file, require_gland=False,
                      read_series=read_series(loaded))
    missing = missing_series(case, loaded, read.series)    # only a series-dropout model allows any
    masks = resolve_masks(read, segmenter, need_tumour=not all_slices)
    study = masks.study
    tumour_known = study.tumour is not None and bool(study.tumour.any())
    if series_mask == "tumour" and masks.source["tumour"] != "auto" and not tumour_known:
        raise InputError("the checkpoint zeroes the series outside the tumour (series_mask: tumour) "
                         "but the patient has no tumour mask", patient=case.patient_id,
                         path=case.patient_dir, fix="add tumour.nii.gz, pass --segmenter SEG, or use "
                         "a checkpoint trained with --data.series_mask none")
    given_tumour = masks.source["tumour"] == "given"
    pred = predict_study(study, loaded, case.diagnosis if given_tumour else None,
                         all_slices=all_slices, labelled=masks.source["tumour"] != "auto")
    notes = ([SCREENING_NOTE] if all_slices else []) + list(read.notes)   # e.g. interpolated DICOM slices
    if series_mask == "gland" and not tumour_known:
        notes.append(GLAND_WITHOUT_TUMOUR)
    if masks.source["tumour"] == "auto" and not tumour_known:
        notes.append(NO_TUMOUR_BY_SEGMENTER)
    elif given_tumour and not tumour_known and not all_slices:
        notes.append(EMPTY_TUMOUR_MASK)
    return PatientEvidence(case, study, pred.slices, pred.x, pred.probs, pred.decision, tuple(notes),
                           missing_series=missing, present=pred.present, masks=masks, view=pred.view)


def slice_rows(evidence: PatientEvidence) -> list[dict]:
    """The per-slice table of the report, ordered by side then slice index."""
    slices, probs, study = evidence.slices, evidence.probs, evidence.study
    order = np.lexsort((slices.slice_index, slices.sides))
    tumour_on_slice = slices.tumour_on_slices   # 0 slices: ok
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


def tumour_on_slices(evidence: PatientEvidence) -> np.ndarray | None:
    """Bool (n,): the slices the tumour mask marks; None when the study has no tumour mask."""
    if evidence.study.tumour is None:
        return None
    return evidence.slices.tumour_on_slices


def build_report(evidence: PatientEvidence, loaded: LoadedModel, decision_cfg: dict | None = None) -> dict:
    """The report dict. First the answer (:func:`mrparotid.inference.answer.answer_report`:
    ``answer, answer_reason, headline, p_malignant, decision``), then ``patient_id, diagnosis``
    (the paper's rule), ``counts, slices, rule, model, synthetic`` (+ ``notes``,
    ``true_diagnosis`` when known). ``decision_cfg``: the ``decision:`` config (segmenter floors)."""
    case, decision, meta = evidence.case, evidence.decision, loaded.meta
    report = {"patient_id": case.patient_id, "diagnosis": decision.diagnosis, "counts": decision.counts,
              "slices": slice_rows(evidence), "rule": decision.trace,
              "model": {"checkpoint": str(loaded.path), "channels": list(loaded.channels),
                        "config_hash": meta.get("config_hash")},
              "synthetic": bool(meta.get("synthetic", False)) or _synthetic_dir(case.patient_dir)}
    if evidence.notes:
        report["notes"] = list(evidence.notes)
    report["missing_series"] = list(evidence.missing_series)    # [] when every series is there
    report = {**answer_report(evidence, loaded, tumour_on_slices(evidence), decision_cfg), **report}
    report.update(mask_report(evidence))
    if report["decision"].get("temperature_note"):     # calibration not identified on validation
        report["warnings"] = [*report.get("warnings", []), report["decision"]["temperature_note"]]
    report["model"]["series_dropout"] = float(meta.get("series_dropout", 0.0))
    if case.diagnosis:
        report["true_diagnosis"] = case.diagnosis
    return report


def diagnose_case(case: PatientCase, loaded: LoadedModel, *, roles_file: str | Path | None = None,
                  hint: str = "manifest", segmenter: Segmenter | None = None,
                  all_slices: bool = False, decision_cfg: dict | None = None) -> dict:
    """:func:`predict_patient` then :func:`build_report`: the report dict of one patient."""
    return build_report(predict_patient(case, loaded, roles_file=roles_file, hint=hint,
                                        segmenter=segmenter, all_slices=all_slices), loaded, decision_cfg)


def mask_report(evidence: PatientEvidence) -> dict:
    """The report's ``view`` (``procedure``/``screening``), ``masks`` (role → ``given``/``auto``/
    ``none``), ``tumour_found`` (side → bool, null without a tumour mask), ``warnings`` and, when a
    mask is automatic, ``segmenter`` (its checkpoint)."""
    masks = evidence.masks
    out = {"view": evidence.view}
    if masks is None:
        return out
    out.update(masks=dict(masks.source), tumour_found=dict(masks.tumour_found),
               warnings=list(masks.warnings))
    if masks.automatic:
        out["segmenter"] = {"checkpoint": str(masks.segmenter_path)}
    return out


def mask_lines(report: dict) -> list[str]:
    """Text-report lines: which masks are automatic, tumour per side, warnings, the view."""
    lines = []
    if report.get("view") == "screening":
        lines.append("view: SCREENING (--all-slices): every gland slice predicted")
    masks = report.get("masks")
    if masks:
        auto = [r for r, s in masks.items() if s == "auto"]
        lines.append("masks: " + ", ".join(f"{r} {SOURCE_WORDS[s]}" for r, s in masks.items())
                     + (f" (segmenter {report['segmenter']['checkpoint']})" if auto else ""))
        found = report.get("tumour_found", {})
        if any(v is not None for v in found.values()):
            lines.append("tumour found: " + ", ".join(
                f"side {s} {'yes' if v else 'no'}" for s, v in sorted(found.items())))
    lines.extend(f"WARNING: {w}" for w in report.get("warnings", []))
    return lines


def _synthetic_dir(patient_dir: Path) -> bool:
    return any((p / "SYNTHETIC.txt").exists() for p in list(Path(patient_dir).parents)[:3])


def format_report(report: dict) -> str:
    """Short human summary: diagnosis, counts, per-slice table."""
    lines = [f"patient {report['patient_id']}: {report['headline']}" if "headline" in report else
             f"patient {report['patient_id']}: {report['diagnosis'].replace('_', ' ')}"]
    if report.get("synthetic"):
        lines.append("[SYNTHETIC data or model - not a clinical result]")
    lines.append(f"the paper's rule: {report['diagnosis'].replace('_', ' ')}"
                 + (f"   (manifest: {report['true_diagnosis']})" if report.get("true_diagnosis") else ""))
    counts = report["counts"]
    lines.append("slices by predicted class: " + ", ".join(f"{c} {counts[c]}" for c in CLASSES))
    rule = report["rule"]
    lines.append(f"rule: > {rule.get('malignant_min_slices')} malignant slices -> malignant; "
                 f"decided by {rule.get('branch')}")
    if report.get("missing_series"):
        lines.append(f"missing series: {', '.join(report['missing_series'])} (answered without "
                     "it by a model trained with series dropout; its input is zero, flagged absent)")
    lines.extend(mask_lines(report))
    lines.extend(answer_lines(report) if "answer" in report else [])
    lines.extend(f"note: {n}" for n in report.get("notes", []))
    with_truth = any("true" in s or "tumour_in_mask" in s for s in report["slices"])
    truth_head = f"{'true':<20} " if with_truth else ""
    lines.append(f"{'side':>4} {'k':>3} {'z_mm':>7}  {'pred':<20} {truth_head}"
                 + " ".join(f"{SHORT[c]:>9}" for c in CLASSES))
    for s in report["slices"]:
        truth = f"{truth_cell(s, report):<20} " if with_truth else ""
        lines.append(f"{s['side']:>4} {s['index']:>3} {s['z_mm']:>7.1f}  {s['pred']:<20} {truth}"
                     + " ".join(f"{s['probs'][c]:>9.3f}" for c in CLASSES))
    lines.append("p_*: probability of no tumour, pleomorphic adenoma (PA), Warthin tumour, malignant")
    if with_truth:
        lines.append(LEGEND)
    lines.append("research software, not a medical device")
    return "\n".join(lines)
