"""The slice procedure at inference: a study with its masks → the selected crops → model input →
slice probabilities → the patient decision. ``diagnose`` and the clinic evaluation both use it.

The slices are those ``prepare`` caches (:mod:`mrparotid.data.labels`: the tumour slices of the
tumour side(s), every gland slice of a side without tumour), with the same bytes given the same
masks, and the patient rule counts exactly them. ``all_slices=True`` is the screening view
(every gland slice). With an empty tumour mask the procedure has no tumour slice, so the
diagnosis is ``no_tumour_found`` (the slices are still predicted, as evidence).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mrparotid.constants import NO_TUMOUR_FOUND
from mrparotid.data.crops import select_channels
from mrparotid.data.grid import Study
from mrparotid.data.labels import UNLABELLED
from mrparotid.data.preprocess import PatientSlices, slices_of_study
from mrparotid.data.series_dropout import present_of
from mrparotid.decision.rule import PatientDecision, decide_patient
from mrparotid.inference.predict import predict_probs
from mrparotid.models.checkpoint import LoadedModel

#: Views of a patient's slices: the procedure (default) or every gland slice (``--all-slices``).
VIEWS: tuple[str, ...] = ("procedure", "screening")

#: Report note of the screening view.
SCREENING_NOTE = ("screening view (--all-slices): every gland slice is predicted, not only the "
                  "procedure's tumour slices + tumour-free side; the patient rule was set and scored "
                  "on the procedure's slices, so its answer here is a screening aid")


@dataclass(frozen=True)
class StudyPrediction:
    """The selected slices (crops in PLANES order), the model input ``x`` (uint8, n, C, H, W), the
    present flags, the slice probabilities (float64, n, 4) and the patient decision."""

    slices: PatientSlices
    x: np.ndarray
    present: np.ndarray
    probs: np.ndarray
    decision: PatientDecision
    view: str
    tumour_known: bool       # the tumour mask has voxels


def predict_study(study: Study, loaded: LoadedModel, diagnosis: str | None, *,
                  all_slices: bool = False, labelled: bool = True) -> StudyPrediction:
    """Select, crop, predict and decide one study whose masks are known (given or automatic).

    ``diagnosis`` labels the tumour slices (None: unknown); ``labelled=False`` leaves every label
    ``UNLABELLED`` (masks that are not ground truth, e.g. automatic ones).

    Raises
    ------
    InputError
        No tumour mask at all outside the screening view.
    """
    meta = loaded.meta
    mode = "all" if all_slices else "diagnose"
    slices = slices_of_study(study, diagnosis, meta["preprocess"], mode=mode)
    if not labelled:
        slices = replace(slices, labels=np.full(len(slices), UNLABELLED, np.int64))
    tumour_known = study.tumour is not None and bool(study.tumour.any())
    x = select_channels(slices.crops, loaded.channels, meta.get("series_mask", "none"),
                        tumour_known=tumour_known, planes=slices.planes, **meta.get("channel_options", {}))
    present = present_of(loaded.series_flags, study.series)   # a missing series' plane is 0
    probs = predict_probs(loaded.model, x, present=present)
    decision = decide_patient(probs, int(meta.get("rule", {}).get("malignant_min_slices", 2)))
    if not all_slices and not tumour_known:
        decision = no_tumour_decision(decision)
    return StudyPrediction(slices, np.asarray(x), present, probs, decision,
                           "screening" if all_slices else "procedure", tumour_known)


def no_tumour_decision(decision: PatientDecision) -> PatientDecision:
    """The decision when the procedure has no tumour slice: ``no_tumour_found`` (branch
    ``no_tumour_slices``), the slice counts kept as evidence."""
    return PatientDecision(NO_TUMOUR_FOUND, dict(decision.counts),
                           {**decision.trace, "branch": "no_tumour_slices", "tumour_slices": 0})
