"""DWI and ADC from DICOM (issue 23): b-values read the way dcm2niix reads each vendor's headers,
from the REAL vendor series in ../shared (b-values written as each vendor writes them), DWI as
one series of several b-values, one series per b-value, directional images or an enhanced file;
ADC maps by ImageType with their unit; the ADC computed from DWI where no map is given."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_diffusion import (BACKGROUND, S0, SIEMENS_TRACE, disc, sorted_slices, write_adc,
                             write_dwi, write_enhanced_dwi)
from dicom_fixtures import copy_series, image_files, materialize_all

from mrparotid.data.diffusion import notes_of
from mrparotid.dicom.discovery import discover_series, format_series_table
from mrparotid.dicom.study import load_study, read_study
from mrparotid.errors import InputError

BASE = {"ge": "ge_mprage_3d_ax_oblique", "siemens": "siemens_t1_fl2d_sag_classic",
        "philips": "philips_t1_ffe_ax_classic", "standard": "philips_t1_ffe_ax_classic"}
SOURCE = {"ge": "GE (0043,1039)", "siemens": "Siemens (0019,100C)",
          "philips": "Philips (2001,1003)", "standard": "DiffusionBValue (0018,9087)"}
N_SLICES = 5
S1000 = round(S0 * math.exp(-1.5))          # the disc's stored b = 1000 signal (ADC 1.5)
ANALYTIC_ADC = math.log(S0 / S1000) / 1000 * 1e3   # x 10⁻³ mm²/s, from the stored integers


@pytest.fixture(scope="session")
def real_dicom(tmp_path_factory):
    return materialize_all(tmp_path_factory)


def _slices(real_dicom, vendor):
    return sorted_slices(image_files(real_dicom[BASE[vendor]]), N_SLICES)


def _study(real_dicom, folder, vendor, **dwi):
    files = _slices(real_dicom, vendor)
    copy_series(files, folder / "t1", description="T1 AX", series_number=3)
    write_dwi(files, folder / "dwi", dwi.pop("b_values", (0, 1000)), vendor, **dwi)
    return files


def _read(folder, **kw):
    return read_study(folder, "P1", require_gland=False, series=("T1",), **kw)


def _centre(image):
    arr = sitk.GetArrayFromImage(image)
    return arr[:, arr.shape[1] // 2, arr.shape[2] // 2]


@pytest.mark.parametrize("vendor, ge_offset", [("ge", False), ("ge", True), ("siemens", False),
                                               ("philips", False), ("standard", False)])
def test_vendor_b_values_in_one_series(real_dicom, tmp_path, vendor, ge_offset):
    _study(real_dicom, tmp_path, vendor, ge_offset=ge_offset)
    infos = {i.series_number: i for i in discover_series(tmp_path)}
    assert infos[3].role == "T1" and infos[3].b_values == ()
    dwi = infos[20]
    assert dwi.role == "DWI" and dwi.b_values == (0.0, 1000.0) and dwi.n_slices == N_SLICES
    assert dwi.reason == f"DWI: b-values 0, 1000 s/mm² from {SOURCE[vendor]}"
    assert dwi.reason in format_series_table(list(infos.values()))
    images, b_images = _read(tmp_path)
    assert sorted(b_images) == [0.0, 1000.0]
    assert images["DWI"].GetSize()[2] == N_SLICES
    assert np.all(_centre(images["DWI"]) == S1000) and np.all(_centre(b_images[0.0]) == S0)
    # no ADC map in the study: computed from b = 0 and 1000, the analytic value
    assert _centre(images["ADC"]) == pytest.approx(ANALYTIC_ADC, abs=1e-4)
    assert any("computed from DWI" in n for n in notes_of(images["ADC"]))


def test_one_series_per_b_value_is_one_dwi(real_dicom, tmp_path):
    """The b = 0 series is DWI by its name (every Philips image holds (2001,1003) = 0)."""
    _study(real_dicom, tmp_path, "philips", b_values=(0, 500, 1000), one_series=False,
           description="DWI_SSh")
    dwi = [i for i in discover_series(tmp_path) if i.role == "DWI"]
    assert [i.b_values for i in dwi] == [(0.0,), (500.0,), (1000.0,)]
    assert not any("AMBIGUOUS" in i.reason for i in dwi)
    assert dwi[0].reason == "matches DWI (description), b-values 0 s/mm² from Philips (2001,1003)"
    images, b_images = _read(tmp_path)
    assert sorted(b_images) == [0.0, 500.0, 1000.0]
    assert np.all(_centre(images["DWI"]) == S1000)      # the high b closest to 1000
    assert _centre(images["ADC"]) == pytest.approx(ANALYTIC_ADC, abs=1e-4)


def test_two_dwi_series_with_one_b_value_are_ambiguous(real_dicom, tmp_path):
    files = _study(real_dicom, tmp_path, "siemens")
    write_dwi(files, tmp_path / "dwi2", (0, 1000), "siemens", series_number=21,
              description="AX 21")
    reasons = {i.series_number: i.reason for i in discover_series(tmp_path)}
    assert reasons[20].startswith("AMBIGUOUS: DWI also claimed by #21")
    with pytest.raises(InputError, match=r"2 series match the DWI role \(#20 'AX 20' \(b 0, 1000\), "
                                         r"#21 'AX 21' \(b 0, 1000\)\)") as err:
        _read(tmp_path)
    assert "`DWI: {series_number: 20}`" in str(err.value)


def test_directional_images_make_the_trace(real_dicom, tmp_path):
    _study(real_dicom, tmp_path, "siemens", directions=3)
    images, b_images = _read(tmp_path)
    # three images per slice of gains 0.5, 1 and 2 (stored as integers): their geometric mean
    stored = [round(S0 * math.exp(-1.5) * g) for g in (0.5, 1.0, 2.0)]
    trace = math.prod(stored) ** (1 / 3)
    assert abs(trace - S1000) < 0.5 and _centre(images["DWI"]) == pytest.approx(trace, rel=1e-6)
    background = sitk.GetArrayFromImage(images["DWI"])[:, 2, 2]
    assert background == pytest.approx(BACKGROUND, rel=1e-6)   # 5, 10, 20
    assert any("3 images per slice" in n for n in notes_of(images["DWI"]))


@pytest.mark.parametrize("shared", [False, True])
def test_enhanced_file_b_values_in_the_diffusion_group(real_dicom, tmp_path, shared):
    enhanced = image_files(real_dicom["philips_t1_ffe_ax_enhanced"])[0]
    copy_series([enhanced], tmp_path / "t1", description="T1 AX", series_number=3)
    write_enhanced_dwi(enhanced, tmp_path / "dwi", (0, 1000) if not shared else (800,),
                       shared=shared)
    (dwi,) = [i for i in discover_series(tmp_path) if i.series_number == 40]
    assert dwi.role == "DWI" and dwi.reason.endswith("from DiffusionBValue (0018,9087)")
    if shared:
        assert dwi.b_values == (800.0,)
        return
    images, b_images = _read(tmp_path)
    assert sorted(b_images) == [0.0, 1000.0] and images["DWI"].GetSize()[2] == 24
    assert _centre(images["ADC"]) == pytest.approx(ANALYTIC_ADC, abs=1e-4)


def test_a_private_element_under_another_creator_is_no_b_value(real_dicom, tmp_path):
    """GE's (0019,100C) (creator GEMS_ACQU_01) is not Siemens' B_value; GE's own (0043,1039)
    holds b = 0 in every image: a GE T1 stays T1."""
    files = _slices(real_dicom, "ge")
    paths = copy_series(files, tmp_path / "t1", description="3D Ax T1", series_number=3)
    for path in paths:
        ds = pydicom.dcmread(path)
        assert ds[0x0019, 0x0010].value == "GEMS_ACQU_01"
        ds.add_new((0x0019, 0x100C), "IS", "1000")
        ds.save_as(path)
    (info,) = discover_series(tmp_path)
    assert info.role == "T1" and info.b_values == ()


def test_adc_map_by_image_type_with_its_unit(real_dicom, tmp_path, capsys):
    files = _study(real_dicom, tmp_path, "siemens", image_type=SIEMENS_TRACE, description="AX 20")
    write_adc(files, tmp_path / "adc", 800)                      # x 10⁻⁶ mm²/s integers
    infos = {i.series_number: i for i in discover_series(tmp_path)}
    assert infos[30].role == "ADC"
    assert infos[30].reason == "ADC: ImageType ADC; ADC unit 1e-6 mm2/s"
    assert infos[20].role == "DWI"              # TRACEW; the ADC (also DIFFUSION) never is DWI
    from mrparotid.cli.main import main

    assert main(["inspect", str(tmp_path)]) == 0
    assert "ADC unit 1e-6 mm2/s" in capsys.readouterr().out
    images, _ = _read(tmp_path)
    adc = sitk.GetArrayFromImage(images["ADC"])
    inside = disc(adc.shape[1:])
    assert images["ADC"].GetPixelID() == sitk.sitkFloat32
    assert np.all(adc[:, inside] == pytest.approx(0.8)) and np.all(adc[:, ~inside] == 0)
    assert any("read in 1e-6 mm2/s" in n for n in notes_of(images["ADC"]))   # the map, not computed


@pytest.mark.parametrize("image_type, description, reason", [
    (["DERIVED", "PRIMARY", "DIFFUSION", "EADC", "ND"], "AX 30", "diffusion map (ImageType EADC)"),
    (["DERIVED", "PRIMARY", "DIFFUSION", "FA", "ND"], "AX 30", "diffusion map (ImageType FA)"),
    (["DERIVED", "SECONDARY"], "Exponential Apparent Diffusion Coefficient",
     "diffusion map (description)"),
    (["DERIVED", "SECONDARY"], "ep2d_diff_tra_FA", "diffusion map (description)"),
])
def test_exponential_adc_and_fa_maps_are_ignored(real_dicom, tmp_path, image_type, description,
                                                 reason):
    files = _slices(real_dicom, "siemens")
    write_adc(files, tmp_path / "map", 800, image_type=image_type, description=description)
    (info,) = discover_series(tmp_path)
    assert info.role is None and info.reason.startswith(reason)


def test_ge_adc_carrying_its_b_value_is_adc_not_dwi(real_dicom, tmp_path):
    """GE writes the b-value the map was computed from into the ADC map's (0043,1039)."""
    files = _slices(real_dicom, "ge")
    paths = write_adc(files, tmp_path / "adc", 900, image_type=["DERIVED", "SECONDARY"],
                      description="Apparent Diffusion Coefficient (mm2/s)")
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.private_block(0x0043, "GEMS_PARM_01").add_new(0x39, "IS", ["1000", "8", "0", "0"])
        ds.save_as(path)
    (info,) = discover_series(tmp_path)
    assert info.role == "ADC" and info.reason.endswith("ADC unit 1e-6 mm2/s")


