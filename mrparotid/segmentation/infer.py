"""A trained segmenter → automatic gland and tumour masks of a study (:class:`AutoMasks`).

The checkpoint is a Lightning ``.ckpt`` whose ``"mrparotid"`` entry (format
:data:`FORMAT`) records the series, the in-plane spacing, the percentiles and the post-processing;
it loads with ``weights_only=True`` and the same refusals as a classifier checkpoint
(:func:`mrparotid.models.checkpoint.load_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mrparotid.data.grid import Study
from mrparotid.errors import CheckpointError, InputError
from mrparotid.segmentation.postprocess import CleanMasks, SideFinding, postprocess
from mrparotid.segmentation.slices import SliceStack, pad_to_multiple, study_slices, to_grid

FORMAT = "mrparotid-segmenter-1"      # mrparotid.models.checkpoint_schema.SEGMENTER_FORMAT
FIX = "pass --checkpoint RUN_DIR/checkpoints/best.ckpt written by 'mrparotid segment fit'"
DAMAGED_FIX = ("the checkpoint is damaged, edited or from another mrparotid version: use the file "
               "its run wrote, or re-train with 'mrparotid segment fit'")
NO_GLAND_FIX = ("check that the series are the patient's T1/CE-T1/T2 of the parotid region "
                "(mrparotid inspect), or give the glands as parotid.nii.gz")


@dataclass(frozen=True)
class LoadedSegmenter:
    """A segmenter ready for inference plus what it was trained with (``meta``)."""

    model: object            # torch.nn.Module (MONAI UNet), eval mode, on ``device``
    meta: dict
    path: Path
    device: str = "cpu"

    @property
    def series(self) -> tuple[str, ...]:
        return tuple(self.meta["series"])

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic"))


@dataclass(frozen=True)
class AutoMasks:
    """Automatic masks of one patient on its T1 reference grid (z, y, x; see :class:`Study`).

    ``gland`` uint8: 0, 1 right gland, 2 left gland, 3 gland of unknown side; ``tumour`` uint8
    0/1; ``sides``: the sides where a gland was found (``"L"``, ``"R"``, or ``"?"`` for side
    unknown), with gland/tumour volumes (ml) and ``tumour_found``.
    """

    patient_id: str
    gland: np.ndarray
    tumour: np.ndarray
    sides: dict[str, SideFinding]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    synthetic: bool = False
    #: How the sides were named (e.g. "side unknown": gland label 3), for the user to see.
    warnings: tuple[str, ...] = ()

    @property
    def tumour_found(self) -> bool:
        return any(s.tumour_found for s in self.sides.values())

    def apply(self, study: Study, *, gland: bool = True, tumour: bool = True) -> Study:
        """``study`` with its gland and/or tumour mask replaced by these automatic ones."""
        return replace(study, gland=self.gland if gland else study.gland,
                       tumour=self.tumour if tumour else study.tumour)


def segmenter_meta(cfg: dict, synthetic: bool, split: dict | None = None) -> dict:
    """What a segmenter checkpoint records of its run (``split``: a split record)."""
    from mrparotid import __version__
    from mrparotid.config import config_hash

    d = cfg["data"]
    meta = {"format": FORMAT, "version": __version__, "series": list(d["series"]),
            "spacing_mm": float(d["spacing_mm"]), "percentiles": list(d["percentiles"]),
            "image_size": int(d["image_size"]), "model": dict(cfg["model"]),
            "postprocess": dict(cfg["postprocess"]), "config_hash": config_hash(cfg),
            "synthetic": bool(synthetic)}
    if split is not None:
        meta["split"] = split
    return meta


def load_segmenter(path: str | Path, *, device: str | None = None) -> LoadedSegmenter:
    """Load a segmenter checkpoint safely (``weights_only=True``).

    Raises
    ------
    CheckpointError
        File missing, unreadable, not written by ``mrparotid segment fit``, or a record section
        (:mod:`mrparotid.models.checkpoint_schema`) or the weights damaged.
    """
    from mrparotid.inference.predict import default_device
    from mrparotid.models.checkpoint import checkpoint_record, torch_load_safely
    from mrparotid.models.precision import model_channels_last

    path = Path(path)
    if not path.is_file():
        raise CheckpointError("segmenter checkpoint not found", path=path, fix=FIX)
    ckpt = torch_load_safely(path, "mrparotid segmenter checkpoint", FIX)
    meta = checkpoint_record(ckpt)
    if meta is None or meta.get("format") != FORMAT:
        what = " (it is a classifier checkpoint)" if meta is not None and "classes" in meta else ""
        raise CheckpointError(f"not an mrparotid segmenter checkpoint{what}", path=path, fix=FIX)
    device = device or default_device()
    model = model_channels_last(segmenter_from(ckpt, path).to(device).eval(), 2)
    return LoadedSegmenter(model, meta, path, device)


def segmenter_from(ckpt: dict, path: str | Path, fix: str = DAMAGED_FIX):
    """The segmenter network (on the CPU) that a loaded checkpoint of the segmenter format
    describes, with its weights; its record and weights are checked first
    (:mod:`mrparotid.models.checkpoint_schema`), ``fix`` says what to do when they fail.

    Raises
    ------
    CheckpointError
        A record section missing, of the wrong type or out of range; weights missing, not finite
        or not of the network the record describes.
    """
    from mrparotid.models.checkpoint_schema import network_from
    from mrparotid.segmentation.network import build_segmenter

    return network_from(ckpt, path, fix, lambda meta: build_segmenter(meta["model"], len(meta["series"])),
                        "segmenter")


def check_series(loaded: LoadedSegmenter, available, patient: str | None = None) -> None:
    """A MissingSeriesError when the patient lacks a series the segmenter was trained on."""
    from mrparotid.errors import MissingSeriesError

    missing = [s for s in loaded.series if s not in available]
    if missing:
        have = [s for s in ("T1", "CE-T1", "T2") if s in available]
        raise MissingSeriesError(
            f"the segmenter was trained on {', '.join(loaded.series)} but the patient has no "
            f"{' and no '.join(missing)} series", role=missing[0], patient=patient, path=loaded.path,
            fix=f"add the {'/'.join(missing)} series, or use a segmenter trained on "
                f"{', '.join(have)} (mrparotid segment fit --data.series [{','.join(have)}])")


def predict_masks(loaded: LoadedSegmenter, stack: SliceStack, *, batch_size: int = 16
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Thresholded gland and tumour (bool, z, y, x) on the T1 grid, before post-processing."""
    import torch

    from mrparotid.models.precision import channels_last, inference_autocast
    from mrparotid.segmentation.network import size_multiple

    threshold = float(loaded.meta["postprocess"]["threshold"])
    images, (h, w) = pad_to_multiple(stack.images, size_multiple(loaded.meta["model"]))
    gland = np.zeros(stack.grid_shape, bool)
    tumour = np.zeros(stack.grid_shape, bool)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = channels_last(torch.from_numpy(images[start:start + batch_size]).to(loaded.device))
            with inference_autocast("auto", loaded.device):
                logits = loaded.model(x)
            probs = torch.sigmoid(logits.float())[:, :, :h, :w].cpu().numpy()
            on_grid = to_grid(probs, stack.grid_shape) > threshold
            gland[start:start + len(probs)] = on_grid[:, 0]
            tumour[start:start + len(probs)] = on_grid[:, 1]
    return gland, tumour


