"""A SYNTHETIC phantom cohort in the documented patient-folder layout (for demos and tests).

Nothing here is patient data. The anatomy and the class looks are in
:mod:`mrparotid.data.phantom_anatomy`; patients come from three scanner profiles ("centres",
:mod:`mrparotid.data.phantom_profiles`) that differ in contrast, noise, bias field, slice
thickness and file naming, and each has a diffusion series (DWI at b = 0 and 1000 s/mm², and an
ADC map where the centre writes one: :mod:`mrparotid.data.phantom_diffusion`).

The three series T1, CE-T1, T2 lie on different grids (spacing, origin, a slight oblique tilt of
T2); centre A writes some CE-T1 as DICOM folders and varies file names over the accepted
aliases. Centre A's T1, CE-T1, T2 and masks are those of the phantom before centres existed: all
randomness added since (profiles, diffusion) comes from a separate stream,
``np.random.default_rng([spec.seed, 23])``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from mrparotid.constants import DIAGNOSES
from mrparotid.data.phantom_anatomy import TISSUE, Grid, PhantomSpec, centred_grid, draw_spec, render
from mrparotid.data.phantom_diffusion import draw_diffusion, render_diffusion
from mrparotid.data.phantom_profiles import (CENTRE_A, EXACT_NAMES, PROFILES, ScannerProfile, apply_profile,
                                             bias_field, draw_bias, profile_of, series_name, slice_counts)
from mrparotid.dicom.writer import write_dicom_series
from mrparotid.io.atomic import atomic_path, write_text
from mrparotid.io.manifest import PatientCase, write_manifest

__all__ = ["SYNTHETIC_NOTE", "TISSUE", "Grid", "PhantomSpec", "PROFILES", "centred_grid", "draw_spec",
           "render", "write_patient", "make_cohort"]

SYNTHETIC_NOTE = "SYNTHETIC phantom cohort made by 'mrparotid phantom': not patient data, no clinical meaning"
SERIES_NAMES = EXACT_NAMES
SUFFIXES = [".nii.gz", ".nrrd", ".mha", ".nii"]
#: Seed salt of the stream that draws everything added with the centres (profiles, diffusion).
NEW_STREAM = 23


def series_grids(spec: PhantomSpec, profile: ScannerProfile) -> list[Grid]:
    """The T1, CE-T1 and T2 grids of a patient at ``profile``'s slice thickness (mm); in-plane
    spacing, shifts and the T2 tilt are the patient's own (drawn from ``spec.seed + 1``)."""
    rng = np.random.default_rng(spec.seed + 1)
    shift = tuple(rng.uniform(-3, 3, 3))
    n1, n2, n3 = slice_counts(profile)
    dz1, dz2, dz3 = profile.slice_mm
    return [
        centred_grid((150, 170, n1), (1.0, 1.0, dz1)),
        centred_grid((160, 180, n2), (0.95, 0.95, dz2), shift=shift),
        centred_grid((130, 150, n3), (1.15, 1.15, dz3), shift=shift[::-1], tilt_deg=rng.uniform(-5, 5)),
    ]


