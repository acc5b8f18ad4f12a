"""Regression pin: the model input of a three-series patient (T1, CE-T1, T2, gland, tumour) does
not change when more series roles (T2FS, DWI, ADC, DCE) become possible channels (issue 23).

The digests were taken on the code before the extra roles existed. A hand-made patient (not the
phantom, whose look may change) with a T2 on a coarser, shifted grid goes through the one
preparation (`prepare_patient`) and the one channel selection (`select_channels`) at the default
config; the crops, labels and the uint8 model input are hashed. The preprocessing part of the
cache key is pinned too, so caches of today's runs stay valid (no re-preparation)."""

from __future__ import annotations

import hashlib

import numpy as np
import SimpleITK as sitk

from mrparotid.config import load_config, preprocess_config
from mrparotid.data.crops import select_channels
from mrparotid.data.preprocess import prepare_patient
from mrparotid.io.manifest import PatientCase
from patients import write_patient

CROPS_SHA = "ce8a3f22a7ad1591658e"
INPUT_SHA = "a6f021f4bdea40fe3b3e"


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:20]


def _patient(tmp_path):
    d = tmp_path / "P001"
    write_patient(d)
    t2 = sitk.ReadImage(str(d / "T2.nii.gz"))
    coarse = sitk.Resample(t2, [28, 28, 12], sitk.Transform(), sitk.sitkLinear,
                           (t2.GetOrigin()[0] + 1.5, t2.GetOrigin()[1] - 2.0, t2.GetOrigin()[2]),
                           (2.9, 2.9, 3.0), t2.GetDirection(), 0.0, sitk.sitkFloat32)
    sitk.WriteImage(coarse, str(d / "T2.nii.gz"))
    return PatientCase("P001", "warthin", d)


def test_the_model_input_of_a_three_series_patient_is_pinned(tmp_path):
    cfg = load_config(overrides=["--data.image_size", "64"])
    slices = prepare_patient(_patient(tmp_path), cfg)
    x = select_channels(slices.crops, cfg["data"]["channels"], cfg["data"]["series_mask"],
                        cfg["data"]["gland_channel"], gland_close_px=cfg["data"]["gland_close_px"])
    assert x.shape == (len(slices), 4, 64, 64)
    assert _digest(slices.crops, slices.labels, slices.slice_index) == CROPS_SHA
    assert _digest(x) == INPUT_SHA


def test_the_preprocessing_cache_key_of_the_default_config_is_unchanged():
    cfg = load_config()
    assert preprocess_config(cfg) == {"image_size": 224, "margin_mm": 10.0, "percentiles": [1.0, 99.0]}
