"""Grad-CAM heat maps: where the model looked for each slice's predicted class.

Grad-CAM (Selvaraju et al. 2017) of the predicted class at the last residual stage (the last
``layerN`` of :class:`~mrparotid.models.resnet.ResNet`), by ``captum.attr.LayerGradCam`` with ReLU,
upsampled bilinearly to the crop (``LayerAttribution.interpolate``). Maps are float32 (n, H, W) on
the crop grid, >= 0, in the model's units (not normalised).

Each slice's JSON summary (:func:`cam_summaries`) holds the map's peak as a T1-grid voxel index
(z, y, x) and as an LPS position in mm, and the share of the map's mass inside the tumour mask
when the tumour is known. :func:`sanity_check` is the model-randomisation test of Adebayo et al.
2018 (*Sanity Checks for Saliency Maps*): maps that do not change when the weights are
randomised explain nothing about the model.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch
from torch import nn

from mrparotid.data.crops import crop_box
from mrparotid.data.grid import Study
from mrparotid.data.preprocess import PatientSlices
from mrparotid.data.sides import side_regions
from mrparotid.errors import CheckpointError
from mrparotid.inference.diagnose import PatientEvidence
from mrparotid.models.checkpoint import LoadedModel

METHOD = ("Grad-CAM of the predicted class at the last residual stage ({layer}), ReLU, "
          "bilinear upsampling to the crop (captum LayerGradCam)")


def target_layer(model: nn.Module, path: str | None = None) -> tuple[str, nn.Module]:
    """The layer Grad-CAM hooks: the last residual stage ``layerN`` holding a convolution, else
    the model's last ``Conv2d``. Returns ``(name, module)``.

    Raises
    ------
    CheckpointError
        The model has no convolution at all (``path``: the checkpoint, for the message).
    """
    stages = [(name, m) for name, m in model.named_children()
              if re.fullmatch(r"layer\d+", name) and any(isinstance(c, nn.Conv2d) for c in m.modules())]
    if stages:
        return max(stages, key=lambda s: int(s[0][len("layer"):]))
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if convs:
        return convs[-1]
    raise CheckpointError(f"the model ({type(model).__name__}) has no convolutional stage for "
                          "Grad-CAM to hook", path=path,
                          fix="use a checkpoint of a convolutional model from 'mrparotid fit', "
                              "or diagnose without --explain/--html")


def grad_cam(model: nn.Module, x_uint8: np.ndarray, targets: np.ndarray, *, batch_size: int = 16,
             present: np.ndarray | None = None, path: str | None = None) -> np.ndarray:
    """Grad-CAM maps, float32 (n, H, W) >= 0, of class ``targets[i]`` for input ``x_uint8[i]``
    (uint8 (n, C, H, W), 255 = 1.0), fed to the model as
    :func:`~mrparotid.inference.predict.predict_probs` feeds it (float32, plus the present-flag
    planes of a series-dropout model: ``present`` bool (k,) or (n, k), default all present).

    Raises
    ------
    CheckpointError
        No convolutional stage to hook (:func:`target_layer`).
    """
    from captum.attr import LayerAttribution, LayerGradCam

    from mrparotid.data.series_dropout import append_present_flags

    target_layer(model, path)                     # the clear error before any work
    x = torch.as_tensor(np.asarray(x_uint8))
    n, size = len(x), tuple(x.shape[-2:])
    if n == 0:
        return np.zeros((0, *size), np.float32)
    model = _with_grad_weights(model).eval()
    _, layer = target_layer(model, path)
    flags = getattr(model, "series_flags", ())
    present = np.ones(len(flags), bool) if present is None else np.asarray(present, bool)
    device = next(model.parameters()).device
    cam = LayerGradCam(model, layer)
    out = []
    with torch.enable_grad():
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size].to(device).float().div_(255.0)
            if flags:
                xb = append_present_flags(xb, present if present.ndim == 1
                                          else present[start:start + len(xb)])
            tb = torch.as_tensor(np.asarray(targets[start:start + batch_size]), dtype=torch.long,
                                 device=device)
            attr = cam.attribute(xb, target=tb, relu_attributions=True)
            attr = LayerAttribution.interpolate(attr, size, interpolate_mode="bilinear")
            out.append(attr[:, 0].detach().float().cpu().numpy())
    return np.clip(np.concatenate(out), 0.0, None).astype(np.float32)


def _with_grad_weights(model: nn.Module) -> nn.Module:
    """``model``, or a copy of it when its weights are inference tensors (made under
    ``torch.inference_mode``, e.g. converted to channels_last there), which autograd refuses."""
    tensors = [*model.parameters(), *model.buffers()]
    return copy.deepcopy(model) if any(t.is_inference() for t in tensors) else model


def side_boxes(study: Study, margin_mm: float) -> dict[str, tuple[int, int, int, int]]:
    """The crop box ``(y0, y1, x0, x1)`` (pixels, half-open) of each side, as
    :func:`mrparotid.data.preprocess.select_side_slices` cuts it."""
    return {side: crop_box(region, study.spacing, margin_mm)
            for side, region in side_regions(study).items()}


def crop_to_volume(rows: np.ndarray, cols: np.ndarray, box: tuple[int, int, int, int],
                   size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop pixel centres (row, col) of a ``size x size`` crop → in-plane volume index (y, x),
    as floats. The inverse of :func:`~mrparotid.data.crops.extract_crops`' resize (scikit-image
    maps output pixel ``i`` to input coordinate ``(i + 0.5) * in / out - 0.5``).

    >>> crop_to_volume(np.array([0]), np.array([3]), (10, 14, 20, 24), 4)
    (array([10.]), array([23.]))
    """
    y0, y1, x0, x1 = box
    ys = y0 + (np.asarray(rows, float) + 0.5) * (y1 - y0) / size - 0.5
    xs = x0 + (np.asarray(cols, float) + 0.5) * (x1 - x0) / size - 0.5
    return ys, xs