def segment_stack(loaded: LoadedSegmenter, stack: SliceStack, study: Study | None = None) -> CleanMasks:
    """Prediction plus post-processing of one patient's slices (no error when nothing is found);
    ``study`` (the stack's, with its T1) names a lone gland's side, else that side is unknown."""
    check_series(loaded, stack.series, stack.patient_id)
    gland, tumour = predict_masks(loaded, stack)
    pp = loaded.meta["postprocess"]
    return postprocess(gland, tumour, stack.spacing, min_component_mm3=float(pp["min_component_mm3"]),
                       tumour_max_distance_mm=float(pp["tumour_max_distance_mm"]), study=study)


def segment_study(loaded: LoadedSegmenter, study: Study, *, require_gland: bool = True) -> AutoMasks:
    """Automatic gland (1 right, 2 left) and tumour masks of ``study`` on its T1 grid.

    Raises
    ------
    MissingSeriesError
        The study lacks a series the segmenter was trained on.
    InputError
        ``require_gland`` and no gland was found on either side.
    """
    check_series(loaded, study.series, study.patient_id)
    stack = study_slices(study, loaded.series, float(loaded.meta["spacing_mm"]),
                         tuple(loaded.meta["percentiles"]))
    clean = segment_stack(loaded, stack, study)
    if require_gland and not clean.sides:
        raise InputError("the segmenter found no parotid gland", patient=study.patient_id,
                         fix=NO_GLAND_FIX)
    return AutoMasks(study.patient_id, clean.gland, clean.tumour, clean.sides, study.spacing,
                     study.origin, study.direction, loaded.synthetic, clean.warnings)


def latest_segmenter(root: str | Path = "runs") -> Path:
    """The newest segmenter checkpoint of a finished run under ``root``
    (:func:`mrparotid.inference.runs.newest_checkpoint`: best.ckpt before last.ckpt).

    Raises
    ------
    CheckpointError
        No segmenter run under ``root``.
    """
    from mrparotid.inference.runs import required_checkpoint

    return required_checkpoint("segmenter", root, CheckpointError(
        f"no segmenter checkpoint given and no segmenter run under {root}/", path=root,
        fix="train one with 'mrparotid segment fit' or pass --checkpoint PATH"))


def read_series_study(case, loaded: LoadedSegmenter, *, roles_file: str | Path | None = None,
                      hint: str = "folder"):
    """(Study on the T1 grid with the segmenter's series and no masks, the T1 image as read) of a
    patient folder that may hold only the series; ``case`` a :class:`PatientCase`.

    Raises
    ------
    InputError
        Unreadable files; :class:`MissingSeriesError` when a series the segmenter takes is missing.
    """
    from mrparotid.data.grid import build_study
    from mrparotid.data.preprocess import patient_files, read_study_images
    from mrparotid.io.files import read_image

    files = patient_files(case, require_tumour=False, series=("T1",), hint=hint, require_gland=False)
    if "study" in files.paths:           # a DICOM study export (its reader wants gland contours)
        images = read_study_images(files, require_tumour=False, roles_file=roles_file)
        check_series(loaded, images, case.patient_id)
    else:                                # named files: checked before any is read
        check_series(loaded, files.paths, case.patient_id)
        images = {role: read_image(files.paths[role], patient=case.patient_id)
                  for role in dict.fromkeys(("T1", *loaded.series))}
    images = {role: images[role] for role in dict.fromkeys(("T1", *loaded.series))}
    return build_study(files, images, require_gland=False), images["T1"]