def write_patient(patient_dir: Path, spec: PhantomSpec, index: int, profile: ScannerProfile = CENTRE_A,
                  *, diffusion: bool = True) -> None:
    """Write one phantom patient folder as ``profile``'s scanner would: three series on
    different grids, the masks and (``diffusion``) the DWI with its ``.bval`` and the ADC map."""
    patient_dir.mkdir(parents=True, exist_ok=True)
    new = np.random.default_rng([spec.seed, NEW_STREAM])
    draws, bias = draw_diffusion(new), draw_bias(new)     # fixed draws first: the same for every centre
    grids = series_grids(spec, profile)
    for s, grid in enumerate(grids):
        name = series_name(profile, s, index)
        field = bias_field(grid.lps(), bias, profile.bias) if profile.bias > 0 else 1.0
        values = apply_profile(render(spec, grid, s), s, spec.gain[s], profile, field, new)
        image = grid.image(values, np.float32)
        if s == 1 and index % 3 == 0 and profile.dicom_ce_t1:
            uid = f"1.2.826.0.1.3680043.10.1999.{spec.seed}.{s + 1}"
            write_dicom_series(image, patient_dir / name, uid, description=f"SYNTHETIC {name}",
                               patient_name="SYNTHETIC^PHANTOM", shuffle_names=True)
        else:
            write_image(image, patient_dir / f"{name}{SUFFIXES[(index + s) % len(SUFFIXES)]}")
    mask_grid = grids[0] if index % 2 == 0 else grids[1]   # contours drawn on T1 or on CE-T1
    labels = render(spec, mask_grid, None)
    gland = np.where(labels == 3, 0, labels) if index % 4 == 1 else (labels > 0) & (labels < 3)
    gland_names = ("parotid", "gland", "parotid_mask")
    tumour_names = ("tumour", "tumor", "lesion")
    write_image(mask_grid.image(gland, np.uint8), patient_dir / f"{gland_names[index % 3]}.nii.gz")
    write_image(mask_grid.image(labels == 3, np.uint8), patient_dir / f"{tumour_names[index % 3]}.nii.gz")
    if diffusion:
        z_extent = grids[0].size[2] * grids[0].spacing[2]
        series = render_diffusion(spec, profile, draws, z_extent, bias, new)
        write_text(patient_dir / f"{profile.dwi_name}.bval", " ".join(f"{b:g}" for b in series.b_values) + "\n")
        write_image(series.dwi, patient_dir / f"{profile.dwi_name}.nii.gz")
        if series.adc is not None:
            write_image(series.adc, patient_dir / f"{profile.adc_name}.nii.gz")


def write_image(image: sitk.Image, path: Path) -> None:
    """Write an image (compressed) atomically; the suffix picks the format. NIfTI files say
    SYNTHETIC in their description field."""
    if path.name.lower().endswith((".nii", ".nii.gz")):
        image.SetMetaData("descrip", "SYNTHETIC phantom")
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def make_cohort(out_dir: str | Path, n_patients: int = 40, seed: int = 0,
                progress: bool = True, *, centres: int = len(PROFILES), diffusion: bool = True) -> Path:
    """Write ``n_patients`` SYNTHETIC phantom patients and ``manifest.csv`` into ``out_dir``.

    Diagnoses cycle through pleomorphic adenoma, Warthin tumour and malignant (``i % 3``); the
    scanner profile changes every three patients over the first ``centres`` profiles
    (``(i // 3) % centres``), so diagnoses stay balanced within each centre; the manifest's
    ``center`` column names it (``centres=1``: all ``centre_a``, the look from before centres).
    ``diffusion=False`` writes no DWI/ADC. Returns the manifest path.
    A ``SYNTHETIC.txt`` file and the manifest's first line say the data are synthetic.
    """
    from mrparotid.io.progress import progress_bar

    profile_of(0, centres)                               # ValueError for a bad count, before writing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "SYNTHETIC.txt", SYNTHETIC_NOTE + "\n")
    rng = np.random.default_rng(seed)
    cases = []
    for i in progress_bar(range(n_patients), desc="phantom patients (SYNTHETIC)", unit="patient",
                          enabled=progress):
        diagnosis = DIAGNOSES[i % len(DIAGNOSES)]
        profile = profile_of(i, centres)
        pid = f"SYN{i + 1:03d}"
        write_patient(out_dir / "patients" / pid, draw_spec(rng, diagnosis), i, profile, diffusion=diffusion)
        cases.append(PatientCase(pid, diagnosis, out_dir / "patients" / pid, None, profile.name))
    manifest = out_dir / "manifest.csv"
    write_manifest(manifest, cases, comment=SYNTHETIC_NOTE)
    return manifest
