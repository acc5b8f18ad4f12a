"""Scanner profiles ("centres") of the SYNTHETIC phantom cohort: how one centre's scanner changes
the look of the same anatomy.

Three profiles, mild on purpose (a model should still transfer between them):

- ``centre_a``: today's phantom exactly (no change to T1, CE-T1, T2 or the masks); exact file
  names and their aliases; CE-T1 sometimes a DICOM folder; ADC written as integers in
  x 10⁻⁶ mm²/s (uint16, as most DICOM ADC maps).
- ``centre_b``: Siemens-like protocol names (``t1_tse_tra``, ``t1_vibe_fs_tra_post``,
  ``t2_tse_ax``, ``ep2d_diff_tra``, ``ep2d_diff_tra_ADC``); thicker slices; ADC as float32 in mm²/s.
- ``centre_c``: Philips-like protocol names (``T1W_SE``, ``T1_FS_GD``, ``T2W_TSE``,
  ``DWI_SENSE``); thinner slices, the most noise; no ADC map (the reader computes it from DWI).

A profile changes a rendered series ``v`` (arbitrary units, per-patient gain ``g``) as
``u = v / (1000 g)``, ``u' = scale * u ** gamma * bias(x) + noise``, ``v' = 1000 g * max(u', 0)``,
where ``bias`` is a smooth multiplicative field, low-order in LPS position, one per patient.
Slice counts keep each series' z extent (mm) of centre A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Exact names and aliases of centre A's series (T1, CE-T1, T2), cycled over patients.
EXACT_NAMES: tuple[tuple[str, ...], ...] = (("T1", "T1W", "t1"), ("CE-T1", "T1C", "ce_t1", "T1+C"),
                                            ("T2", "t2w", "T2"))
#: Number of bias-field coefficients (:func:`bias_field`).
BIAS_TERMS = 6


@dataclass(frozen=True)
class ScannerProfile:
    """One centre's scanner. Series tuples are (T1, CE-T1, T2); lengths in mm; noise as a
    fraction of the tissue scale (the gland is about 0.55–0.72)."""

    name: str
    vendor: str
    series_names: tuple[tuple[str, ...], ...]   # per series, cycled over patients
    dwi_name: str
    adc_name: str | None                        # None: no ADC map written
    adc_unit: str | None                        # a key of mrparotid.data.diffusion.ADC_UNITS
    slice_mm: tuple[float, float, float]
    dwi_slice_mm: float
    gamma: tuple[float, float, float]
    scale: tuple[float, float, float]
    noise: float                                # extra Gaussian noise on T1, CE-T1, T2
    bias: float                                 # bias-field amplitude (0 = none)
    dwi_noise: float                            # Rician sigma of DWI, fraction of unit S0
    dicom_ce_t1: bool                           # CE-T1 of every third patient as a DICOM folder

    @property
    def changes_series(self) -> bool:
        """Whether the profile changes T1, CE-T1, T2 at all (centre A does not)."""
        return (self.gamma != (1.0, 1.0, 1.0) or self.scale != (1.0, 1.0, 1.0)
                or self.noise > 0 or self.bias > 0)


CENTRE_A = ScannerProfile(
    name="centre_a", vendor="exact names (the phantom's original look)", series_names=EXACT_NAMES,
    dwi_name="DWI", adc_name="ADC", adc_unit="1e-6 mm2/s", slice_mm=(4.0, 4.0, 5.0),
    dwi_slice_mm=6.0, gamma=(1.0, 1.0, 1.0), scale=(1.0, 1.0, 1.0), noise=0.0, bias=0.0,
    dwi_noise=0.015, dicom_ce_t1=True)
CENTRE_B = ScannerProfile(
    name="centre_b", vendor="Siemens-like protocol names",
    series_names=(("t1_tse_tra",), ("t1_vibe_fs_tra_post",), ("t2_tse_ax",)),
    dwi_name="ep2d_diff_tra", adc_name="ep2d_diff_tra_ADC", adc_unit="mm2/s",
    slice_mm=(5.0, 5.0, 6.0), dwi_slice_mm=7.0, gamma=(0.92, 1.06, 0.95), scale=(1.0, 1.04, 0.97),
    noise=0.02, bias=0.10, dwi_noise=0.02, dicom_ce_t1=False)
CENTRE_C = ScannerProfile(
    name="centre_c", vendor="Philips-like protocol names",
    series_names=(("T1W_SE",), ("T1_FS_GD",), ("T2W_TSE",)),
    dwi_name="DWI_SENSE", adc_name=None, adc_unit=None,
    slice_mm=(3.0, 3.0, 4.0), dwi_slice_mm=5.0, gamma=(1.08, 0.94, 1.05), scale=(0.97, 1.0, 1.03),
    noise=0.03, bias=0.15, dwi_noise=0.025, dicom_ce_t1=False)
PROFILES: tuple[ScannerProfile, ...] = (CENTRE_A, CENTRE_B, CENTRE_C)
#: Centre A's slice counts of T1, CE-T1, T2: with its slice thickness, the z extent (mm) every
#: profile keeps.
BASE_SLICES: tuple[int, int, int] = (20, 20, 17)


def profile_of(index: int, centres: int = len(PROFILES)) -> ScannerProfile:
    """The profile of cohort patient ``index`` (0-based). Diagnoses cycle with ``index % 3``, so
    centres change every three patients (``(index // 3) % centres``): each centre gets the three
    diagnoses in turn and stays balanced."""
    if not 1 <= centres <= len(PROFILES):
        raise ValueError(f"centres must be 1 to {len(PROFILES)}, not {centres}")
    return PROFILES[(index // 3) % centres]


def slice_counts(profile: ScannerProfile) -> tuple[int, int, int]:
    """Slices of T1, CE-T1, T2 that keep centre A's z extent (slices x thickness, mm)."""
    return tuple(max(3, int(round(n * a / b))) for n, a, b in
                 zip(BASE_SLICES, CENTRE_A.slice_mm, profile.slice_mm))


def series_name(profile: ScannerProfile, series: int, index: int) -> str:
    """File (or folder) name, without suffix, of series ``series`` (0=T1, 1=CE-T1, 2=T2)."""
    names = profile.series_names[series]
    return names[index % len(names)]


def draw_bias(rng: np.random.Generator) -> np.ndarray:
    """The :data:`BIAS_TERMS` coefficients (N(0, 1)) of one patient's bias field."""
    return rng.standard_normal(BIAS_TERMS)


def bias_field(pts: np.ndarray, coefficients: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth multiplicative field at LPS points ``pts`` (..., 3) mm: ``exp(amplitude * p / 2)``
    with ``p`` a second-order polynomial in ``pts / 80 mm`` (x, y, z, xy, x², y²) of the given
    coefficients; about 1 ± ``amplitude`` over the head."""
    u = pts.astype(np.float64) / 80.0
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    terms = (x, y, z, x * y, x * x - 0.33, y * y - 0.33)
    poly = sum(c * t for c, t in zip(coefficients, terms))
    return np.exp(amplitude * poly / 2.0).astype(np.float32)


def apply_profile(values: np.ndarray, series: int, gain: float, profile: ScannerProfile,
                  bias: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
    """Series ``series`` rendered at centre A (``values``, (z, y, x), scale 1000 x ``gain``) as
    ``profile``'s scanner shows it: contrast (scale, gamma), the bias field ``bias`` (same shape)
    and extra noise inside the body (voxels above 0). Centre A returns ``values`` unchanged."""
    if not profile.changes_series:
        return values
    unit = 1000.0 * float(gain)
    u = values.astype(np.float64) / unit
    body = values > 0
    u = profile.scale[series] * np.power(u, profile.gamma[series]) * bias
    u = u + profile.noise * rng.standard_normal(u.shape) * body
    return (np.clip(u, 0, None) * unit).astype(np.float32)
