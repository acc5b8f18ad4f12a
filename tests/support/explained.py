"""A diagnosed, explained tiny patient (tiny model with seeded weights) for the report tests:
``explained_patient(tmp_path, *config_overrides, **patient_arrays_options)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checkpoints import tiny_checkpoint
from patients import patient_arrays, write_patient
from mrparotid.inference.diagnose import PatientEvidence, build_report, predict_patient
from mrparotid.inference.explain import explain_patient
from mrparotid.io.manifest import PatientCase
from mrparotid.models.checkpoint import LoadedModel


@dataclass
class Explained:
    evidence: PatientEvidence
    report: dict
    cams: np.ndarray
    loaded: LoadedModel


def explained_patient(root, *overrides: str, pid: str = "P001", **arrays) -> Explained:
    """Write a patient, a tiny checkpoint (``overrides``: config overrides), predict and explain."""
    folder = write_patient(root / pid, arrays=patient_arrays(**arrays) if arrays else None)
    _, loaded = tiny_checkpoint(root / "m.ckpt", *overrides)
    evidence = predict_patient(PatientCase(pid, "warthin", folder), loaded)
    report = build_report(evidence, loaded)
    cams = explain_patient(evidence, loaded, report)
    return Explained(evidence, report, cams, loaded)
