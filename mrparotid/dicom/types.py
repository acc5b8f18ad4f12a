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
    ``n_slices`` the slice positions (frames at one position, b-values or phases, count once);
    ``role`` the role the rules gave it (None: ignored) and ``reason`` why; ``b_values`` the
    diffusion b-values (s/mm², ascending) its headers hold (empty for a non-diffusion series).
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
    b_values: tuple[float, ...] = ()


@dataclass(frozen=True)
class SeriesTags:
    """Header values that decide a series' role but are not shown: protocol, image type (first
    file, upper case), contrast agent; diffusion b-values (s/mm², ascending, clustered) read from
    the headers and where (``b_source``, e.g. ``Siemens (0019,100C)``); the number of temporal
    positions (dynamic phases) the series holds."""

    protocol: str
    image_type: tuple[str, ...]
    contrast_agent: bool
    b_values: tuple[float, ...] = ()
    b_source: str = ""
    temporal_positions: int = 1
