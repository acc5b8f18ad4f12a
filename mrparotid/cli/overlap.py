"""``--allow-overlap`` of ``diagnose`` and ``evaluate`` (and ``fit --segmenter``): the command-line
side of :func:`mrparotid.segmentation.overlap.check_segmenter_overlap`."""

from __future__ import annotations

import sys


def check_overlap(args, segmenter, cls_meta_or_split: dict, cls_path) -> None:
    """Refuse a segmenter (a :class:`mrparotid.inference.masks.Segmenter`) that trained or validated
    on any of the classifier's test patients, or that records no split; with ``--allow-overlap``
    print the warning on stderr instead.

    Raises
    ------
    ConfigError
        The overlap, its count and the fix, without ``--allow-overlap``.
    """
    from mrparotid.segmentation.overlap import check_segmenter_overlap

    warning = check_segmenter_overlap(getattr(segmenter.loaded(), "meta", {}), cls_meta_or_split,
                                      allow=bool(getattr(args, "allow_overlap", False)),
                                      seg_path=segmenter.path, cls_path=cls_path)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
