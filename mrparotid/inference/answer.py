"""The answer of one diagnosed patient, for every output (JSON, text, page): the decision
record's answer (:func:`mrparotid.decision.apply.apply_decision`) made to fail closed where the
automatic masks are not trusted, its operating point and validation counts, the paper's rule
beside it, and one headline that says both."""

from __future__ import annotations

import functools

from mrparotid.decision.apply import REFER, apply_decision
from mrparotid.decision.record import DEFAULTS, record_of
from mrparotid.inference.trust import segmenter_reasons, training_note


def _words(diagnosis: str) -> str:
    return diagnosis.replace("_", " ")


def headline(answer: dict, rule: str) -> str:
    """``ANSWER: malignant (p(malignant) 0.912)  |  the paper's rule: malignant``; a refer names its
    reason, and a disagreement with the rule is said."""
    p = answer.get("p_malignant")
    prob = f"p(malignant) {p:.3f}" if p is not None else "p(malignant) n/a"
    said = answer["answer"]
    text = (f"ANSWER: REFER to a radiologist ({answer['reason']})" if said == REFER else
            f"ANSWER: {_words(said)} ({prob})")
    agree = said == rule
    text += f"  |  the paper's rule: {_words(rule)}" + ("" if agree or said == REFER else " (disagrees)")
    return text


def trusted_answer(probs, tumour_slices, record, rule: str, masks, study,
                   decision_cfg: dict | None = None) -> dict:
    """The record's answer (:func:`apply_decision`, as a dict) made ``refer`` where the automatic
    masks (``masks``: :class:`~mrparotid.inference.masks.StudyMasks` or None) are not trusted
    (:func:`mrparotid.inference.trust.segmenter_reasons`, floors from ``decision_cfg`` or the
    defaults): the one answer ``diagnose`` and the clinic scoring give."""
    a = apply_decision(probs, tumour_slices, record, rule).to_dict()
    if masks is not None and masks.automatic and masks.segmenter_path is not None:
        dc = {**DEFAULTS, **(decision_cfg or {})}
        floors = {"gland": dc["min_seg_dice_gland"], "tumour": dc["min_seg_dice_tumour"]}
        why = segmenter_reasons(masks.segmenter_path, floors,
                                study.gland if masks.source.get("gland") == "auto" else None,
                                tuple(study.spacing))
        if why:
            a.update(answer=REFER, reason="automatic masks not reliable: " + "; ".join(why))
    return a


def answer_report(evidence, loaded, tumour_slices, decision_cfg: dict | None = None) -> dict:
    """The report's answer keys: ``answer``, ``answer_reason``, ``headline``, ``p_malignant``,
    ``decision`` (operating point text, validation counts, temperature, aggregation, which record
    and from which checkpoint) and ``answer_notes`` (a training patient, an untrusted segmenter)."""
    meta = loaded.meta
    record = record_of(meta, loaded.path)
    rule = evidence.decision.diagnosis
    a = trusted_answer(evidence.probs, tumour_slices, record, rule, evidence.masks, evidence.study,
                       decision_cfg)
    notes = []
    trained = training_note(evidence.case.patient_id, meta)
    if trained:
        notes.append(trained)
    decision = {"record": (f"{loaded.path.name}'s own (chosen on its validation predictions)" if record else
                           f"none: {loaded.path.name} carries no decision record"),
                "operating_point": record.operating_point() if record else "not validated",
                "validated": bool(record and record.validated)}
    if record:
        decision.update(temperature=record.temperature, aggregation=record.aggregation, lo=record.lo,
                        hi=record.hi, sensitivity=record.sensitivity, specificity=record.specificity,
                        n_val_malignant=record.n_val_malignant, n_val_benign=record.n_val_benign,
                        masks=record.masks, temperature_note=record.temperature_note)
    out = {"answer": a["answer"], "answer_reason": a["reason"], "headline": headline(a, rule),
           "p_malignant": a["p_malignant"], "decision": decision,
           "tumour_slices": {"source": a["tumour_slices"], "n": a["n_tumour_slices"]}}
    figures = list(validated_figures(str(loaded.path)))
    if figures:
        decision["test_figures"] = figures
    if notes:
        out["answer_notes"] = notes
    return out


def validated_figures(checkpoint: str) -> tuple[str, ...]:
    """The run's test figures of the answer and the rule, with CIs, from ``evaluation/metrics.json``
    beside the checkpoint's run folder (() when there is none); read once per version of that
    file, not once per patient."""
    from pathlib import Path

    metrics = Path(checkpoint).resolve().parent.parent / "evaluation" / "metrics.json"
    try:
        stamp = metrics.stat().st_mtime_ns
    except OSError:
        return ()
    return _figures_of(str(metrics), stamp)


@functools.lru_cache(maxsize=8)
def _figures_of(metrics_json: str, stamp: int) -> tuple[str, ...]:
    import json
    from pathlib import Path

    try:
        m = json.loads(Path(metrics_json).read_text(encoding="utf-8"))
        rates = m["answer"]["patient"]["rates"]
        rule = m["patient"]["rule"]["accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return ()

    def rate(r: dict) -> str:
        return (f"{r['estimate']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({r['k']}/{r['n']})" if r.get("n")
                and r.get("estimate") is not None else "n/a")

    return (f"test patients: answer accuracy among the answered {rate(rates['accuracy'])}, coverage "
            f"{rate(rates['coverage'])}, malignant sensitivity among the answered {rate(rates['sensitivity'])}",
            f"test patients: the paper's rule accuracy {rate(rule)} (Wilson 95% CIs)")


def answer_lines(report: dict) -> list[str]:
    """The text report's lines under the headline: the operating point and the answer's notes."""
    d = report.get("decision") or {}
    lines = [f"operating point: {d.get('operating_point', 'not validated')} [{d.get('record', '')}]"]
    if d.get("temperature") is not None:
        ts = report.get("tumour_slices") or {}
        lines.append(f"p(malignant): {str(d.get('aggregation', '')).replace('_', '-')} of {ts.get('n', 0)} "
                     f"{ts.get('source', '')} slice(s) at temperature {d['temperature']:.2f}")
    lines += [f"model, {f}" for f in d.get("test_figures", [])]
    lines += [f"note: {n}" for n in report.get("answer_notes", [])]
    return lines
