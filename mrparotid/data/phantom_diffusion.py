"""SYNTHETIC diffusion series of a phantom patient: DWI at b = 0 and 1000 s/mm² and the ADC map a
scanner would write, on a coarse echo-planar (EPI) grid.

ADC by tissue, in x 10⁻³ mm²/s, is drawn per patient uniformly within :data:`ADC_RANGES`. The
tumour and gland ranges are those issue 23 quotes from the radiology literature; they agree with
published series, e.g. Yerli et al., Acta Radiol 2007;48:980 (Warthin 0.97 ± 0.16, pleomorphic
adenoma 1.74 ± 0.37, malignant 1.04 ± 0.35), Habermann et al., AJNR 2009;30:591 (pleomorphic
adenoma above all other entities, Warthin low) and Karaman et al., Dentomaxillofac Radiol
2021;50:20200391 (pleomorphic adenoma 1.9 ± 0.3). Fat (fat-suppressed, low signal), muscle and
cyst (fluid, CSF-like) values are the usual textbook figures. The phantom draws within the ranges
(no overlap beyond the ranges' own), so its ADC is cleaner than real data.

Signal: ``S(b) = S0 * exp(-b * ADC)`` (b in s/mm², ADC in mm²/s), S0 a fat-suppressed T2-like
contrast, rendered on a 2 x 2 x 2 finer grid and averaged (partial volume), then Rician noise of
the centre's level (magnitude of complex Gaussian noise), stored as uint16. The EPI grid has
about 2.5 x the T1's in-plane spacing and thicker slices, and its content is displaced ~2 mm
along y (the phase-encoding direction, anterior-posterior) as EPI distortion displaces it. The
ADC map is what a scanner writes: computed mono-exponentially from the stored noisy b0 and b1000
(so it is noisy too), 0 where b0 is below the noise threshold, clipped to [0, 5] x 10⁻³ mm²/s,
and written in the centre's unit (:class:`~mrparotid.data.phantom_profiles.ScannerProfile`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mrparotid.data.phantom_anatomy import TISSUE, TISSUE_CLASSES, Anatomy, Grid, PhantomSpec, centred_grid
from mrparotid.data.phantom_profiles import ScannerProfile, bias_field

#: b-values written (s/mm²), one DWI volume each, in this order.
B_VALUES: tuple[float, float] = (0.0, 1000.0)
#: ADC ranges (x 10⁻³ mm²/s) drawn per patient; keys: tissue classes and diagnoses.
ADC_RANGES: dict[str, tuple[float, float]] = {
    "pleomorphic_adenoma": (1.6, 2.0), "warthin": (0.8, 1.0), "malignant": (0.9, 1.3),
    "gland": (0.9, 1.1), "fat": (0.1, 0.3), "muscle": (1.35, 1.5), "cyst": (2.5, 3.0),
    "bone": (0.2, 0.4),         # fatty marrow of the ramus, suppressed like fat
}
#: b0 signal (relative) by tissue, fat suppressed; a tumour's is its T2 look (TISSUE, T2 column).
S0 = {"air": 0.0, "fat": 0.08, "muscle": 0.30, "bone": 0.04, "gland": 0.55, "cyst": 0.92}
#: EPI in-plane spacing (mm): about 2.5 x the T1's 1.0 mm.
EPI_SPACING_MM = 2.5
#: The T1 field of view (mm, x and y) the EPI grid covers.
EPI_FOV_MM = (150.0, 170.0)
#: Largest ADC a map holds (x 10⁻³ mm²/s); noise-only voxels above it are clipped.
ADC_MAX = 5.0


@dataclass(frozen=True)
class DiffusionDraws:
    """One patient's diffusion draws: ADC by tissue (x 10⁻³ mm²/s), S0 gain, the grid's shift
    (LPS mm) and the EPI displacement along y (mm)."""

    adc: dict
    gain: float
    shift: tuple[float, float, float]
    distortion_mm: float


@dataclass(frozen=True)
class DiffusionSeries:
    """What a scanner writes: the 4-D DWI (x, y, z, b), its b-values, and the ADC map in the
    centre's unit (None where the centre writes none)."""

    dwi: sitk.Image
    b_values: tuple[float, ...]
    adc: sitk.Image | None


def draw_diffusion(rng: np.random.Generator) -> DiffusionDraws:
    """Draw a patient's diffusion parameters (a fixed number of draws, whatever the centre)."""
    adc = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in ADC_RANGES.items()}
    gain = float(rng.uniform(0.6, 1.6))
    shift = tuple(float(v) for v in rng.uniform(-3, 3, 3))
    distortion = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 2.5))
    return DiffusionDraws(adc, gain, shift, distortion)


def epi_grid(profile: ScannerProfile, z_extent_mm: float, shift) -> Grid:
    """The EPI grid of ``profile``: :data:`EPI_SPACING_MM` in-plane over the T1 field of view,
    ``profile.dwi_slice_mm`` slices over ``z_extent_mm``, centred at ``shift`` (LPS mm)."""
    nx, ny = (int(round(f / EPI_SPACING_MM)) for f in EPI_FOV_MM)
    nz = max(3, int(round(z_extent_mm / profile.dwi_slice_mm)))
    return centred_grid((nx, ny, nz), (EPI_SPACING_MM, EPI_SPACING_MM, profile.dwi_slice_mm), shift=shift)


