"""What discovery learns of one image series of a study folder (shown) and the header values that
decide its role (not shown). Shared by :mod:`~mrparotid.dicom.discovery` and
:mod:`~mrparotid.dicom.roles`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a study folder.

    ``orientation`` is ``axial``/``sagittal``/``coronal``, ``oblique <plane> <angle> deg`` (angle
    between the slice normal and the nearest scanner axis) or ``-`` without plane geometry;
    ``matrix`` is (columns, rows); ``spacing_mm`` (column, row, median slice step) in mm;
    ``role`` the role the rules gave it (None: ignored) and ``reason`` why.
    """

    series_uid: str
    series_number: int | None
    modality: str
    description: str
    orientation: str
    matrix: tuple[int, int]
    spacing_mm: tuple[float, float, float]
    n_slices: int
    files: tuple[Path, ...]
    role: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class SeriesTags:
    """Header values that decide a series' role but are not shown (protocol, image type, contrast)."""

    protocol: str
    image_type: tuple[str, ...]
    contrast_agent: bool
