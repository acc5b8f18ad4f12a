"""Study on one grid → labelled axial slices of each parotid side, as fixed-scale square crops.

Conventions: volumes are indexed (z, y, x) on the reference grid (see :mod:`mrparotid.data.grid`);
sides are named from the patient's point of view, ``"L"`` (LPS +x) and ``"R"``. Crops are stacked
as planes (T1, CE-T1, T2, gland, tumour), each ``size x size`` pixels, stored as uint8 where
255 = 1.0. The model's channels are chosen from these planes at load time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import label as connected_components
from skimage.transform import resize

from mrparotid.constants import CLASSES, SERIES, parse_channels
from mrparotid.errors import InputError
from mrparotid.data.grid import Study

PLANES: tuple[str, ...] = SERIES + ("gland", "tumour")
SIDES: tuple[str, ...] = ("L", "R")
UNLABELLED = -1


@dataclass(frozen=True)
class PatientSlices:
    """All crops of one patient. ``crops`` is uint8 (n, 5, size, size) in :data:`PLANES` order."""

    patient_id: str
    crops: np.ndarray
    labels: np.ndarray          # int64 (n,), index into CLASSES, or UNLABELLED
    sides: np.ndarray           # str (n,), "L" or "R"
    slice_index: np.ndarray     # int64 (n,), axial index k on the reference grid
    z_mm: np.ndarray            # float64 (n,), LPS z of the slice centre in mm

    def __len__(self) -> int:
        return len(self.labels)


def side_regions(study: Study) -> dict[str, np.ndarray]:
    """Boolean (z, y, x) region of each side that has gland or tumour.

    With gland labels 1 and 2 present, each label is one side; otherwise each side is the largest
    connected component of gland ∪ tumour on that side of the mid-sagittal plane. The plane lies
    halfway between the two largest components when they are > 20 mm apart in LPS x, else at
    the centre of the field of view. Tumour components on a side are added to it.
    """
    gland = study.gland
    tumour = study.tumour if study.tumour is not None else np.zeros_like(gland)
    values = set(np.unique(gland)) - {0}
    union = (gland > 0) | (tumour > 0)
    if values == {1, 2}:
        parts = [gland == 1, gland == 2]
    else:
        comp = connected_components(union, connectivity=3)
        sizes = np.bincount(comp.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        parts = [comp == (i + 1) for i in order]
    centres_x = [_centroid_x(study, p) for p in parts]
    if values != {1, 2} and len(parts) >= 2 and abs(centres_x[0] - centres_x[1]) > 20.0:
        mid_x = (centres_x[0] + centres_x[1]) / 2
    elif values == {1, 2}:
        mid_x = (centres_x[0] + centres_x[1]) / 2
    else:
        nz, ny, nx = study.shape
        mid_x = float(study.index_to_lps(np.array([[(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2]]))[0, 0])
    regions: dict[str, np.ndarray] = {}
    for part, cx in zip(parts, centres_x):
        side = "L" if cx > mid_x else "R"
        if side not in regions:
            regions[side] = part.copy()
        elif (part & (tumour > 0)).any():
            regions[side] |= part
    if values == {1, 2} and tumour.any():
        # tumour voxels outside both labels join the side whose centroid is nearer in x
        rest = (tumour > 0) & ~np.logical_or.reduce(list(regions.values()))
        if rest.any():
            comp = connected_components(rest, connectivity=3)
            for i in range(1, comp.max() + 1):
                piece = comp == i
                regions["L" if _centroid_x(study, piece) > mid_x else "R"] |= piece
    return {s: regions[s] for s in SIDES if s in regions}


def _centroid_x(study: Study, mask: np.ndarray) -> float:
    idx = np.argwhere(mask)
    return float(study.index_to_lps(idx.mean(0, keepdims=True))[0, 0])


def label_side_slices(region: np.ndarray, tumour: np.ndarray | None, diagnosis: str | None,
                      *, mode: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Axial slices of one side and their class labels.

    ``mode="train"`` follows the paper: slices with tumour voxels get the diagnosis; on a side
    without any tumour, every slice with gland gets ``no_tumour``; slices of a tumour-bearing side
    without tumour on that slice are left out. ``mode="all"`` keeps every slice of the side and
    labels the left-out ones (and all tumour slices when ``diagnosis`` is None) ``UNLABELLED``.

    Returns
    -------
    slice_index : int64 (n,)
    labels : int64 (n,)

    Examples
    --------
    >>> region = np.zeros((8, 4, 4), bool); region[1:7, 1:3, 1:3] = True
    >>> tumour = np.zeros_like(region); tumour[4:7, 2, 2] = True
    >>> label_side_slices(region, tumour, "warthin")
    (array([4, 5, 6]), array([2, 2, 2]))
    """
    present = region.reshape(region.shape[0], -1).any(1)
    if tumour is None:
        on_slice = np.zeros(region.shape[0], bool)
    else:
        on_slice = (tumour.astype(bool) & region).reshape(region.shape[0], -1).any(1)
    side_has_tumour = bool(on_slice.any())
    labels = np.full(region.shape[0], UNLABELLED, dtype=np.int64)
    if side_has_tumour:
        labels[on_slice] = CLASSES.index(diagnosis) if diagnosis else UNLABELLED
    elif tumour is not None:
        labels[present] = CLASSES.index("no_tumour")
    keep = present & (labels != UNLABELLED) if mode == "train" else present
    if mode == "train" and side_has_tumour and diagnosis is None:
        raise ValueError("mode='train' needs the diagnosis")
    idx = np.flatnonzero(keep)
    return idx.astype(np.int64), labels[idx]


