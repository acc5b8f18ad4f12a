"""One complete study (a ``processing/<job>`` folder of received instances) → SEG, SR and the report:
the same path as ``segment`` + ``diagnose --dicom-out``, with the node's loaded models.

The instances are laid out as a patient folder in the named layout (``patient/T1``, ``CE-T1``,
``T2``: hard links, by the roles rules of :mod:`mrparotid.dicom.discovery`), diagnosed with the
segmenter filling in the masks, and the results are written into ``results.tmp/`` (``SEG.dcm``,
``SR.dcm``, ``report.json``). The patient is named ``study-<key>`` in the report: no identifier
from the headers reaches the JSON or the log; the SEG and SR carry the study's identity.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mrparotid.constants import PAPER_SERIES
from mrparotid.errors import InputError
from mrparotid.io.atomic import write_json
from mrparotid.serve.queue import RESULTS_TMP


@dataclass(frozen=True)
class Models:
    """The node's models, loaded once at start: the classifier and the segmenter."""

    classifier: object          # mrparotid.models.checkpoint.LoadedModel
    segmenter: object           # mrparotid.inference.masks.Segmenter


def load_models(checkpoint: str | None, segmenter: str | None) -> Models:
    """Load the classifier and the segmenter (the newest finished runs under runs/ for None).

    Raises
    ------
    CheckpointError, ConfigError
        A missing, damaged or unfinished checkpoint, or no run to default to.
    """
    from mrparotid.inference.masks import Segmenter
    from mrparotid.inference.runs import default_classifier
    from mrparotid.models.checkpoint import load_checkpoint
    from mrparotid.training.run_dir import require_complete_run

    path = checkpoint or default_classifier("runs")
    require_complete_run(path)
    classifier = load_checkpoint(path)
    seg = Segmenter(segmenter)
    if segmenter is not None:
        require_complete_run(segmenter)
    seg.loaded()
    return Models(classifier, seg)


def job_record(job: Path) -> dict:
    """``job.json`` of a job (its key from the folder name when the file was never written)."""
    try:
        return json.loads((job / "job.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"key": job.name.rsplit("-", 1)[0], "job": job.name}


def arrange(job: Path, roles_file: str | Path | None,
            among: tuple[str, ...] = PAPER_SERIES) -> tuple[Path, dict[str, int]]:
    """Hard-link the instances into ``job/patient/<role>/``; returns the folder and the number of
    instances per role. ``among``: the roles linked (the classifier's series, :func:`read_series`);
    a DWI acquired as one series per b-value has all of them linked into ``DWI/``. A role with no
    series is left out (diagnose says if it needs it).

    Raises
    ------
    InputError
        No MR image, or two series claim one role of ``among`` (the message says how to pin one).
    """
    from mrparotid.dicom.discovery import discover_headers, select_series
    from mrparotid.dicom.headers import scan_folder
    from mrparotid.dicom.roles import load_roles

    roles = load_roles(Path(roles_file) if roles_file else None)
    infos = discover_headers(scan_folder(job), roles)
    patient = job / "patient"
    shutil.rmtree(patient, ignore_errors=True)
    chosen = select_series(infos, roles, patient=f"study-{job_record(job)['key']}", patient_dir=job,
                           required=(), among=tuple(dict.fromkeys(("T1", *among))))
    counts = {}
    for role, series in chosen.items():
        (patient / role).mkdir(parents=True)
        for k, info in enumerate(series):
            for f in info.files:      # several series of one role (DWI, one per b): names kept apart
                os.link(f, patient / role / (f"{k}_{f.name}" if len(series) > 1 else f.name))
        counts[role] = sum(len(info.files) for info in series)
    if "T1" not in counts:
        found = ", ".join(f"#{i.series_number} {i.description!r} ({i.role or i.reason})"
                          for i in infos) or "no MR image series"
        raise InputError(f"no T1 series among the received series ({found})",
                         patient=f"study-{job_record(job)['key']}",
                         fix="send the study's T1, CE-T1 and T2, or pin the roles in a roles YAML "
                             "(--node.roles FILE)")
    return patient, counts


def synthetic_source(source) -> bool:
    """Phantom data: the T1's Manufacturer or SeriesDescription says SYNTHETIC."""
    ds = source.datasets[0]
    return "SYNTHETIC" in f"{ds.get('Manufacturer', '')} {ds.get('SeriesDescription', '')}".upper()


def process_job(job: Path, models: Models, *, roles_file: str | Path | None = None) -> dict:
    """Run segment + diagnose on a claimed study and write ``job/results.tmp/``; returns the
    report dict (no identifiers). The caller commits the results by renaming the folder.

    Raises
    ------
    MrParotidError
        Anything about the study itself (series, geometry, no gland found...): the job fails.
    """
    from mrparotid.dicom_out.write import patient_source, write_dicom_results
    from mrparotid.inference.diagnose import build_report, predict_patient
    from mrparotid.inference.missing import read_series
    from mrparotid.io.manifest import PatientCase

    record = job_record(job)
    patient, counts = arrange(job, roles_file, read_series(models.classifier))
    case = PatientCase(f"study-{record['key']}", None, patient)
    source = patient_source(case, roles_file=roles_file)
    evidence = predict_patient(case, models.classifier, segmenter=models.segmenter, hint="folder")
    report = build_report(evidence, models.classifier)
    report["synthetic"] = bool(report.get("synthetic")) or synthetic_source(source)
    out = job / RESULTS_TMP
    shutil.rmtree(out, ignore_errors=True)
    masks = evidence.masks
    result = write_dicom_results(out, evidence.study, source, dict(masks.source),
                                 segmenter=masks.segmenter_path, report=report,
                                 synthetic=report["synthetic"])
    report = replace_paths(report)
    write_json(out / "report.json", {**report, "series_instances": counts,
                                     "dicom": [p.name for p in result.files]})
    shutil.rmtree(patient, ignore_errors=True)
    return report


def replace_paths(report: dict) -> dict:
    """The report with checkpoint paths cut to their file names (the JSON travels with results)."""
    out = dict(report)
    for key in ("model", "segmenter"):
        if isinstance(out.get(key), dict) and out[key].get("checkpoint"):
            out[key] = {**out[key], "checkpoint": Path(str(out[key]["checkpoint"])).name}
    return out
