"""A patient's diagnosis report → a DICOM Comprehensive 3D SR, TID 1500 measurement report
(highdicom), beside the SEG it measures.

The content tree (the root is TID 1500 *Imaging Measurement Report*):

- one TID 1411 volumetric group per side and structure with voxels (gland, tumour): its volume in
  mm³ counted from the mask (voxels × the T1 voxel volume), finding site *Parotid gland* with
  laterality, and a reference to its SEG segment;
- one TID 1501 group for the patient: the answer and the rule's diagnosis (coded), the tumour side
  (laterality), p(malignant) (*Probability of cancer*, unit 1) with the operating point it was
  answered at (text), and the decisive slices as references to the source T1 images;
- TEXT comments at the root: research software, not a medical device; SYNTHETIC for phantom data.

Answers are coded with SNOMED CT where a code exists (malignant tumour of salivary gland,
pleomorphic adenoma) and with the private scheme ``99MRPAROTID`` otherwise. The report dict is
read defensively: a field the diagnosis did not fill is left out, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mrparotid.data.grid import Study
from mrparotid.dicom_out.seg import DISCLAIMER, MANUFACTURER, SHORT_DISCLAIMER, SegmentMasks
from mrparotid.dicom_out.source import SourceSeries, frames_of_slices

SR_SERIES_NUMBER = 9702
PRIVATE = "99MRPAROTID"
SIDE_WORDS = {"R": "right", "L": "left"}


def coded(value: str, meaning: str, scheme: str = PRIVATE):
    """A highdicom CodedConcept (CodeValue at most 16 characters)."""
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value[:16], scheme_designator=scheme, meaning=meaning[:64])


def answer_code(answer: str):
    """The coded answer or diagnosis (``malignant``, ``pleomorphic_adenoma``, ``warthin``,
    ``refer``, ``no_tumour_found`` or any other word)."""
    sct = {"malignant": ("255072001", "Malignant tumor of salivary gland"),
           "pleomorphic_adenoma": ("8360001", "Pleomorphic adenoma")}
    if answer in sct:
        return coded(*sct[answer], scheme="SCT")
    words = {"warthin": "Warthin tumour", "refer": "Refer to a radiologist: no automatic answer",
             "no_tumour_found": "No tumour found"}
    return coded(answer, words.get(answer, answer.replace("_", " ")))


def tumour_volumes(study: Study) -> dict[str, float]:
    """Tumour volume (mm³) per side (``R``/``L``) with tumour voxels, on the reference grid."""
    from mrparotid.data.sides import side_regions

    if study.tumour is None or not study.tumour.any():
        return {}
    voxel = float(np.prod(study.spacing))
    tumour = study.tumour > 0
    out = {s: float((tumour & region).sum()) * voxel for s, region in side_regions(study).items()}
    return {s: out[s] for s in ("R", "L") if out.get(s, 0.0) > 0}


def decisive_rows(report: dict) -> list[dict]:
    """The report's slice rows that decided its rule diagnosis (the slices predicted as that
    class, :func:`mrparotid.report.montage.decisive_slices`)."""
    from mrparotid.constants import CLASSES
    from mrparotid.report.montage import decisive_slices

    rows = [r for r in report.get("slices", []) if "probs" in r and "index" in r]
    if not rows or "diagnosis" not in report:
        return []
    probs = np.array([[float(r["probs"].get(c, 0.0)) for c in CLASSES] for r in rows])
    z = np.array([float(r.get("z_mm", 0.0)) for r in rows])
    return [rows[i] for i in decisive_slices(probs, z, str(report["diagnosis"]))]


def operating_point_text(report: dict) -> str:
    """The operating point p(malignant) was answered at, in words: ``operating_point`` (its
    ``text``, or the text itself), else ``decision.operating_point`` (with its decision record),
    else the refer band."""
    op = report.get("operating_point")
    if isinstance(op, dict) and op.get("text"):
        return str(op["text"])
    if isinstance(op, str) and op:
        return op
    decision = report.get("decision")
    if isinstance(decision, dict) and decision.get("operating_point"):
        record = f" (decision record: {decision['record']})" if decision.get("record") else ""
        return f"{decision['operating_point']}{record}"
    band = report.get("refer_band")
    if band:
        return f"malignant when p >= {band[1]:g}; refer when {band[0]:g} <= p < {band[1]:g}"
    return "not stated by the diagnosis"


def _algorithm():
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from mrparotid import __version__

    return hd.sr.AlgorithmIdentification(name="mrparotid", version=__version__,
                                         family=codes.cid7162.ArtificialIntelligence)


def volume_group(label: str, side: str, mm3: float, kind, seg, segment: int | None,
                 source: SourceSeries):
    """TID 1411 group: one structure's volume on one side, referencing its SEG segment (TID 1501
    without a SEG)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    site = hd.sr.FindingSite(anatomic_location=codes.SCT.ParotidGland,
                             laterality=codes.SCT.Right if side == "R" else codes.SCT.Left)
    volume = hd.sr.Measurement(name=codes.SCT.Volume, value=round(mm3, 1),
                               unit=codes.UCUM.CubicMillimeter, algorithm_id=_algorithm())
    common = dict(tracking_identifier=hd.sr.TrackingIdentifier(
        uid=hd.UID(), identifier=f"{label} {SIDE_WORDS[side]}"), finding_type=kind,
        finding_sites=[site], measurements=[volume], algorithm_id=_algorithm())
    if seg is None or segment is None:
        return hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    ref = hd.sr.ReferencedSegment(sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                                  segment_number=segment,
                                  source_series=hd.sr.SourceSeriesForSegmentation(source.series_uid))
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_segment=ref, **common)


