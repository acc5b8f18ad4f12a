"""Diffusion channels (issue 23): ADC units, the ADC computed from DWI, the named-layout DWI
(4-D + .bval), crops of a coarser, shifted DWI, and a model's series required of every patient."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from diffusion_patients import big_tumour_arrays, write_diffusion, write_diffusion_patient
from mrparotid.config import load_config, preprocess_config
from mrparotid.data.crops import select_channels
from mrparotid.data.diffusion import adc_from_dwi, adc_in_standard_units, adc_unit, choose_b_pair
from mrparotid.data.preprocess import prepare_patient
from mrparotid.errors import InputError
from mrparotid.io.manifest import PatientCase
from patients import to_image, write_patient

ADC_CHANNELS = "T1,CE-T1,T2,ADC,mask"


def _cfg(channels: str = ADC_CHANNELS):
    return load_config(overrides=["--data.image_size", "32", "--data.channels", channels])


@pytest.mark.parametrize("scale, unit", [(1000.0, "1e-6 mm2/s"), (1.0, "1e-3 mm2/s"), (1e-3, "mm2/s")])
def test_the_adc_unit_is_detected_and_converted_to_1e_minus_3(scale, unit):
    adc = np.where(np.arange(1000).reshape(10, 10, 10) % 3 == 0, 0.0, 1.4).astype(np.float32)
    image = to_image((adc * scale).astype(np.float32))
    assert adc_unit(sitk.GetArrayViewFromImage(image)) == unit
    out = sitk.GetArrayFromImage(adc_in_standard_units(image))
    assert out[adc > 0] == pytest.approx(1.4, rel=1e-3)


def test_the_adc_computed_from_dwi_is_the_analytic_value_and_noise_floor_voxels_hold_none():
    """S(b) = S0 exp(-b ADC): ln(S0 / S1000) / 1000 gives back the ADC, x 10^-3 mm²/s; the
    background (signal at the noise floor) gets no ADC."""
    rng = np.random.default_rng(0)
    truth = np.zeros((6, 20, 20), np.float32)
    truth[:, 4:16, 4:10], truth[:, 4:16, 10:16] = 0.9, 1.8          # Warthin-like | PA-like
    body = truth > 0
    s0 = np.where(body, 800.0, 0.0) + rng.rayleigh(4.0, truth.shape)  # magnitude noise outside
    s1000 = np.where(body, 800.0 * np.exp(-1000 * truth * 1e-3), 0.0) + rng.rayleigh(4.0, truth.shape)
    adc = sitk.GetArrayFromImage(adc_from_dwi(to_image(s0.astype(np.float32)),
                                              to_image(s1000.astype(np.float32)), 0.0, 1000.0))
    assert np.median(adc[:, 4:16, 4:10]) == pytest.approx(0.9, abs=0.03)
    assert np.median(adc[:, 4:16, 10:16]) == pytest.approx(1.8, abs=0.06)
    assert (adc[~body] == 0).mean() > 0.95


def test_the_high_b_is_the_one_closest_to_1000_and_the_low_b_the_smallest():
    assert choose_b_pair([1000, 0, 50, 2000]) == (0.0, 1000.0)
    assert choose_b_pair([800, 1500]) == (None, 800.0)
    with pytest.raises(ValueError):
        choose_b_pair([0, 50])


@pytest.mark.parametrize("adc_scale", [1000.0, 1e-3, None])     # 10^-6 ints, mm²/s floats, computed
def test_the_adc_plane_holds_the_tumour_adc_in_physical_units(tmp_path, adc_scale):
    """Crops of a patient with DWI (4-D + .bval) hold an ADC plane mapped by the fixed window
    [0, 3] x 10^-3 mm²/s: a PA-like tumour of ADC 1.8 reads 1.8 / 3 of full scale, whatever
    unit the map came in or when it is computed from the DWI."""
    d = write_diffusion_patient(tmp_path / "P001", tumour_adc=1.8, adc_scale=adc_scale)
    slices = prepare_patient(PatientCase("P001", "pleomorphic_adenoma", d), _cfg())
    assert slices.planes == ("T1", "CE-T1", "T2", "ADC", "gland", "tumour")
    tumour = slices.plane("tumour") > 0
    adc = slices.plane("ADC")[tumour & (np.roll(tumour, 3, -1) & np.roll(tumour, -3, -1))]
    assert np.median(adc) / 255 * 3.0 == pytest.approx(1.8, abs=0.05)
    x = select_channels(slices.crops, ADC_CHANNELS.split(","), planes=slices.planes)
    assert x.shape[1] == 5 and np.array_equal(x[:, 3], slices.plane("ADC"))


def test_crops_of_a_coarser_shifted_dwi_still_overlap_the_tumour(tmp_path):
    """DWI at 2.5x the in-plane spacing, displaced 2 mm (EPI distortion): on the T1 grid the
    tumour's high-ADC region still covers most of the drawn tumour, and the DWI plane is darker
    there (a PA-like ADC of 1.8 loses more signal at b = 1000 than the gland's 1.0)."""
    d = write_diffusion_patient(tmp_path / "P001", tumour_adc=1.8, adc_scale=None, coarse=True)
    slices = prepare_patient(PatientCase("P001", "pleomorphic_adenoma", d), _cfg("T1,CE-T1,T2,DWI,ADC,mask"))
    tumour, gland = slices.plane("tumour") > 0, slices.plane("gland") > 0
    adc = slices.plane("ADC") / 255 * 3.0
    high = adc > (1.0 + 1.8) / 2
    assert (high & tumour).sum() / tumour.sum() > 0.6
    dwi = slices.plane("DWI").astype(float)
    assert dwi[tumour].mean() < dwi[gland & ~tumour].mean()


def test_the_default_config_never_reads_a_diffusion_series(tmp_path):
    """Today's three-series path reads what it did: a broken DWI in the folder changes nothing."""
    d = write_patient(tmp_path / "P001")
    before = prepare_patient(PatientCase("P001", "warthin", d), _cfg("T1,CE-T1,T2,mask"))
    (d / "DWI.nii.gz").write_bytes(b"not an image")
    after = prepare_patient(PatientCase("P001", "warthin", d), _cfg("T1,CE-T1,T2,mask"))
    assert np.array_equal(before.crops, after.crops) and after.planes == before.planes


def test_a_training_patient_without_a_channel_series_is_refused_naming_it(tmp_path):
    d = write_patient(tmp_path / "P001")
    with pytest.raises(InputError) as err:
        prepare_patient(PatientCase("P001", "warthin", d), _cfg())
    assert "ADC" in str(err.value) and "P001" in str(err.value)


def test_a_dwi_whose_bval_does_not_fit_its_volumes_is_refused(tmp_path):
    arrays = big_tumour_arrays()
    d = write_patient(tmp_path / "P001", arrays=arrays)
    write_diffusion(d, arrays, adc_scale=None, bvals="0 500 1000")
    with pytest.raises(InputError) as err:
        prepare_patient(PatientCase("P001", "warthin", d), _cfg())
    assert "DWI.bval" in str(err.value) and "2 volume" in str(err.value)


def test_the_crops_of_extra_series_get_their_own_cache_key_and_record():
    assert "series" not in preprocess_config(_cfg("T1,CE-T1,T2,mask"))
    assert preprocess_config(_cfg())["series"] == ["T1", "CE-T1", "T2", "ADC"]
    assert preprocess_config(_cfg())["adc_range"] == [0.0, 3.0]


def test_a_dwi_without_a_low_b_and_no_adc_map_is_refused_never_a_blank_adc(tmp_path):
    """The ADC is required, the folder has a DWI, but of b = 1000 alone: no ADC can be computed,
    so the patient is refused naming the ADC (before, its ADC plane was silently all zero)."""
    import SimpleITK as sitk

    d = write_diffusion_patient(tmp_path / "P001", adc_scale=None)
    dwi = sitk.ReadImage(str(d / "DWI.nii.gz"))
    sitk.WriteImage(dwi[:, :, :, 1], str(d / "DWI.nii.gz"))
    (d / "DWI.bval").write_text("1000\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        prepare_patient(PatientCase("P001", "warthin", d), _cfg())
    assert "ADC" in str(err.value) and "b-value" in str(err.value) and "\n" not in str(err.value)