def fine_grid(grid: Grid, k: int = 2) -> Grid:
    """``grid`` subdivided ``k`` times per axis: ``k³`` sub-voxel centres per voxel."""
    spacing = np.asarray(grid.spacing) / k
    origin = np.asarray(grid.origin) - grid.direction @ (spacing * (k - 1) / 2)
    return Grid(tuple(s * k for s in grid.size), tuple(float(s) for s in spacing),
                tuple(float(o) for o in origin), grid.direction)


def block_mean(array: np.ndarray, k: int = 2) -> np.ndarray:
    """Mean over ``k x k x k`` blocks of a (z, y, x) array (the inverse of :func:`fine_grid`)."""
    z, y, x = (s // k for s in array.shape)
    return array.reshape(z, k, y, k, x, k).mean(axis=(1, 3, 5))


def tissue_maps(spec: PhantomSpec, anatomy: Anatomy, draws: DiffusionDraws) -> tuple[np.ndarray, np.ndarray]:
    """(S0 relative, ADC x 10⁻³ mm²/s) maps (z, y, x) of the anatomy; tumours and the gland
    carry the anatomy's texture (malignant: heterogeneous)."""
    classes = anatomy.classes()
    s0 = np.zeros(classes.shape, np.float64)
    adc = np.zeros(classes.shape, np.float64)
    tex = anatomy.texture_values
    for value, name in enumerate(TISSUE_CLASSES):
        where = classes == value
        if name == "tumour":
            hetero = 0.12 if spec.diagnosis == "malignant" else 0.04
            s0[where] = TISSUE[spec.diagnosis][2] + spec.contrast_shift[2] + 0.5 * hetero * tex[where]
            adc[where] = draws.adc[spec.diagnosis] + hetero * tex[where]
        elif name != "air":
            s0[where] = S0[name] * (1 + 0.05 * tex[where])
            adc[where] = draws.adc[name] + (0.03 * tex[where] if name == "gland" else 0.0)
    return np.clip(s0, 0, None), np.clip(adc, 0.05, None)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of ``sigma`` per channel."""
    real = signal + sigma * rng.standard_normal(signal.shape)
    imag = sigma * rng.standard_normal(signal.shape)
    return np.hypot(real, imag)


def scanner_adc(b0: np.ndarray, b1000: np.ndarray, sigma: float) -> np.ndarray:
    """ADC (x 10⁻³ mm²/s) from stored b0 and b1000 signals: ln(b0 / b1000) / 1000 s/mm², 0 where
    b0 is below 3 ``sigma`` or b1000 is 0, clipped to [0, :data:`ADC_MAX`]."""
    b0, b1000 = b0.astype(np.float64), b1000.astype(np.float64)
    valid = (b0 > 3.0 * sigma) & (b1000 > 0)
    adc = np.zeros(b0.shape, np.float64)
    adc[valid] = np.log(b0[valid] / b1000[valid]) / (B_VALUES[1] - B_VALUES[0]) * 1e3
    return np.clip(adc, 0.0, ADC_MAX)


def adc_in_unit(adc: np.ndarray, unit: str) -> tuple[np.ndarray, type]:
    """An ADC map (x 10⁻³ mm²/s) as a scanner stores it in ``unit``: (values, dtype)."""
    if unit == "1e-6 mm2/s":
        return np.round(adc * 1e3), np.uint16
    if unit == "mm2/s":
        return adc * 1e-3, np.float32
    if unit == "1e-3 mm2/s":
        return adc, np.float32
    raise ValueError(f"unknown ADC unit {unit!r}")


def render_diffusion(spec: PhantomSpec, profile: ScannerProfile, draws: DiffusionDraws,
                     z_extent_mm: float, bias: np.ndarray, rng: np.random.Generator) -> DiffusionSeries:
    """The diffusion series ``profile``'s scanner writes for ``spec`` (see the module doc).
    ``bias``: the patient's bias-field coefficients; ``rng``: noise (a stream of its own)."""
    grid = epi_grid(profile, z_extent_mm, draws.shift)
    content = fine_grid(grid.moved((0.0, draws.distortion_mm, 0.0)))   # EPI displacement
    pts = content.lps()
    anatomy = Anatomy(spec, pts, np.random.default_rng(spec.seed))       # the same fields as render
    s0, adc = tissue_maps(spec, anatomy, draws)
    s0 = s0 * draws.gain * 1000.0
    if profile.bias > 0:
        s0 = s0 * bias_field(pts, bias, profile.bias)
    sigma = profile.dwi_noise * draws.gain * 1000.0
    volumes = []
    for b in B_VALUES:
        signal = block_mean(s0 * np.exp(-b * adc * 1e-3))
        volumes.append(np.clip(np.round(rician(signal, sigma, rng)), 0, 65535).astype(np.uint16))
    dwi = sitk.JoinSeries([grid.image(v, np.uint16) for v in volumes])
    if profile.adc_unit is None:
        return DiffusionSeries(dwi, B_VALUES, None)
    values, dtype = adc_in_unit(scanner_adc(volumes[0], volumes[1], sigma), profile.adc_unit)
    return DiffusionSeries(dwi, B_VALUES, grid.image(values, dtype))
