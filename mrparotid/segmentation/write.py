"""Automatic masks → files: ``parotid_auto.nii.gz`` (uint8, 1 right / 2 left gland / 3 gland,
side unknown: see :mod:`mrparotid.segmentation.postprocess`) and
``tumour_auto.nii.gz`` (uint8 0/1) on the *original* T1 geometry (size, spacing, origin and
direction of the T1 file), so they overlay the T1 series in 3D Slicer or ITK-SNAP, plus an
overlay montage PNG for a quick check. Every file is written atomically.

The masks live on the T1 reference grid, which is the T1 grid with its axes permuted/flipped
(:func:`mrparotid.data.grid.reference_grid`); going back is a nearest-neighbour resampling at the
same voxel centres, so no voxel changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrparotid.io.atomic import atomic_path
from mrparotid.segmentation.infer import AutoMasks
from mrparotid.segmentation.postprocess import UNKNOWN_SIDE

GLAND_FILE = "parotid_auto.nii.gz"
TUMOUR_FILE = "tumour_auto.nii.gz"
OVERLAY_FILE = "overlay_auto.png"
#: How the overlay names a side key of ``AutoMasks.sides``.
SIDE_WORDS = {"L": "left", "R": "right", UNKNOWN_SIDE: "side unknown"}


def on_original_grid(array: np.ndarray, auto: AutoMasks, t1: sitk.Image) -> sitk.Image:
    """A (z, y, x) uint8 array on the reference grid of ``auto`` → an image on ``t1``'s grid."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.uint8))
    image.SetSpacing(tuple(float(s) for s in auto.spacing))
    image.SetOrigin(tuple(float(o) for o in auto.origin))
    image.SetDirection(tuple(float(d) for d in np.asarray(auto.direction).ravel()))
    return sitk.Resample(image, t1, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def write_image(image: sitk.Image, path: Path) -> Path:
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return path


def write_auto_masks(auto: AutoMasks, t1: sitk.Image, out_dir: str | Path,
                     t1_volume: np.ndarray | None = None) -> dict[str, Path]:
    """Write the masks (and, given the T1 reference-grid volume ``t1_volume``, the overlay PNG)
    into ``out_dir``; returns the paths by role (``gland``, ``tumour``, ``overlay``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"gland": write_image(on_original_grid(auto.gland, auto, t1), out_dir / GLAND_FILE),
             "tumour": write_image(on_original_grid(auto.tumour, auto, t1), out_dir / TUMOUR_FILE)}
    if t1_volume is not None:
        paths["overlay"] = write_overlay(auto, t1_volume, out_dir / OVERLAY_FILE)
    return paths


def montage_slices(auto: AutoMasks, max_slices: int = 12) -> np.ndarray:
    """Up to ``max_slices`` axial indices spread evenly over the slices with gland or tumour."""
    present = np.flatnonzero((auto.gland > 0).any((1, 2)) | (auto.tumour > 0).any((1, 2)))
    if len(present) <= max_slices:
        return present
    return present[np.unique(np.linspace(0, len(present) - 1, max_slices).round().astype(int))]


def write_overlay(auto: AutoMasks, t1_volume: np.ndarray, path: Path, *, max_slices: int = 12) -> Path:
    """Montage of axial T1 slices (radiological view: patient's right on the left) with the gland
    (yellow) and tumour (red) outlines; titled SYNTHETIC for phantom data."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mrparotid.data.crops import normalise_percentiles

    index = montage_slices(auto, max_slices)
    cols = max(1, min(4, len(index)))
    rows = max(1, int(np.ceil(len(index) / cols)))
    sy, sx = auto.spacing[1], auto.spacing[0]
    fig = Figure(figsize=(3 * cols, 3 * rows * sy * t1_volume.shape[1] / (sx * t1_volume.shape[2]) + 0.6))
    FigureCanvasAgg(fig)
    shown = normalise_percentiles(t1_volume[index] if len(index) else t1_volume[:1], 1.0, 99.0)
    for n, k in enumerate(index):
        ax = fig.add_subplot(rows, cols, n + 1)
        ax.imshow(shown[n], cmap="gray", vmin=0, vmax=1, aspect=sy / sx)
        if (auto.gland[k] > 0).any():
            ax.contour(auto.gland[k] > 0, levels=[0.5], colors="yellow", linewidths=0.8)
        if (auto.tumour[k] > 0).any():
            ax.contour(auto.tumour[k] > 0, levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"slice {k}", fontsize=8)
        ax.text(0.02, 0.5, "R", color="white", transform=ax.transAxes, fontsize=8)
        ax.text(0.94, 0.5, "L", color="white", transform=ax.transAxes, fontsize=8)
        ax.set_axis_off()
    found = ", ".join(f"{SIDE_WORDS.get(s, s)}: gland {f.gland_ml:.1f} ml, tumour {f.tumour_ml:.1f} ml"
                      for s, f in sorted(auto.sides.items())) or "no gland found"
    title = f"{auto.patient_id}: automatic masks (yellow gland, red tumour) - check before use\n{found}"
    fig.suptitle(("SYNTHETIC - " if auto.synthetic else "") + title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return path
