"""Diffusion b-values (s/mm²) and image types of DICOM headers, per frame, the way dcm2niix reads
them.

Sources, tried in this order for each frame: the standard DiffusionBValue (0018,9087) (inside
the per-frame, then the shared MR Diffusion functional group (0018,9117) of an enhanced file,
else at the top of a classic file); GE (0043,1039) (creator ``GEMS_PARM_01``), its first value,
where values of 10⁹ and more carry an offset of 10⁹ (the value mod 10⁹ is the b-value); Siemens
(0019,100C) B_value (creator ``SIEMENS MR HEADER``); Philips (2001,1003) Diffusion B-Factor
(creator ``Philips Imaging DD 001``). A private element counts only under its vendor's private
creator (or where the group has no creator at all, as some exports leave it): the same element
number means something else under another creator (GE (0019,100C) is no b-value).

Every vendor writes b = 0 into images that are no diffusion images (GE (0043,1039) and Philips
(2001,1003) sit in every MR image), so a b-value > 0 marks a diffusion series; a series of
b = 0 only is one when its name or image type says so (:mod:`mrparotid.dicom.roles`).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Sequence

import pydicom

#: Per vendor: (group, private creators, element offset, name shown in reasons).
PRIVATE_B_TAGS: tuple[tuple[int, tuple[str, ...], int, str], ...] = (
    (0x0043, ("GEMS_PARM_01",), 0x39, "GE (0043,1039)"),
    (0x0019, ("SIEMENS MR HEADER",), 0x0C, "Siemens (0019,100C)"),
    (0x2001, ("Philips Imaging DD 001", "Philips MR Imaging DD 001"), 0x03, "Philips (2001,1003)"),
)
STANDARD_SOURCE = "DiffusionBValue (0018,9087)"
DESCRIPTION_SOURCE = "the series description"
#: GE's offset on (0043,1039) b-values (dcm2niix: values >= 10⁹ are read mod 10⁹).
GE_B_OFFSET = 1_000_000_000
#: b-values within this many s/mm² (or 2 % of b) are one b-value (directions' rounding).
B_TOLERANCE = 5.0
#: ImageType / FrameType values of diffusion maps that are no diffusion-weighted image.
DIFFUSION_MAP_TYPES = frozenset({"ADC", "EADC", "EXP", "FA", "TENSOR"})

BValue = tuple[float, str]   # (b in s/mm², where it was read)


def frame_b_values(ds: pydicom.Dataset) -> list[BValue | None]:
    """The b-value and its source of each frame of ``ds`` (one entry for a classic file, one per
    frame for an enhanced file), None for a frame whose headers hold none."""
    top = _standard(ds) or _private(ds)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        return [top]
    shared = _first(ds.get("SharedFunctionalGroupsSequence"))
    shared_b = _standard(_first(shared.get("MRDiffusionSequence"))) if shared is not None else None
    out = []
    for per in ds.PerFrameFunctionalGroupsSequence:
        own = _standard(_first(per.get("MRDiffusionSequence")))
        out.append(own or shared_b or top)
    return out


def frame_types(ds: pydicom.Dataset) -> list[tuple[str, ...]]:
    """The upper-case image type of each frame: FrameType (0008,9007) of the per-frame (else
    shared) MR Image Frame Type group of an enhanced file, else ImageType (0008,0008)."""
    image_type = _upper(ds.get("ImageType"))
    if "PerFrameFunctionalGroupsSequence" not in ds:
        return [image_type]
    shared = _first(ds.get("SharedFunctionalGroupsSequence"))
    shared_type = _frame_type(shared) if shared is not None else None
    return [_frame_type(per) or shared_type or image_type
            for per in ds.PerFrameFunctionalGroupsSequence]


def series_b_values(per_frame: Sequence[BValue | None],
                    description: str = "") -> tuple[list[float | None], str]:
    """The b-value (s/mm², clustered: :func:`cluster_b`) of each frame of one series and where
    they were read (``Siemens (0019,100C)``; sources joined by "and").

    Frames without a b-value in a series whose other frames have one are b = 0 (Canon and older
    Toshiba write DiffusionBValue only where a gradient is applied); a series without any takes
    the one b-value its description names (:func:`b_from_description`), else every frame is None.
    """
    known = [b for b in per_frame if b is not None]
    if known:
        values = [b[0] if b is not None else 0.0 for b in per_frame]
        source = " and ".join(sorted({b[1] for b in known}))
    else:
        named = b_from_description(description)
        if named is None:
            return [None] * len(per_frame), ""
        values, source = [named] * len(per_frame), DESCRIPTION_SOURCE
    clusters = cluster_b(values)
    return [clusters[v] for v in values], source


def b_from_description(text: str) -> float | None:
    """The one b-value a series description names (``DWI_b1000``, ``diff b=800``), else None.

    >>> b_from_description("ep2d_diff_b1000_tra"), b_from_description("DWI b0 b1000")
    (1000.0, None)
    """
    found = re.findall(r"(?i)(?<![a-z0-9])b[ _=-]?(\d{1,5})(?![0-9])", text or "")
    return float(found[0]) if len(set(found)) == 1 else None


def cluster_b(values: Iterable[float]) -> dict[float, float]:
    """Each b-value → the b-value of its cluster (values within :data:`B_TOLERANCE` s/mm² or
    2 % of one another; the cluster's rounded median), so directions' rounding makes one b.

    >>> cluster_b([0, 998.5, 1000, 1001.2])[998.5]
    1000.0
    """
    ordered = sorted({float(v) for v in values})
    groups: list[list[float]] = []
    for v in ordered:
        if groups and v - groups[-1][-1] <= max(B_TOLERANCE, 0.02 * v):
            groups[-1].append(v)
        else:
            groups.append([v])
    out = {}
    for group in groups:
        centre = float(round(sorted(group)[len(group) // 2]))
        out.update({v: centre for v in group})
    return out


def format_b_values(values: Sequence[float]) -> str:
    """``0, 1000`` (b-values in s/mm², ascending)."""
    return ", ".join(f"{b:g}" for b in sorted(values))


def _standard(item: pydicom.Dataset | None) -> BValue | None:
    if item is None or "DiffusionBValue" not in item:
        return None
    value = _numbers(item["DiffusionBValue"].value, "FD")
    return (value[0], STANDARD_SOURCE) if value else None


def _private(ds: pydicom.Dataset) -> BValue | None:
    for group, creators, offset, name in PRIVATE_B_TAGS:
        tag = _private_tag(ds, group, creators, offset)
        if tag is None:
            continue
        elem = ds[tag]
        values = _numbers(elem.value, elem.VR)
        if not values:
            continue
        b = values[0]
        if group == 0x0043 and b >= GE_B_OFFSET:
            b = math.fmod(b, GE_B_OFFSET)
        return (b, name) if b >= 0 else None
    return None


def _private_tag(ds: pydicom.Dataset, group: int, creators: tuple[str, ...],
                 offset: int) -> int | None:
    """The tag of element ``offset`` of the private block of ``group`` reserved by one of
    ``creators``; the fixed (gggg,10xx) tag where the group has no private creator; else None."""
    wanted = {c.strip().upper() for c in creators}
    slots = [(slot, str(ds[(group, slot)].value or "").strip().upper())
             for slot in range(0x10, 0x100) if (group, slot) in ds]
    for slot, creator in slots:
        if creator in wanted:
            tag = (group << 16) | (slot << 8) | offset
            return tag if tag in ds else None
    fixed = (group << 16) | 0x1000 | offset
    return fixed if not slots and fixed in ds else None


def _numbers(value, vr: str) -> list[float]:
    """The finite numbers of an element value: numbers, text (IS/DS, backslash-separated) or
    the raw bytes of an element read without its VR (text, else little-endian FL/FD floats)."""
    if isinstance(value, bytes):
        text = value.decode("latin-1").strip("\0 ")
        items: list = text.split("\\") if text else []
        if not items or any(_number(v) is None for v in items):
            fmt, size = ("<d", 8) if vr == "FD" else ("<f", 4)
            items = [v[0] for v in struct.iter_unpack(fmt, value[: len(value) // size * size])]
    elif isinstance(value, str):
        items = value.split("\\")
    elif isinstance(value, (int, float)):
        items = [value]
    else:
        try:
            items = list(value)
        except TypeError:
            items = []
    numbers = (_number(v) for v in items)
    return [n for n in numbers if n is not None and math.isfinite(n)]


def _number(value) -> float | None:
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None


def _first(seq) -> pydicom.Dataset | None:
    try:
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None


def _frame_type(group: pydicom.Dataset) -> tuple[str, ...] | None:
    item = _first(group.get("MRImageFrameTypeSequence"))
    return _upper(item.get("FrameType")) or None if item is not None else None


def _upper(value) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(v).strip().upper() for v in items)
