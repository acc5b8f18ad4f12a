"""The clinic path scored: a run's test patients diagnosed by the one slice procedure twice, with
the manifest's masks (the paper's setting) and with automatic masks from a segmenter (the
clinic's), side by side; plus how well the segmenter contours and finds the tumours.

Per patient: the rule's diagnosis in both settings, gland and tumour Dice (3-D, on the T1 grid)
and HD95 in mm (:mod:`mrparotid.segmentation.metrics`, MONAI). Per side
(:func:`mrparotid.segmentation.detection.side_detection`): tumour present (manifest masks), found
(the automatic tumour overlaps it) and false alarm (an automatic tumour component that touches no
manifest tumour voxel). Summaries: Table 5 for both settings, the patients whose
diagnosis changes, mean Dice/HD95 with patient-bootstrap 95 % CIs, side-level detection
sensitivity/specificity/accuracy with Wilson CIs. The markdown is :mod:`.clinic_report`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrparotid.constants import CLASSES
from mrparotid.data.sides import side_regions
from mrparotid.errors import InputError, ManifestError
from mrparotid.evaluation import stats
from mrparotid.evaluation.bootstrap import patient_bootstrap_ci

#: The two settings, as the report names them.
SETTINGS: dict[str, str] = {"given": "manifest masks (paper setting)",
                            "auto": "automatic masks (clinic setting)"}

#: The diagnosis recorded when the segmenter finds no gland (the clinic path stops with an error).
NO_GLAND = "no_gland_found"

SEG_KEYS: tuple[str, ...] = ("gland_dice", "tumour_dice", "gland_hd95_mm", "tumour_hd95_mm")


def score_patient(case, loaded, segmenter, *, roles_file: str | Path | None = None,
                  record=None) -> dict:
    """One test patient in both settings (see the module docstring): a flat record plus
    ``sides`` {side: {"tumour", "auto", "found", "false_alarm": bool}}. ``record``: the
    checkpoint's decision record, when the caller has it parsed already."""
    from mrparotid.data.preprocess import load_study
    from mrparotid.inference.masks import resolve_masks
    from mrparotid.inference.missing import read_series
    from mrparotid.inference.procedure import predict_study
    from mrparotid.segmentation.detection import side_detection
    from mrparotid.segmentation.metrics import patient_scores

    from mrparotid.decision.apply import REFER
    from mrparotid.decision.record import record_of

    if record is None:
        record = record_of(loaded.meta, loaded.path)
    study = load_study(case, mode="train", roles_file=roles_file, read_series=read_series(loaded))
    given = predict_study(study, loaded, case.diagnosis)
    row = {"patient_id": case.patient_id, "true": case.diagnosis,
           "given_diagnosis": given.decision.diagnosis, "given_slices": len(given.slices),
           "given_answer": answer_of(given, record), "auto_answer": REFER}
    try:
        masks = resolve_masks(study, segmenter, use_given=False)
    except InputError as err:          # no gland found: the clinic path stops for this patient
        empty = np.zeros(study.shape, np.uint8)
        auto_gland, auto_tumour = empty, empty
        row.update(auto_diagnosis=NO_GLAND, auto_slices=0, note=err.message)
    else:
        auto = predict_study(masks.study, loaded, case.diagnosis)
        auto_gland, auto_tumour = masks.study.gland, masks.study.tumour
        row.update(auto_diagnosis=auto.decision.diagnosis, auto_slices=len(auto.slices),
                   auto_answer=answer_of(auto, record, masks), note="; ".join(masks.warnings))
    row.update(patient_scores(auto_gland, auto_tumour, study.gland, study.tumour, study.spacing))
    row["sides"] = side_detection(auto_tumour, study.tumour, side_regions(study))
    return row


def answer_of(pred, record, masks=None) -> str:
    """The answer of one :class:`~mrparotid.inference.procedure.StudyPrediction` under the
    checkpoint's decision ``record``, as ``diagnose`` gives it: ``refer`` too where the automatic
    ``masks`` come from a segmenter that is not trusted
    (:func:`mrparotid.inference.answer.trusted_answer`)."""
    from mrparotid.inference.answer import trusted_answer

    tumour = pred.slices.tumour_on_slices if pred.tumour_known else None
    study = masks.study if masks is not None else None
    return trusted_answer(pred.probs, tumour, record, pred.decision.diagnosis, masks, study)["answer"]


def answer_summary(rows: list[dict]) -> dict:
    """Per setting, the answer's coverage, refer rate, accuracy, malignant sensitivity and
    specificity among the answered, with Wilson CIs (:func:`mrparotid.decision.score.answer_counts`)."""
    import pandas as pd

    from mrparotid.decision.apply import REFER
    from mrparotid.decision.score import answer_counts
    from mrparotid.evaluation.answers import with_cis

    out = {}
    for s in SETTINGS:
        table = pd.DataFrame({"true": [r["true"] for r in rows], "malignant": [r["true"] == "malignant" for r in rows],
                              "answer": [r[f"{s}_answer"] for r in rows],
                              "referred": [r[f"{s}_answer"] == REFER for r in rows],
                              "rule": [r[f"{s}_diagnosis"] for r in rows]})
        out[s] = with_cis(answer_counts(table))
    return out


