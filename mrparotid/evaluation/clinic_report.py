"""Markdown of the clinic-path scores (:func:`mrparotid.evaluation.clinic.score_clinic`):
``clinic.md``, also appended to the evaluation's ``report.md``. Pure formatting."""

from __future__ import annotations

from mrparotid.evaluation.plots import pretty_class
from mrparotid.evaluation.report import SYNTHETIC_BANNER, fmt_rate

SEG_TITLES = {"gland_dice": "gland Dice", "tumour_dice": "tumour Dice",
              "gland_hd95_mm": "gland HD95 (mm)", "tumour_hd95_mm": "tumour HD95 (mm)"}


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _diagnosis(d: str) -> str:
    return d.replace("_", " ") if d in ("no_tumour_found", "no_gland_found") else pretty_class(d)


def clinic_markdown(result: dict, *, banner: bool = True) -> str:
    """The clinic section: Table 5 twice, changed diagnoses, segmentation and detection."""
    g, a = result["settings"]["given"], result["settings"]["auto"]
    out = [SYNTHETIC_BANNER, ""] if banner and result.get("synthetic") else []
    out += ["## Clinic path: automatic masks beside the manifest's masks", "",
            f"{result['n_patients']} {result.get('split', 'test')} patients of the run "
            f"(`{result.get('checkpoint', '')}`), segmenter `{result.get('segmenter', '')}`. Both "
            "columns select, crop and count slices by the one slice procedure (the tumour slices of "
            "the tumour side, every gland slice of a side without tumour) and apply the patient "
            "rule; they differ only in where the masks come from. A patient whose automatic masks "
            "hold no tumour is called `no tumour found` (a miss); one without any gland found, "
            "`no gland found` (a miss).", ""]
    out += [f"> **Warning:** {w}." for w in result.get("warnings", [])] + ([""] if result.get("warnings") else [])
    out += ["### Table 5, patient rule", "",
            "| diagnosis | patients | correct, manifest masks (paper) | correct, automatic masks (clinic) |",
            "|---|---|---|---|"]
    for k, r in g["table5"].items():
        out.append(f"| {pretty_class(k)} | {r['patients']} | {r['correct']} | {a['table5'][k]['correct']} |")
    out += ["", "| patients (positive class: malignant) | manifest masks | automatic masks |",
            "|---|---|---|",
            f"| exact diagnosis accuracy | {fmt_rate(g['accuracy'])} | {fmt_rate(a['accuracy'])} |"]
    for key in ("sensitivity", "specificity"):
        out.append(f"| benign vs malignant {key} | {fmt_rate(g['benign_vs_malignant'][key])} | "
                   f"{fmt_rate(a['benign_vs_malignant'][key])} |")
    out += answer_rows(result.get("answers"))
    out += ["", f"Accuracy with automatic minus manifest masks: {result['accuracy_difference']:+.3f}. "
            "Patient-level CIs: Wilson score.", "", "### Diagnoses that change", ""]
    out += [f"- {c['patient_id']}: true {pretty_class(c['true'])}; manifest masks "
            f"{_diagnosis(c['given'])}, automatic masks {_diagnosis(c['auto'])}"
            for c in result["changed"]] or ["- none"]
    seg = result["segmentation"]
    out += ["", "### Segmentation: automatic vs manifest masks (3-D, T1 grid)", "",
            "| score | mean [95% CI] | patients | undefined |", "|---|---|---|---|"]
    for key, title in SEG_TITLES.items():
        s = seg[key]
        ci = "" if s["mean"] is None else f" [{_num(s['lo'], 2 if 'hd95' in key else 3)}, " \
                                          f"{_num(s['hi'], 2 if 'hd95' in key else 3)}]"
        out.append(f"| {title} | {_num(s['mean'], 2 if 'hd95' in key else 3)}{ci} | {s['n']} | "
                   f"{s['undefined']} |")
    out += ["", "CIs: patient bootstrap (B = 2000, seed 0) of the mean over patients. HD95: the 95th "
            "percentile of the symmetric surface distance (MONAI), in mm; undefined when either "
            "mask is empty.", ""]
    det = result["detection"]
    out += ["### Side-level tumour detection", "",
            f"{det['sides']} sides; a side is positive when the manifest's tumour mask has voxels on "
            "it, and its tumour is found only when the automatic tumour mask overlaps it. A false "
            "alarm is an automatic tumour component that touches no manifest tumour voxel. A side "
            "is right when its tumour is found without a false alarm, or when it has no tumour and "
            "no automatic tumour. Wilson 95% CIs (sides counted as independent).", "",
            "| | rate [95% CI] (k/n) |", "|---|---|",
            f"| found (sensitivity) | {fmt_rate(det['sensitivity'])} |",
            f"| false alarm (sides with one) | {fmt_rate(det['false_alarm_rate'])} |",
            f"| specificity | {fmt_rate(det['specificity'])} |",
            f"| accuracy | {fmt_rate(det['accuracy'])} |", "",
            f"Missed tumours: {', '.join(det['missed']) or 'none'}. "
            f"False alarms: {', '.join(det['false_alarms']) or 'none'}.", "",
            "### Per patient", "",
            "| patient | true | manifest masks | automatic masks | gland Dice | tumour Dice | "
            "gland HD95 | tumour HD95 | tumour (true/found) per side |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["patients"]:
        sides = ", ".join(f"{s} {'Y' if v['tumour'] else 'N'}/{'Y' if v['found'] else 'N'}"
                          for s, v in sorted(r["sides"].items()))
        out.append(f"| {r['patient_id']} | {pretty_class(r['true'])} | {_diagnosis(r['given_diagnosis'])} | "
                   f"{_diagnosis(r['auto_diagnosis'])} | {_num(r['gland_dice'])} | {_num(r['tumour_dice'])} | "
                   f"{_num(r['gland_hd95_mm'], 2)} | {_num(r['tumour_hd95_mm'], 2)} | {sides} |")
    return "\n".join(out) + "\n"


def _undefined(s: dict) -> str:
    """`` over N patients (K with an empty mask: no HD95)`` when some patients have no value."""
    if not s.get("undefined"):
        return ""
    return f" over {s['n']} patients ({s['undefined']} with an empty mask: no HD95)"


ANSWER_ROWS = (("coverage (answered)", "coverage"), ("refer rate", "refer"),
               ("accuracy among the answered", "accuracy"),
               ("malignant sensitivity among the answered", "sensitivity"),
               ("specificity among the answered", "specificity"))


def answer_rows(answers: dict | None) -> list[str]:
    """The answer (the checkpoint's decision record) in both settings, with Wilson CIs."""
    if not answers:
        return []
    out = ["", "### The answer (decision record of the checkpoint)", "",
           "| patients | manifest masks | automatic masks |", "|---|---|---|"]
    out += [f"| {name} | {fmt_rate(answers['given'][key])} | {fmt_rate(answers['auto'][key])} |"
            for name, key in ANSWER_ROWS]
    return out


def clinic_lines(result: dict) -> list[str]:
    """The few lines ``evaluate``/``fit`` print: accuracy in both settings, Dice, detection."""
    g, a = result["settings"]["given"]["accuracy"], result["settings"]["auto"]["accuracy"]
    seg, det = result["segmentation"], result["detection"]
    lines = ["[SYNTHETIC data - figures say nothing about clinical accuracy]"] if result.get("synthetic") else []
    lines += [f"clinic path ({result['n_patients']} {result.get('split', 'test')} patients): patient "
              f"accuracy (rule) with manifest masks {fmt_rate(g)}, with automatic masks {fmt_rate(a)}; "
              f"difference {result['accuracy_difference']:+.3f}; {len(result['changed'])} diagnosis(es) change",
              f"segmenter: gland Dice {_num(seg['gland_dice']['mean'])}, tumour Dice "
              f"{_num(seg['tumour_dice']['mean'])}, tumour HD95 {_num(seg['tumour_hd95_mm']['mean'], 2)} mm"
              f"{_undefined(seg['tumour_hd95_mm'])}; "
              f"side-level tumour detection: found {det['sensitivity']['k']}/{det['sensitivity']['n']} "
              f"tumour sides, false alarms on {len(det['false_alarms'])} of {det['sides']} sides, "
              f"accuracy {fmt_rate(det['accuracy'])}"]
    for key, words in (("given", "manifest masks"), ("auto", "automatic masks")):
        r = (result.get("answers") or {}).get(key)
        if r:
            lines.append(f"answer, {words}: coverage {fmt_rate(r['coverage'])}, accuracy among answered "
                         f"{fmt_rate(r['accuracy'])}, malignant sensitivity {fmt_rate(r['sensitivity'])}")
    return lines + [f"WARNING: {w}" for w in result.get("warnings", [])]