def test_a_dwi_series_without_b_values_is_an_error(real_dicom, tmp_path):
    files = _slices(real_dicom, "siemens")
    copy_series(files, tmp_path / "t1", description="T1 AX", series_number=3)
    copy_series(files, tmp_path / "dwi", description="ep2d_diff_tra", series_number=20)
    (dwi,) = [i for i in discover_series(tmp_path) if i.series_number == 20]
    assert dwi.role == "DWI" and dwi.reason.endswith("no b-value in its headers")
    with pytest.raises(InputError, match="the DWI series has no b-value in its headers") as err:
        _read(tmp_path)
    assert "\n" not in str(err.value) and "DWI.bval" in str(err.value)


def test_a_b_value_named_in_the_description_is_used(real_dicom, tmp_path):
    files = _slices(real_dicom, "siemens")
    copy_series(files, tmp_path / "t1", description="T1 AX", series_number=3)
    copy_series(files, tmp_path / "dwi", description="DWI_b1000", series_number=20)
    (dwi,) = [i for i in discover_series(tmp_path) if i.series_number == 20]
    assert dwi.b_values == (1000.0,) and "from the series description" in dwi.reason
    images = load_study(tmp_path, "P1", require_gland=False, series=("T1",))
    assert "DWI" in images and "ADC" not in images       # no low b: no ADC to compute