def cam_summaries(cams: np.ndarray, slices: PatientSlices, study: Study, margin_mm: float, *,
                  tumour_known: bool) -> list[dict]:
    """Per slice (in ``slices`` order): ``peak_voxel`` [z, y, x] (T1 grid index, rounded),
    ``peak_mm`` [x, y, z] (LPS mm), ``tumour_share`` (map mass inside the tumour mask, 0..1; None
    when the tumour is unknown) and ``peak`` (the map's maximum). A map that is zero everywhere
    (no evidence for the class at that stage) gets None for peak and share."""
    boxes = side_boxes(study, margin_mm)
    size = cams.shape[-1] if cams.ndim == 3 else 0
    tumour = slices.plane("tumour") > 0
    out = []
    for i, cam in enumerate(cams):
        total = float(cam.sum())
        if not total > 0.0:
            out.append({"peak_voxel": None, "peak_mm": None, "tumour_share": None, "peak": 0.0})
            continue
        r, c = np.unravel_index(int(cam.argmax()), cam.shape)
        y, x = crop_to_volume(np.array([r]), np.array([c]), boxes[str(slices.sides[i])], size)
        k = int(slices.slice_index[i])
        lps = study.index_to_lps(np.array([[k, y[0], x[0]]]))[0]
        share = float((cam * tumour[i]).sum() / total) if tumour_known else None
        out.append({"peak_voxel": [k, int(round(y[0])), int(round(x[0]))],
                     "peak_mm": [round(float(v), 1) for v in lps],
                     "tumour_share": None if share is None else round(share, 3),
                     "peak": round(float(cam.max()), 5)})
    return out


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (Adebayo et al.'s full cascading
    randomisation: weights drawn afresh from each layer's initialiser, BatchNorm statistics reset)."""
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.normal_(module.weight, 1.0, 0.5)
            nn.init.normal_(module.bias, 0.0, 0.5)
    return clone.eval()


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a flat array, ties sharing their mean rank (as Spearman's rho needs).

    >>> average_ranks(np.array([3.0, 1.0, 1.0, 2.0]))
    array([3. , 0.5, 0.5, 2. ])
    """
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + ends - 1) / 2.0)[inverse.ravel()]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Spearman rank correlation of paired maps ``a[i]``, ``b[i]`` (n, H, W). A pair where
    a map is constant counts as 0 (it ranks nothing); nan for n = 0."""
    rhos = []
    for u, v in zip(a.reshape(len(a), -1) if len(a) else [], b.reshape(len(b), -1) if len(b) else []):
        ru, rv = average_ranks(u), average_ranks(v)
        su, sv = ru.std(), rv.std()
        rhos.append(0.0 if su == 0 or sv == 0 else float(((ru - ru.mean()) * (rv - rv.mean())).mean() / (su * sv)))
    return float(np.mean(rhos)) if rhos else float("nan")


def sanity_check(model: nn.Module, x_uint8: np.ndarray, targets: np.ndarray, *,
                 seed: int = 0) -> dict:
    """Model-randomisation test (Adebayo et al. 2018): mean rank correlation of the maps of the
    model with a second run of itself (``"self"``, should be 1: the maps are deterministic) and
    with a fully randomised copy (``"randomised"``, should be far lower)."""
    maps = grad_cam(model, x_uint8, targets)
    again = grad_cam(model, x_uint8, targets)
    random = grad_cam(randomised_copy(model, seed), x_uint8, targets)
    return {"self": rank_correlation(maps, again), "randomised": rank_correlation(maps, random),
            "slices": len(maps)}


def explain_patient(evidence: PatientEvidence, loaded: LoadedModel, report: dict | None = None
                    ) -> np.ndarray:
    """Grad-CAM maps (n, H, W) of a patient's slices (``evidence`` order), each for its predicted
    class. With ``report`` (:func:`~mrparotid.inference.diagnose.build_report`), also add a
    ``"cam"`` summary to each slice row (matched by side and slice index) and an ``"explain"``
    entry naming the method and the layer."""
    path = str(loaded.path)
    layer, _ = target_layer(loaded.model, path)
    cams = grad_cam(loaded.model, evidence.x, evidence.probs.argmax(1) if len(evidence.probs)
                    else np.zeros(0, int), present=getattr(evidence, "present", None), path=path)
    if report is not None:
        tumour_known = evidence.study.tumour is not None and bool(evidence.study.tumour.any())
        margin = float(loaded.meta["preprocess"]["margin_mm"])
        summaries = cam_summaries(cams, evidence.slices, evidence.study, margin,
                                  tumour_known=tumour_known)
        by_key = {(str(s), int(k)): summaries[i]
                  for i, (s, k) in enumerate(zip(evidence.slices.sides, evidence.slices.slice_index))}
        for row in report["slices"]:
            row["cam"] = by_key[(row["side"], int(row["index"]))]
        report["explain"] = {"method": METHOD.format(layer=layer), "layer": layer,
                             "tumour_share": "share of the map inside the tumour mask"
                             if tumour_known else "tumour mask not known"}
    return cams


def format_cams(report: dict) -> str:
    """The heat-map lines of the text report: per slice, the peak (LPS mm) and tumour share."""
    if "explain" not in report:
        return ""
    lines = [f"heat maps: {report['explain']['method']}"]
    if not report["slices"]:
        lines.append("no slices were selected: no heat maps")
    for s in report["slices"]:
        cam = s.get("cam") or {}
        peak = cam.get("peak_mm")
        where = ("map empty (no evidence for the class at this stage)" if peak is None else
                 "peak at LPS (" + ", ".join(f"{v:.1f}" for v in peak) + ") mm")
        share = cam.get("tumour_share")
        lines.append(f"{s['side']:>4} {s['index']:>3} {s['z_mm']:>7.1f}  {s['pred']:<20} {where}"
                     + ("" if share is None else f", {100 * share:.0f}% of the map in the tumour"))
    return "\n".join(lines)