def patient_group(report: dict, study: Study, source: SourceSeries, tumour_sides: Sequence[str]):
    """TID 1501 group: answer, rule diagnosis, tumour side, p(malignant) and the operating point,
    the decisive slices as source images."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    evaluations = []
    if report.get("answer"):
        evaluations.append(hd.sr.QualitativeEvaluation(coded("answer", "mrparotid answer"),
                                                       answer_code(str(report["answer"]))))
    if report.get("diagnosis"):
        evaluations.append(hd.sr.QualitativeEvaluation(
            coded("rule", "Diagnosis by the slice rule (Xia et al. 2021)"),
            answer_code(str(report["diagnosis"]))))
    if tumour_sides:
        side = (codes.cid244.Bilateral if len(tumour_sides) > 1 else
                codes.SCT.Right if tumour_sides[0] == "R" else codes.SCT.Left)
        evaluations.append(hd.sr.QualitativeEvaluation(coded("tumour-side", "Tumour side"), side))
    measurements = []
    if isinstance(report.get("p_malignant"), (int, float)):
        measurements.append(hd.sr.Measurement(name=codes.DCM.ProbabilityOfCancer,
                                              value=float(report["p_malignant"]),
                                              unit=codes.UCUM.NoUnits, algorithm_id=_algorithm()))
    images = decisive_images(report, study, source)
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="mrparotid patient"),
        finding_type=codes.SCT.Neoplasm, finding_sites=[hd.sr.FindingSite(codes.SCT.ParotidGland)],
        measurements=measurements or None, qualitative_evaluations=evaluations or None,
        algorithm_id=_algorithm(), source_images=images or None)
    texts = [("operating-point", "Operating point", operating_point_text(report))]
    if report.get("answer_reason"):
        texts.append(("answer-reason", "Reason for the answer", str(report["answer_reason"])))
    container = group[0]
    for value, meaning, text in texts:
        container.ContentSequence.append(hd.sr.TextContentItem(
            name=coded(value, meaning), value=text[:1024], relationship_type="CONTAINS"))
    return group


def decisive_images(report: dict, study: Study, source: SourceSeries) -> list:
    """SourceImageForMeasurementGroup items of the source frames that hold the decisive slices."""
    import highdicom as hd

    rows = decisive_rows(report)
    by_slice = frames_of_slices(source, study, [int(r["index"]) for r in rows])
    frames = sorted({f for fs in by_slice.values() for f in fs})
    if source.multiframe:
        return [hd.sr.SourceImageForMeasurementGroup.from_source_image(
            source.datasets[0], referenced_frame_numbers=[f + 1 for f in frames])] if frames else []
    return [hd.sr.SourceImageForMeasurementGroup.from_source_image(source.datasets[f]) for f in frames]


def build_sr(report: dict, study: Study, source: SourceSeries, masks: SegmentMasks, seg, *,
             series_uid: str, sop_uid: str, synthetic: bool):
    """The Comprehensive 3D SR dataset of one patient (``seg``: the SEG dataset or None)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from mrparotid import __version__

    voxel = float(np.prod(study.spacing))
    groups = []
    for key, side in (("gland_R", "R"), ("gland_L", "L")):
        if key in masks.present:
            groups.append(volume_group("parotid gland", side, float(masks.masks[key].sum()) * voxel,
                                       codes.SCT.ParotidGland, seg, masks.number(key), source))
    tumours = tumour_volumes(study)
    for side, mm3 in tumours.items():
        groups.append(volume_group("tumour", side, mm3, codes.SCT.Neoplasm, seg,
                                   masks.number("tumour"), source))
    groups.append(patient_group(report, study, source, list(tumours)))
    device = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="mrparotid", manufacturer_name=MANUFACTURER,
            model_name=f"mrparotid {__version__}"))
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.cid100.MRIUnspecifiedBodyRegion, imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport)
    comments = [f"mrparotid {__version__} is {DISCLAIMER}; nothing here is a clinical diagnosis."]
    if synthetic:
        comments.insert(0, "SYNTHETIC: made from phantom data or by a model trained on it; no "
                           "clinical meaning.")
    for text in comments:
        content[0].ContentSequence.append(hd.sr.TextContentItem(
            name=codes.DCM.Comment, value=text, relationship_type="CONTAINS"))
    evidence = list(source.datasets) + ([seg] if seg is not None else [])
    tag = "SYNTHETIC " if synthetic else ""
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=content[0], series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True,
        series_description=f"{tag}mrparotid report; {SHORT_DISCLAIMER}")
    sr.CodingSchemeIdentificationSequence = [private_scheme()]
    return sr


def private_scheme():
    """The CodingSchemeIdentificationSequence item that declares :data:`PRIVATE`."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE
    item.CodingSchemeName = "mrparotid answers and report concepts"
    item.CodingSchemeResponsibleOrganization = "mrparotid (research software)"
    return item
