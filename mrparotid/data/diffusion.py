"""Diffusion series → the ``DWI`` and ``ADC`` channels: b-value choice, ADC units and the ADC
computed from DWI where none is given.

Conventions: b-values in s/mm²; every ADC this package holds is in **x 10⁻³ mm²/s** (a parotid
gland about 1.0, a pleomorphic adenoma about 1.6–2.0, a Warthin tumour about 0.8–1.0); images are
SimpleITK images in LPS mm. The ``DWI`` channel is the image of the b-value closest to 1000
(at least :data:`MIN_HIGH_B`). What reading changed (a unit converted, an ADC computed, voxels
below the noise floor) travels with the image as a note (:func:`with_note`, :func:`notes_of`), which
the study on the T1 grid shows in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrparotid.errors import InputError

#: Highest b-value (s/mm²) that counts as the low b of an ADC fit.
MAX_LOW_B = 100.0
#: Lowest b-value (s/mm²) that counts as the high b (the ``DWI`` channel).
MIN_HIGH_B = 500.0
#: ADC units: name → factor to x 10⁻³ mm²/s.
ADC_UNITS: dict[str, float] = {"1e-6 mm2/s": 1e-3, "1e-3 mm2/s": 1.0, "mm2/s": 1e3}
#: Metadata key of the notes an image carries.
NOTE_KEY = "mrparotid_notes"


def with_note(image: sitk.Image, note: str) -> sitk.Image:
    """``image`` with ``note`` appended to its notes (metadata; lost on writing)."""
    notes = notes_of(image) + (note,)
    image.SetMetaData(NOTE_KEY, "\n".join(notes))
    return image


def notes_of(image: sitk.Image) -> tuple[str, ...]:
    """The notes :func:`with_note` attached to ``image``."""
    if not image.HasMetaDataKey(NOTE_KEY):
        return ()
    return tuple(n for n in image.GetMetaData(NOTE_KEY).split("\n") if n)


def adc_unit(values: np.ndarray) -> str:
    """The unit of an ADC map from the median of its voxels above zero: above 50 → x 10⁻⁶ mm²/s
    (the integers most DICOM ADC maps hold, tissue 500–3000), below 0.05 → mm²/s (floats such as
    0.0012 some NIfTI hold), else x 10⁻³ mm²/s. An all-zero map is x 10⁻³ mm²/s.

    >>> adc_unit(np.array([0, 800, 1200])), adc_unit(np.array([0.0009, 0.0017])), adc_unit(np.array([1.1]))
    ('1e-6 mm2/s', 'mm2/s', '1e-3 mm2/s')
    """
    positive = np.asarray(values, dtype=np.float64)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    if positive.size == 0:
        return "1e-3 mm2/s"
    median = float(np.median(positive))
    if median > 50.0:
        return "1e-6 mm2/s"
    if median < 0.05:
        return "mm2/s"
    return "1e-3 mm2/s"


def adc_in_standard_units(image: sitk.Image, unit: str | None = None) -> sitk.Image:
    """The ADC map in x 10⁻³ mm²/s (float32), its unit ``unit`` or detected (:func:`adc_unit`),
    with a note saying which unit it was read in. Negative values (fit noise) become 0."""
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    unit = unit or adc_unit(arr)
    out = sitk.GetImageFromArray(np.clip(arr * np.float32(ADC_UNITS[unit]), 0.0, None))
    out.CopyInformation(image)
    for note in notes_of(image):
        with_note(out, note)
    if unit != "1e-3 mm2/s":
        with_note(out, f"ADC read in {unit}, converted to x 10⁻³ mm²/s")
    return out


def choose_b_pair(b_values: Iterable[float]) -> tuple[float | None, float]:
    """(low b, high b) of the given b-values (s/mm²): the high b is the one closest to 1000 among
    those >= :data:`MIN_HIGH_B`; the low b the smallest <= :data:`MAX_LOW_B` (None if none).

    >>> choose_b_pair([0, 50, 800, 1000, 1500])
    (0.0, 1000.0)

    Raises
    ------
    ValueError
        No b-value >= :data:`MIN_HIGH_B`.
    """
    bs = sorted({float(b) for b in b_values})
    high = [b for b in bs if b >= MIN_HIGH_B]
    if not high:
        raise ValueError(f"no b-value >= {MIN_HIGH_B:g} s/mm² among {', '.join(f'{b:g}' for b in bs)}")
    low = [b for b in bs if b <= MAX_LOW_B]
    return (low[0] if low else None), min(high, key=lambda b: (abs(b - 1000.0), b))


#: A low-b voxel below this share of the image's 99th percentile is air or background.
BACKGROUND_SHARE = 0.05


def valid_signal(s_low: np.ndarray, s_high: np.ndarray) -> np.ndarray:
    """Bool: the voxels whose signal is above the noise floor at both b-values. The low-b floor
    is :data:`BACKGROUND_SHARE` of the low-b image's 99th percentile (air and background below
    it); the high-b floor is twice the mean high-b signal of those background voxels (the Rician
    noise level; 0 where the image has no background)."""
    finite = np.isfinite(s_low) & np.isfinite(s_high)
    top = float(np.percentile(s_low[finite], 99)) if finite.any() else 0.0
    background = finite & (s_low <= BACKGROUND_SHARE * top)
    high_floor = 2.0 * float(s_high[background].mean()) if background.any() else 0.0
    return finite & (s_low > BACKGROUND_SHARE * top) & (s_high > high_floor) & (s_high > 0)


def adc_from_dwi(low: sitk.Image, high: sitk.Image, b_low: float, b_high: float) -> sitk.Image:
    """Mono-exponential ADC = ln(S_low / S_high) / (b_high − b_low), in x 10⁻³ mm²/s, on the grid of
    ``high`` (``low`` resampled onto it where the grids differ). Voxels where either signal is at
    or below its noise floor (:func:`valid_signal`) have no ADC and hold 0; the map's note gives
    their share of the voxels.

    Raises
    ------
    ValueError
        ``b_high <= b_low``.
    """
    if b_high <= b_low:
        raise ValueError(f"b_high {b_high:g} must exceed b_low {b_low:g} s/mm²")
    if (low.GetSize() != high.GetSize() or low.GetOrigin() != high.GetOrigin()
            or low.GetSpacing() != high.GetSpacing() or low.GetDirection() != high.GetDirection()):
        low = sitk.Resample(low, high, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    s_low = sitk.GetArrayFromImage(low).astype(np.float64)
    s_high = sitk.GetArrayFromImage(high).astype(np.float64)
    valid = valid_signal(s_low, s_high)
    adc = np.zeros(s_low.shape, np.float64)
    adc[valid] = np.log(s_low[valid] / s_high[valid]) / (b_high - b_low) * 1e3
    out = sitk.GetImageFromArray(np.clip(adc, 0.0, None).astype(np.float32))
    out.CopyInformation(high)
    share = 1.0 - float(valid.mean()) if valid.size else 0.0
    return with_note(out, f"ADC computed from DWI b={b_low:g} and b={b_high:g} s/mm² "
                          f"(mono-exponential); {share:.0%} of voxels below the noise floor hold no ADC")


def diffusion_images(b_images: Mapping[float, sitk.Image] | None, adc: sitk.Image | None, *,
                     patient: str | None = None, path: Path | None = None,
                     adc_unit_name: str | None = None) -> dict[str, sitk.Image]:
    """The ``DWI`` and ``ADC`` channels' images from a diffusion series' images by b-value (s/mm²)
    and a given ADC map (either may be None): ``DWI`` is the high-b image (:func:`choose_b_pair`);
    ``ADC`` the given map in x 10⁻³ mm²/s (``adc_unit_name`` or detected), else computed from the
    low and high b (:func:`adc_from_dwi`), else absent.

    Raises
    ------
    InputError
        Diffusion images without any b-value >= :data:`MIN_HIGH_B` (names the b-values found).
    """
    out: dict[str, sitk.Image] = {}
    if b_images:
        try:
            b_low, b_high = choose_b_pair(b_images)
        except ValueError as exc:
            raise InputError(f"DWI: {exc}", patient=patient, path=path,
                             fix="add the b≈1000 s/mm² images of the diffusion series") from None
        out["DWI"] = b_images[b_high]
        if adc is None and b_low is not None:
            out["ADC"] = adc_from_dwi(b_images[b_low], b_images[b_high], b_low, b_high)
    if adc is not None:
        out["ADC"] = adc_in_standard_units(adc, adc_unit_name)
    return out


def read_bvals(path: Path, *, patient: str | None = None) -> list[float]:
    """b-values (s/mm²) of an FSL/dcm2niix ``.bval`` file: numbers separated by white space.

    Raises
    ------
    InputError
        Not numbers, or negative.
    """
    try:
        values = [float(v) for v in Path(path).read_text(encoding="utf-8").split()]
    except (OSError, UnicodeDecodeError, ValueError):
        values = []
    if not values or min(values) < 0 or not np.isfinite(values).all():
        raise InputError("the .bval file does not hold b-values (non-negative numbers, s/mm²)",
                         patient=patient, path=path, fix="write one b-value per volume, as dcm2niix does")
    return values
