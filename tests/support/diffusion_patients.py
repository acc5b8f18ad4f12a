"""Hand-made diffusion series for the data-stage tests: a DWI (b = 0 and 1000 s/mm²) and an ADC
map of the default test patient (tests/support/patients.py) with a known ADC per tissue, written
on the patient's grid or on a coarser, shifted EPI-like grid.

The signal is S(b) = S0 · exp(−b · ADC) with S0 = 1000 inside the slab, ADC in x 10⁻³ mm²/s:
background 2.5, gland 1.0, tumour ``tumour_adc``. Everything is SYNTHETIC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from patients import ORIGIN, SPACING, patient_arrays, to_image, write_patient

GLAND_ADC, BACKGROUND_ADC = 1.0, 2.5


def big_tumour_arrays() -> dict[str, np.ndarray]:
    """The default patient with a larger left tumour (20 x 24 mm, 6 slices), so that it spans
    several voxels of a 2.5x coarser diffusion grid."""
    arrays = patient_arrays(tumour_side=None)
    arrays["tumour"][3:9, 14:26, 24:34] = 1
    arrays["gland"][arrays["tumour"] > 0] = 1
    return arrays


def adc_map(arrays: dict[str, np.ndarray], tumour_adc: float) -> np.ndarray:
    """(z, y, x) ADC in x 10⁻³ mm²/s on the patient's grid."""
    adc = np.full(arrays["gland"].shape, BACKGROUND_ADC, np.float32)
    adc[arrays["gland"] > 0] = GLAND_ADC
    adc[arrays["tumour"] > 0] = tumour_adc
    return adc


def epi_grid(reference: sitk.Image, factor: float = 2.5, shift_mm: float = 2.0) -> sitk.Image:
    """An empty grid over the same extent with ``factor`` x the in-plane spacing."""
    size = [max(2, int(round(n / factor))) if i < 2 else n for i, n in enumerate(reference.GetSize())]
    spacing = [s * factor if i < 2 else s for i, s in enumerate(reference.GetSpacing())]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing(spacing)
    grid.SetOrigin(tuple(o + (shift_mm if i == 0 else 0.0) + (spacing[i] - reference.GetSpacing()[i]) / 2
                         * (i < 2) for i, o in enumerate(reference.GetOrigin())))
    grid.SetDirection(reference.GetDirection())
    return grid


def write_diffusion(patient_dir: Path, arrays: dict[str, np.ndarray], *, tumour_adc: float = 1.8,
                    adc_scale: float | None = 1000.0, coarse: bool = False, shift_mm: float = 2.0,
                    bvals: str = "0 1000") -> Path:
    """Write ``DWI.nii.gz`` (4-D, b = 0 and 1000) with ``DWI.bval``, and, unless ``adc_scale`` is
    None, ``ADC.nii.gz`` holding the ADC x ``adc_scale`` (1000: x 10⁻⁶ mm²/s integers, 1e-3:
    mm²/s). ``coarse``: on :func:`epi_grid`, its content displaced by ``shift_mm`` along x (EPI
    distortion). Returns the folder."""
    adc = adc_map(arrays, tumour_adc)
    fine = {"ADC": to_image(adc), "S0": to_image(np.full(adc.shape, 1000.0, np.float32))}
    if coarse:
        grid = epi_grid(fine["ADC"], shift_mm=0.0)
        fine = {k: sitk.Resample(v, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
                for k, v in fine.items()}
        for image in fine.values():                    # the content lands shift_mm off
            image.SetOrigin((image.GetOrigin()[0] + shift_mm, *image.GetOrigin()[1:]))
    adc_arr, s0 = (sitk.GetArrayFromImage(fine[k]) for k in ("ADC", "S0"))
    volumes = [s0, s0 * np.exp(-adc_arr)]              # b = 0 and b = 1000 s/mm² (b · ADC · 1e-3)
    dwi = sitk.JoinSeries([sitk.GetImageFromArray(v.astype(np.float32)) for v in volumes])
    ref = fine["ADC"]
    dwi.SetSpacing((*ref.GetSpacing(), 1.0))
    dwi.SetOrigin((*ref.GetOrigin(), 0.0))
    direction = np.eye(4)
    direction[:3, :3] = np.asarray(ref.GetDirection()).reshape(3, 3)
    dwi.SetDirection(direction.ravel().tolist())
    sitk.WriteImage(dwi, str(patient_dir / "DWI.nii.gz"), useCompression=True)
    (patient_dir / "DWI.bval").write_text(bvals + "\n", encoding="utf-8")
    if adc_scale is not None:
        scaled = adc_arr * adc_scale
        image = sitk.GetImageFromArray(np.rint(scaled).astype(np.int16) if adc_scale >= 100 else
                                       scaled.astype(np.float32))
        image.CopyInformation(ref)
        sitk.WriteImage(image, str(patient_dir / "ADC.nii.gz"), useCompression=True)
    return patient_dir


def write_diffusion_patient(patient_dir: Path, **options) -> Path:
    """The big-tumour patient (three series, masks) plus its diffusion series."""
    arrays = big_tumour_arrays()
    write_patient(patient_dir, arrays=arrays)
    return write_diffusion(Path(patient_dir), arrays, **options)


__all__ = ["ORIGIN", "SPACING", "big_tumour_arrays", "write_diffusion", "write_diffusion_patient"]
