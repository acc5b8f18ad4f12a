"""One side's region and the tumour mask → which axial slices to use and their class labels."""

from __future__ import annotations

import numpy as np

from mrparotid.constants import CLASSES

#: Label of a slice whose class is not known (no tumour mask, or a left-out slice in ``mode="all"``).
UNLABELLED = -1

#: ``train``: the paper's labelled slices; ``all``: every slice of a side (a screening view).
LABEL_MODES: tuple[str, ...] = ("train", "all")


def label_side_slices(region: np.ndarray, tumour: np.ndarray | None, diagnosis: str | None,
                      *, mode: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Axial slices of one side and their class labels.

    ``mode="train"`` follows the paper: slices with tumour voxels get the diagnosis; on a side
    without any tumour, every slice with gland gets ``no_tumour``; slices of a tumour-bearing side
    without tumour on that slice are left out. ``mode="all"`` keeps every slice of the side and
    labels the left-out ones (and all tumour slices when ``diagnosis`` is None) ``UNLABELLED``.

    Parameters
    ----------
    region : bool (z, y, x)
        The side (gland ∪ tumour of that side).
    tumour : (z, y, x) or None
        Nonzero = tumour; None when the patient has no tumour mask.

    Returns
    -------
    slice_index : int64 (n,)
    labels : int64 (n,), index into :data:`~mrparotid.constants.CLASSES` or ``UNLABELLED``

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
