"""Gland and tumour masks → a DICOM Segmentation (highdicom) that references the source T1.

Three segments at most, numbered in this order among those with voxels: right parotid gland, left
parotid gland (SNOMED CT 45289007 *Parotid gland*, category *Anatomical Structure*, laterality as
the property type modifier) and tumour (SNOMED CT 108369006 *Neoplasm*, category *Morphologically
Abnormal Structure*). Each segment says where it came from: ``AUTOMATIC`` with the algorithm
identification (mrparotid, its version, the segmenter checkpoint) for the segmenter's masks,
``MANUAL`` for contours given in the patient folder; SegmentDescription repeats it in words.

The SEG is BINARY: the segmenter's probabilities are thresholded before they reach the masks
(:mod:`mrparotid.segmentation.infer`), so there is no probability to keep as FRACTIONAL.
Frames follow the source frames (:func:`mrparotid.dicom_out.source.frames_from_grid`); empty
frames are left out. The object carries the source study's patient and study identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrparotid.data.grid import Study
from mrparotid.dicom_out.source import SourceSeries, frames_from_grid

SEG_SERIES_NUMBER = 9701
MANUFACTURER = "mrparotid"
DISCLAIMER = "research software, not a medical device"
#: The same in at most 30 characters (descriptions are at most 64).
SHORT_DISCLAIMER = "research, not a medical device"

#: Segment key → (label, laterality or None).
SEGMENTS = {"gland_R": ("Right parotid gland", "R"), "gland_L": ("Left parotid gland", "L"),
            "tumour": ("Tumour", None)}
SOURCE_WORDS = {"auto": "automatic (mrparotid segmenter)", "given": "given (patient folder contour)"}


@dataclass(frozen=True)
class SegmentMasks:
    """Bool (z, y, x) masks on the reference grid by segment key (:data:`SEGMENTS`), where each
    came from (``auto``/``given``), and the segmenter checkpoint of the automatic ones."""

    masks: dict[str, np.ndarray]
    source: dict[str, str]
    segmenter: Path | None = None

    @property
    def present(self) -> list[str]:
        """The segment keys with voxels, in :data:`SEGMENTS` order (their segment numbers)."""
        return [k for k in SEGMENTS if k in self.masks and self.masks[k].any()]

    def number(self, key: str) -> int | None:
        """The segment number of ``key`` in the SEG (1-based), None when it is empty."""
        return self.present.index(key) + 1 if key in self.present else None


def segment_masks(study: Study, source: dict[str, str], segmenter: Path | None = None) -> SegmentMasks:
    """Right/left gland and tumour of a study with its masks filled in. The segmenter's gland is
    labelled 1 right, 2 left; a given gland is split by :func:`mrparotid.data.sides.side_regions`
    (which reads labels 1/2 as the sides too)."""
    from mrparotid.data.sides import side_regions

    gland = np.asarray(study.gland)
    tumour = np.zeros(gland.shape, bool) if study.tumour is None else np.asarray(study.tumour) > 0
    if source["gland"] == "auto":           # the segmenter's convention: 1 right, 2 left
        right, left = gland == 1, gland == 2
    else:
        regions = side_regions(study)
        empty = np.zeros(gland.shape, bool)
        right, left = ((gland > 0) & regions.get(s, empty) for s in ("R", "L"))
    masks = {"gland_R": right, "gland_L": left}
    src = {"gland_R": source["gland"], "gland_L": source["gland"]}
    if source.get("tumour") in ("auto", "given"):
        masks["tumour"], src["tumour"] = tumour, source["tumour"]
    return SegmentMasks(masks, src, segmenter)


def algorithm(segmenter: Path | None):
    """highdicom AlgorithmIdentificationSequence: mrparotid, its version, the checkpoint's name."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from mrparotid import __version__

    params = {"checkpoint": Path(segmenter).name if segmenter else "unknown"}
    return hd.AlgorithmIdentificationSequence(name="mrparotid segmenter", version=__version__,
                                              family=codes.cid7162.ArtificialIntelligence,
                                              source="mrparotid", parameters=params)


def describe(key: str, number: int, how: str, segmenter: Path | None):
    """One highdicom SegmentDescription (SNOMED CT coded, laterality as type modifier)."""
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    label, side = SEGMENTS[key]
    auto = how == "auto"
    if side is None:
        category, kind = codes.cid7150.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm
    else:
        category, kind = codes.cid7150.AnatomicalStructure, codes.SCT.ParotidGland
    desc = hd.seg.SegmentDescription(
        segment_number=number, segment_label=label, segmented_property_category=category,
        segmented_property_type=kind, algorithm_type="AUTOMATIC" if auto else "MANUAL",
        algorithm_identification=algorithm(segmenter) if auto else None,
        tracking_id=f"mrparotid {label.lower()}", tracking_uid=hd.UID(),
        anatomic_regions=[codes.SCT.ParotidGland])
    if side is not None:
        modifier = Dataset()
        code = codes.SCT.Right if side == "R" else codes.SCT.Left
        modifier.CodeValue, modifier.CodingSchemeDesignator, modifier.CodeMeaning = (
            code.value, code.scheme_designator, code.meaning)
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [modifier]
    desc.SegmentDescription = SOURCE_WORDS[how]
    return desc


def build_seg(source: SourceSeries, masks: SegmentMasks, study: Study, *, series_uid: str,
              sop_uid: str, synthetic: bool):
    """The SEG dataset (highdicom ``Segmentation``), or None when every mask is empty."""
    import highdicom as hd

    from mrparotid import __version__

    keys = masks.present
    if not keys:
        return None
    frames = np.stack([frames_from_grid(masks.masks[k].astype(np.uint8), source, study)
                       for k in keys], axis=-1)
    descriptions = [describe(k, n + 1, masks.source[k], masks.segmenter) for n, k in enumerate(keys)]
    tag = "SYNTHETIC " if synthetic else ""
    return hd.seg.Segmentation(
        source_images=list(source.datasets), pixel_array=frames.astype(bool),
        segmentation_type="BINARY", segment_descriptions=descriptions,
        series_instance_uid=series_uid, series_number=SEG_SERIES_NUMBER, sop_instance_uid=sop_uid,
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name="mrparotid",
        software_versions=__version__, device_serial_number="0", content_label="MRPAROTID",
        content_description=f"{tag}parotid masks; {SHORT_DISCLAIMER}",
        series_description=f"{tag}mrparotid SEG; {SHORT_DISCLAIMER}")

