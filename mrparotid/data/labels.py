"""One side's region and the tumour mask → which axial slices to use and their class labels.

The slice procedure (modes ``"train"`` and ``"diagnose"``, the same selection): the tumour slices
of a tumour-bearing side, plus every gland slice of a side without tumour. ``prepare``,
``evaluate`` and ``diagnose`` all select slices by it, and the patient rule counts exactly these
slices. Mode ``"all"`` (every slice of a side) is the opt-in screening view.
"""

from __future__ import annotations

import numpy as np

from mrparotid.constants import CLASSES

#: Label of a slice whose class is not known (no diagnosis given, no tumour mask, or a left-out
#: slice in ``mode="all"``).
UNLABELLED = -1

#: ``train``: the slice procedure, labelled (diagnosis and tumour mask required); ``diagnose``: the
#: same slices, diagnosis and tumour optional; ``all``: every slice of a side (a screening view).
LABEL_MODES: tuple[str, ...] = ("train", "diagnose", "all")


def label_side_slices(region: np.ndarray, tumour: np.ndarray | None, diagnosis: str | None,
                      *, mode: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Axial slices of one side and their class labels.

    ``mode="train"`` and ``"diagnose"`` select the same slices (the slice procedure): on a side
    with tumour, the slices with tumour voxels (labelled with the diagnosis, or ``UNLABELLED``
    when it is not known); on a side without any tumour, every slice with gland (labelled
    ``no_tumour``). ``"train"`` needs the diagnosis and a tumour mask. ``mode="all"`` keeps every
    slice of the side and labels the tumour-side slices without tumour ``UNLABELLED``. Without a
    tumour mask (``tumour=None``, only in ``"all"``) every label is ``UNLABELLED``.

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

    Raises
    ------
    ValueError
        Unknown ``mode``; ``"train"`` without a diagnosis on a tumour side; the procedure
        (``"train"``, ``"diagnose"``) without a tumour mask.

    Examples
    --------
    >>> region = np.zeros((8, 4, 4), bool); region[1:7, 1:3, 1:3] = True
    >>> tumour = np.zeros_like(region); tumour[4:7, 2, 2] = True
    >>> label_side_slices(region, tumour, "warthin")
    (array([4, 5, 6]), array([2, 2, 2]))
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"mode must be one of {LABEL_MODES}, got {mode!r}")
    if mode != "all" and tumour is None:
        raise ValueError(f"mode={mode!r} (the slice procedure) needs a tumour mask")
    present = region.reshape(region.shape[0], -1).any(1)
    if tumour is None:
        on_slice = np.zeros(region.shape[0], bool)
    else:
        on_slice = (tumour.astype(bool) & region).reshape(region.shape[0], -1).any(1)
    side_has_tumour = bool(on_slice.any())
    if mode == "train" and side_has_tumour and diagnosis is None:
        raise ValueError("mode='train' needs the diagnosis")
    labels = np.full(region.shape[0], UNLABELLED, dtype=np.int64)
    if side_has_tumour:
        labels[on_slice] = CLASSES.index(diagnosis) if diagnosis else UNLABELLED
    elif tumour is not None:
        labels[present] = CLASSES.index("no_tumour")
    keep = present if mode == "all" or not side_has_tumour else on_slice
    idx = np.flatnonzero(keep)
    return idx.astype(np.int64), labels[idx]