def score_clinic(checkpoint: str | Path, segmenter, manifest: str | Path, *, split: str = "test",
                 roles_file: str | Path | None = None, progress: bool = True) -> dict:
    """Score the run's ``split`` patients (its saved split, never recomputed) in both settings.

    Raises
    ------
    ManifestError
        The run has no such patients, or the manifest no longer fits its split.
    CheckpointError
        A damaged classifier or segmenter checkpoint.
    """
    from mrparotid.data.splits import saved_split
    from mrparotid.io.manifest import read_manifest
    from mrparotid.io.progress import progress_bar
    from mrparotid.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    mf = read_manifest(manifest, check_dirs=False)
    ids = saved_split(loaded.meta.get("split"), mf.cases, [split], source=loaded.path,
                      manifest=mf.path).get(split, [])
    if not ids:
        raise ManifestError(f"the run has no {split} patients", path=mf.path,
                            fix="choose another --split, or re-run fit with test patients")
    by_id = mf.by_id()
    from mrparotid.decision.record import record_of

    record = record_of(loaded.meta, loaded.path)            # parsed once for every patient
    rows = [score_patient(by_id[pid], loaded, segmenter, roles_file=roles_file, record=record)
            for pid in progress_bar(ids, desc="clinic path", unit="patient", enabled=progress)]
    seg = segmenter.loaded()
    synthetic = bool(mf.synthetic or loaded.meta.get("synthetic") or getattr(seg, "synthetic", False))
    seen = set(ids) & set((getattr(seg, "meta", {}).get("split") or {}).get("splits", {}).get("train", []))
    warnings = ([f"the segmenter was trained on {len(seen)} of these patients ({', '.join(sorted(seen))}): "
                 "its Dice and the automatic column are optimistic; train it with the classifier's "
                 "split keys (configs/segment.yaml data.split_seed, test_fraction, val_fraction)"]
                if seen else [])
    return summarise(rows, synthetic=synthetic, split=split, checkpoint=str(loaded.path),
                     segmenter=str(segmenter.path), warnings=warnings)


def summarise(rows: list[dict], **info) -> dict:
    """Table 5 per setting, changed diagnoses, segmentation and detection summaries of
    :func:`score_patient` records; ``info`` (synthetic, split, checkpoint, segmenter) is kept."""
    truth = {r["patient_id"]: r["true"] for r in rows}
    settings = {s: patient_table({r["patient_id"]: r[f"{s}_diagnosis"] for r in rows}, truth)
                for s in SETTINGS}
    diff = settings["auto"]["accuracy"]["estimate"] - settings["given"]["accuracy"]["estimate"]
    changed = [{"patient_id": r["patient_id"], "true": r["true"], "given": r["given_diagnosis"],
                "auto": r["auto_diagnosis"]} for r in rows if r["given_diagnosis"] != r["auto_diagnosis"]]
    return {**info, "n_patients": len(rows), "settings": settings, "accuracy_difference": diff,
            "changed": changed, "answers": answer_summary(rows), "segmentation": segmentation_summary(rows),
            "detection": detection_summary(rows), "patients": rows}


def patient_table(called: dict[str, str], truth: dict[str, str]) -> dict:
    """Table 5 (patients and correct per diagnosis, benign pooled), exact-diagnosis accuracy
    (Wilson) and benign-vs-malignant sensitivity/specificity from called and true diagnoses; a
    call outside the tumour classes (``no_tumour_found``, ``no_gland_found``) is a miss."""
    col = {c: i for i, c in enumerate(CLASSES)}
    cm = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    for pid, t in truth.items():
        cm[CLASSES.index(t), col.get(called[pid], 0)] += 1
    bvm = stats.binary_view(cm, ("malignant",), ("pleomorphic_adenoma", "warthin"),
                            labels=("malignant", "benign"))
    table5 = {c: {"patients": int(cm[i].sum()), "correct": int(cm[i, i])}
              for i, c in enumerate(CLASSES) if c in ("pleomorphic_adenoma", "warthin", "malignant")}
    table5["benign"] = {"patients": bvm["counts"]["negative_total"],
                        "correct": bvm["counts"]["negative_correct"]}
    table5 = {k: table5[k] for k in ("pleomorphic_adenoma", "warthin", "benign", "malignant")}
    return {"table5": table5, "accuracy": stats.rate_ci(int(np.trace(cm)), int(cm.sum()), "wilson"),
            "benign_vs_malignant": bvm,
            "misdiagnosed": sorted(pid for pid, t in truth.items() if called[pid] != t)}