def crop_box(region: np.ndarray, spacing: tuple[float, float, float], margin_mm: float
             ) -> tuple[int, int, int, int]:
    """Square (in mm) in-plane box around ``region`` over all its slices, plus ``margin_mm``.

    Returns ``(y0, y1, x0, x1)`` pixel bounds (half-open), possibly outside the image.
    """
    ys, xs = np.nonzero(region.any(0))
    sx, sy = spacing[0], spacing[1]
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    half_mm = max((ys.max() - ys.min() + 1) * sy, (xs.max() - xs.min() + 1) * sx) / 2 + margin_mm
    hy, hx = half_mm / sy, half_mm / sx
    y0, x0 = int(np.floor(cy - hy + 0.5)), int(np.floor(cx - hx + 0.5))
    return y0, y0 + max(1, int(round(2 * hy))), x0, x0 + max(1, int(round(2 * hx)))


def extract_crops(volume: np.ndarray, slice_index: np.ndarray, box: tuple[int, int, int, int],
                  size: int, *, is_mask: bool) -> np.ndarray:
    """Cut ``box`` from the given axial slices and resize to ``size x size``.

    Pixels outside the volume are NaN for images (so they can be left out of intensity
    statistics) and 0 for masks. Images are resized bilinearly with anti-aliasing, masks by
    nearest neighbour. Returns float32 (n, size, size).
    """
    y0, y1, x0, x1 = box
    nz, ny, nx = volume.shape
    out = np.full((len(slice_index), y1 - y0, x1 - x0), 0.0 if is_mask else np.nan, np.float32)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, ny), max(x0, 0), min(x1, nx)
    if sy0 < sy1 and sx0 < sx1:
        out[:, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = volume[slice_index, sy0:sy1, sx0:sx1]
    if out.shape[1:] == (size, size):
        return out
    shape = (len(slice_index), size, size)
    if is_mask:
        return resize(out, shape, order=0, anti_aliasing=False, preserve_range=True).astype(np.float32)
    nan = np.isnan(out)
    filled = np.where(nan, 0.0, out)
    res = resize(filled, shape, order=1, anti_aliasing=True, preserve_range=True)
    outside = resize(nan.astype(np.float32), shape, order=0, anti_aliasing=False) > 0.5
    res[outside] = np.nan
    return res.astype(np.float32)


def normalise_percentiles(stack: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Map intensities to [0, 1] by the ``low``/``high`` percentiles of the finite values.

    NaN stays NaN. A constant stack maps to 0.

    >>> normalise_percentiles(np.array([0., 5., 10.]), 0, 100)
    array([0. , 0.5, 1. ], dtype=float32)
    """
    finite = stack[np.isfinite(stack)]
    if finite.size == 0:
        return np.zeros_like(stack, dtype=np.float32)
    lo, hi = np.percentile(finite, [low, high])
    if hi <= lo:
        return np.where(np.isnan(stack), np.nan, 0.0).astype(np.float32)
    return np.clip((stack - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats (NaN → 0) to uint8 with 255 = 1.0."""
    return np.rint(np.nan_to_num(unit, nan=0.0) * 255.0).astype(np.uint8)


def patient_slices(study: Study, diagnosis: str | None, *, image_size: int = 224,
                   margin_mm: float = 10.0, percentiles: tuple[float, float] = (1.0, 99.0),
                   mode: str = "train") -> PatientSlices:
    """Every labelled (``mode="train"``) or every (``"all"``) side slice of a study, cropped.

    Raises
    ------
    InputError
        ``mode="train"`` and the tumour mask is missing or empty.
    """
    if mode == "train" and (study.tumour is None or not study.tumour.any()):
        raise InputError("tumour mask is empty or missing; a training patient needs one",
                         patient=study.patient_id,
                         fix="contour the tumour (tumour.nii.gz, nonzero = tumour) or use the "
                             "patient only for diagnosis")
    regions = side_regions(study)
    per_side = []
    for side, region in regions.items():
        idx, labels = label_side_slices(region, study.tumour, diagnosis, mode=mode)
        if len(idx):
            per_side.append((side, region, idx, labels, crop_box(region, study.spacing, margin_mm)))
    n = sum(len(p[2]) for p in per_side)
    crops = np.zeros((n, len(PLANES), image_size, image_size), np.uint8)
    present = [role for role in SERIES if role in study.series]  # a missing series stays 0
    raw = {role: [] for role in present}
    for side, region, idx, _, box in per_side:
        for role in present:
            raw[role].append(extract_crops(study.series[role], idx, box, image_size, is_mask=False))
    for role in present:
        p = PLANES.index(role)
        if n:
            stacked = normalise_percentiles(np.concatenate(raw[role]), *percentiles)
            crops[:, p] = to_uint8(stacked)
    start = 0
    gland = (study.gland > 0).astype(np.float32)
    tumour = None if study.tumour is None else (study.tumour > 0).astype(np.float32)
    for side, region, idx, _, box in per_side:
        sl = slice(start, start + len(idx))
        crops[sl, PLANES.index("gland")] = to_uint8(extract_crops(gland, idx, box, image_size, is_mask=True))
        if tumour is not None:
            crops[sl, PLANES.index("tumour")] = to_uint8(
                extract_crops(tumour, idx, box, image_size, is_mask=True))
        start += len(idx)
    z_all = study.slice_z_mm()
    idx_all = np.concatenate([p[2] for p in per_side]) if per_side else np.zeros(0, np.int64)
    return PatientSlices(
        patient_id=study.patient_id,
        crops=crops,
        labels=np.concatenate([p[3] for p in per_side]) if per_side else np.zeros(0, np.int64),
        sides=np.array([p[0] for p in per_side for _ in p[2]], dtype="<U1"),
        slice_index=idx_all,
        z_mm=z_all[idx_all] if len(idx_all) else np.zeros(0),
    )


def select_channels(crops: np.ndarray, channels: tuple[str, ...] | list[str],
                    series_mask: str = "none") -> np.ndarray:
    """Model input from stored planes: uint8 (n, 5, H, W) → uint8 (n, len(channels), H, W).

    ``series_mask`` ``"gland"``/``"tumour"`` zeroes the MR series outside that mask (the paper's
    Fig. 3 shows tumour-only series); ``"none"`` keeps them whole. ``"gland"`` keeps the tumour
    too, as gland contours often leave it out. The ``mask`` channel is the parotid gland mask.
    Channels come out in the fixed order of :data:`mrparotid.constants.CHANNELS`, whatever the
    order asked for.
    """
    channels = parse_channels(channels)
    picks = []
    keep = None
    if series_mask != "none":
        keep = crops[:, PLANES.index(series_mask)] > 0
        if series_mask == "gland":
            keep |= crops[:, PLANES.index("tumour")] > 0
    for ch in channels:
        if ch == "mask":
            picks.append(crops[:, PLANES.index("gland")])
        else:
            plane = crops[:, PLANES.index(ch)]
            picks.append(plane if keep is None else np.where(keep, plane, 0).astype(np.uint8))
    return np.stack(picks, axis=1)
