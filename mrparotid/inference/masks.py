"""A study's gland and tumour masks for diagnosis: from the patient folder where it has them,
from the segmenter for whatever it lacks (``"given"`` / ``"auto"``).

Masks are uint8 (z, y, x) on the T1 grid (:mod:`mrparotid.data.grid`). The segmenter checkpoint
is loaded on first use, so a patient with both contours never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mrparotid.data.grid import Study
from mrparotid.data.sides import SIDES, find_sides
from mrparotid.errors import CheckpointError, ConfigError, InputError

MASK_ROLES: tuple[str, ...] = ("gland", "tumour")

#: Where a mask came from: the patient folder, the segmenter, or nowhere (screening view only).
MASK_SOURCES: tuple[str, ...] = ("given", "auto", "none")

#: Report note when the segmenter finds no tumour (the diagnosis is then ``no_tumour_found``).
NO_TUMOUR_BY_SEGMENTER = "no tumour found by the segmenter"

SEGMENTER_FIX = "pass --segmenter RUN_DIR/checkpoints/best.ckpt written by 'mrparotid segment fit'"

#: Fix of "the segmenter found no parotid gland".
NO_GLAND_FIX = ("check that the series are the patient's axial T1/CE-T1/T2 of the parotid region "
                "(mrparotid inspect), or give the glands as parotid.nii.gz (nonzero = gland)")


class Segmenter:
    """A segmenter checkpoint, loaded on first use: ``path``, or (None) the newest segmenter run
    under ``runs_dir``. A stand-in (tests) overrides :meth:`segment` (and ``path``)."""

    def __init__(self, path: str | Path | None = None, *, runs_dir: str | Path = "runs"):
        self._path = Path(path) if path is not None else None
        self._runs_dir = Path(runs_dir)
        self._loaded = None
        self._searched = path is not None

    @property
    def path(self) -> Path | None:
        """The checkpoint (the default one once searched; None if there is none)."""
        if not self._searched:   # search runs/ once, even when it holds no segmenter
            from mrparotid.inference.runs import newest_checkpoint

            self._path = newest_checkpoint("segmenter", self._runs_dir)
            self._searched = True
        return self._path

    def available(self) -> bool:
        """Whether a checkpoint is named or a segmenter run exists (nothing is loaded)."""
        return self.path is not None

    def loaded(self):
        """The loaded segmenter (:func:`mrparotid.segmentation.infer.load_segmenter`).

        Raises
        ------
        ConfigError
            No checkpoint named and no segmenter run under ``runs/``.
        CheckpointError
            Missing, damaged or foreign checkpoint.
        """
        if self._loaded is None:
            if self.path is None:
                raise ConfigError(f"no segmenter given and no segmenter run under {self._runs_dir}/",
                                  fix=SEGMENTER_FIX)
            from mrparotid.segmentation.infer import load_segmenter

            self._loaded = load_segmenter(self.path)
        return self._loaded

    def segment(self, study: Study) -> tuple[np.ndarray, np.ndarray]:
        """(gland, tumour) uint8 (z, y, x) on the study's grid, post-processed; both may be empty.

        Raises
        ------
        MissingSeriesError
            The study lacks a series the segmenter was trained on (the message names both).
        """
        from mrparotid.segmentation.infer import segment_study

        auto = segment_study(self.loaded(), study, require_gland=False)
        return auto.gland, auto.tumour


@dataclass(frozen=True)
class StudyMasks:
    """A study with its masks filled in, and where each came from.

    ``source``: role → ``"given"``/``"auto"``/``"none"``; ``tumour_found``: side → whether the
    tumour mask has voxels on that side (None per side without a tumour mask); ``warnings``:
    things the report must show (e.g. a gland found on one side only).
    """

    study: Study
    source: dict[str, str]
    tumour_found: dict[str, bool | None]
    warnings: tuple[str, ...] = ()
    segmenter_path: Path | None = None       # the checkpoint of the automatic masks

    @property
    def automatic(self) -> tuple[str, ...]:
        return tuple(r for r in MASK_ROLES if self.source[r] == "auto")


def resolve_masks(study: Study, segmenter: Segmenter | None, *, use_given: bool = True,
                  need_tumour: bool = True) -> StudyMasks:
    """Fill in the masks a study lacks (all of them with ``use_given=False``) from ``segmenter``.

    Without ``need_tumour`` (the screening view), a missing tumour mask is taken from the
    segmenter only when one is available, else it stays None (source ``"none"``).

    Raises
    ------
    InputError
        A mask is missing and there is no segmenter; the segmenter finds no gland at all;
        (MissingSeriesError) the segmenter was trained on a series the patient lacks.
    CheckpointError
        The segmenter cannot be loaded.
    """
    given = {r: getattr(study, r) if use_given else None for r in MASK_ROLES}
    wanted = [r for r in MASK_ROLES if given[r] is None
              and (r == "gland" or need_tumour or (segmenter is not None and segmenter.available()))]
    if wanted and (segmenter is None or not segmenter.available()):
        raise InputError(f"no {' or '.join(_NAMES[r] for r in wanted)} mask and no segmenter",
                         patient=study.patient_id, fix=f"add {' and '.join(_FILES[r] for r in wanted)}, "
                         "or pass --segmenter RUN_DIR/checkpoints/best.ckpt ('mrparotid segment fit')")
    auto = dict(zip(MASK_ROLES, _segment(study, segmenter))) if wanted else {}
    masks = {r: auto[r] if r in wanted else given[r] for r in MASK_ROLES}
    source = {r: "auto" if r in wanted else ("given" if given[r] is not None else "none") for r in MASK_ROLES}
    if source["gland"] == "auto" and not masks["gland"].any():
        raise InputError("the segmenter found no parotid gland", patient=study.patient_id,
                         path=segmenter.path, fix=NO_GLAND_FIX)
    filled = replace(study, gland=masks["gland"], tumour=masks["tumour"])
    sides = find_sides(filled)
    regions = sides.regions
    tumour = masks["tumour"]
    found = {s: (None if tumour is None else bool((tumour > 0)[regions[s]].any())) for s in regions}
    warnings = []
    if source["gland"] == "auto" and len(regions) == 1:
        (side,) = regions
        missing = next(s for s in SIDES if s != side)
        warnings.append(f"the segmenter found a parotid gland on side {side} only: side {missing} "
                        "is not diagnosed (check the field of view, or give parotid.nii.gz)")
    warnings.extend(sides.warnings)          # side unknown, or named by the sign of LPS x
    return StudyMasks(filled, source, found, tuple(warnings), segmenter.path if wanted else None)


_NAMES = {"gland": "gland (parotid.*)", "tumour": "tumour (tumour.*)"}
_FILES = {"gland": "parotid.nii.gz", "tumour": "tumour.nii.gz"}


def _segment(study: Study, segmenter: Segmenter) -> tuple[np.ndarray, np.ndarray]:
    """Run the segmenter; check the masks fit the study's grid."""
    gland, tumour = segmenter.segment(study)
    for name, mask in (("gland", gland), ("tumour", tumour)):
        if mask.shape != study.shape:
            raise CheckpointError(f"the segmenter's {name} mask has shape {mask.shape}, the study "
                                  f"{study.shape}", path=segmenter.path, fix="re-train the segmenter")
    return np.asarray(gland, np.uint8), np.asarray(tumour, np.uint8)