def mean_ci(ids: list[str], values: list[float | None]) -> dict:
    """Mean over the patients with a value, with a patient-bootstrap 95 % CI (one value a
    patient); ``undefined``: patients without one (e.g. HD95 of an empty mask)."""
    keep = [(i, v) for i, v in zip(ids, values) if v is not None and np.isfinite(v)]
    out = {"n": len(keep), "undefined": len(values) - len(keep)}
    if not keep:
        return {**out, "mean": None, "lo": None, "hi": None}
    b = patient_bootstrap_ci(np.array([i for i, _ in keep]), lambda v: float(np.mean(v)),
                             np.array([v for _, v in keep], float))
    return {**out, "mean": b["estimate"], "lo": b["lo"], "hi": b["hi"], "method": b["method"]}


def segmentation_summary(rows: list[dict]) -> dict:
    """Mean and CI of each of :data:`SEG_KEYS` over patients."""
    ids = [r["patient_id"] for r in rows]
    return {k: mean_ci(ids, [r.get(k) for r in rows]) for k in SEG_KEYS}


def detection_summary(rows: list[dict]) -> dict:
    """Side-level tumour detection (sides of :func:`score_patient`), Wilson 95 % CIs, sides
    counted as independent (two per patient): sensitivity = tumour sides *found* (the automatic
    tumour overlaps the manifest's) / tumour sides; specificity = tumour-free sides without
    automatic tumour / tumour-free sides; false-alarm rate = sides with an automatic tumour
    component touching no manifest tumour / all sides; accuracy = sides right (a tumour found
    with no false alarm, or a tumour-free side left clear) / all sides."""
    sides = [s for r in rows for s in r["sides"].values()]
    tp = sum(s["tumour"] and s["found"] for s in sides)
    tn = sum(not s["tumour"] and not s["auto"] for s in sides)
    right = sum(s["tumour"] and s["found"] and not s["false_alarm"] for s in sides) + tn
    pos = sum(s["tumour"] for s in sides)
    neg = len(sides) - pos
    return {"sides": len(sides), "sensitivity": stats.rate_ci(tp, pos, "wilson"),
            "specificity": stats.rate_ci(tn, neg, "wilson"),
            "false_alarm_rate": stats.rate_ci(sum(s["false_alarm"] for s in sides), len(sides), "wilson"),
            "accuracy": stats.rate_ci(right, len(sides), "wilson"),
            "missed": [f"{r['patient_id']} {side}" for r in rows for side, s in r["sides"].items()
                       if s["tumour"] and not s["found"]],
            "false_alarms": [f"{r['patient_id']} {side}" for r in rows for side, s in r["sides"].items()
                             if s["false_alarm"]]}


def write_clinic(result: dict, out_dir: str | Path) -> dict:
    """``clinic.json``, ``clinic_patients.csv``, ``clinic.md`` in ``out_dir``; the section is also
    appended to ``report.md`` when there is one. Returns the paths written."""
    import pandas as pd

    from mrparotid.evaluation.clinic_report import clinic_markdown
    from mrparotid.io.atomic import write_json, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    flat = [{k: v for k, v in r.items() if k != "sides"}
            | {f"{side}_{k}": v for side, s in r["sides"].items() for k, v in s.items()}
            for r in result["patients"]]
    table = pd.DataFrame(flat).to_csv(index=False)
    if result.get("synthetic"):
        table = "# SYNTHETIC data: not patient data\n" + table
    paths = {"json": out / "clinic.json", "csv": out / "clinic_patients.csv", "md": out / "clinic.md"}
    write_json(paths["json"], plain(result))
    write_text(paths["csv"], table)
    write_text(paths["md"], clinic_markdown(result))
    report = out / "report.md"
    if report.is_file():
        write_text(report, report.read_text(encoding="utf-8").rstrip("\n") + "\n\n"
                   + clinic_markdown(result, banner=False))
    return paths


def run_clinic(checkpoint: str | Path, segmenter, manifest: str | Path, out_dir: str | Path, *,
               split: str = "test", roles_file: str | Path | None = None, progress: bool = True) -> dict:
    """:func:`score_clinic` then :func:`write_clinic`; the result gains ``files`` and ``text``
    (the summary lines ``evaluate`` and ``fit`` print)."""
    from mrparotid.evaluation.clinic_report import clinic_lines

    result = score_clinic(checkpoint, segmenter, manifest, split=split, roles_file=roles_file,
                          progress=progress)
    files = write_clinic(result, out_dir)
    return {**result, "files": {k: str(v) for k, v in files.items()},
            "text": "\n".join(clinic_lines(result) + [f"clinic path: {files['md']}"])}


def plain(obj):
    """JSON-ready copy: NaN/inf → None, numpy scalars → Python."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj
