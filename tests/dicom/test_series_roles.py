"""T2FS beside T2, DCE beside CE-T1 (issue 23): typical vendor names never make a role ambiguous;
a dynamic series is DCE by its temporal positions and gives its peak phase; ``convert`` writes
T2FS, DCE, DWI (4-D + .bval) and ADC; roles a caller does not read are never checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_diffusion import S0, SIEMENS_TRACE, disc, sorted_slices, write_adc, write_dwi, write_phases
from dicom_fixtures import copy_series, ellipsoid, image_files, materialize_all

from mrparotid.cli.main import main
from mrparotid.data.diffusion import notes_of
from mrparotid.data.grid import read_images
from mrparotid.dicom.discovery import discover_series
from mrparotid.dicom.roles import classify, load_roles, role_of_name
from mrparotid.dicom.rtstruct import write_rtstruct
from mrparotid.dicom.series import read_series_files
from mrparotid.dicom.study import load_study
from mrparotid.dicom.types import SeriesInfo, SeriesTags
from mrparotid.errors import InputError
from mrparotid.io.files import find_patient_files

BASE = "philips_t1_ffe_ax_classic"


@pytest.fixture(scope="session")
def real_dicom(tmp_path_factory):
    return materialize_all(tmp_path_factory)


def _role(description, *, agent=False, image_type=(), phases=1):
    info = SeriesInfo("1.2.3", 1, "MR", description, "axial", (256, 256), (1.0, 1.0, 5.0), 24, ())
    tags = SeriesTags("", image_type, agent, temporal_positions=phases) if phases > 1 \
        else SeriesTags("", image_type, agent)
    return classify(info, tags, load_roles())[0]


@pytest.mark.parametrize("description, role", [
    ("t2_tse_tra", "T2"), ("T2W_TSE", "T2"), ("AX T2 FSE", "T2"), ("Ax T2 FRFSE", "T2"),
    ("t2_tse_fs_tra", "T2FS"), ("T2W_TSE_SPAIR", "T2FS"), ("T2W_SPIR", "T2FS"),
    ("AX T2 FSE FS", "T2FS"), ("T2 FatSat", "T2FS"), ("T2FS", "T2FS"), ("COR STIR", "T2FS"),
    ("STIR_TSE", "T2FS"), ("t2_tirm_cor", "T2FS"), ("t2_tse_dixon_tra_W", "T2FS"),
    ("T2W_mDIXON_W", "T2FS"), ("WATER: Ax T2 IDEAL", "T2FS"), ("t2_tse_dixon_tra_F", None),
    ("t2_tirm_tra_dark-fluid", None),
])
def test_fat_suppressed_t2_has_its_own_role(description, role):
    assert _role(description) == role
    assert role_of_name(description.replace(":", "")) == role     # the same as a file name


@pytest.mark.parametrize("description, agent, role", [
    ("t1_vibe_fs_tra_dyn", True, "DCE"), ("t1_fl3d_tra_dynaVIEWS", True, "DCE"),
    ("Ax DISCO", True, "DCE"), ("t1_twist_tra", True, "DCE"), ("DCE_THRIVE", True, "DCE"),
    ("DYN_eTHRIVE", False, "DCE"), ("t1_vibe_fs_tra_post", True, "CE-T1"),
    ("T1W_SE_GD", False, "CE-T1"), ("AX T1 FS POST", False, "CE-T1"), ("t1_tse_tra", False, "T1"),
    ("t1_vibe_dyn_sub", True, None), ("ep2d_perf", True, None),
])
def test_dynamic_series_never_claim_t1_or_ce_t1(description, agent, role):
    assert _role(description, agent=agent) == role


def test_temporal_positions_make_dce_whatever_the_t1_name():
    assert _role("t1_fl3d_tra", agent=True, phases=6) == "DCE"
    assert _role("T1 AX", phases=6) == "DCE"
    assert _role("t2_tse_tra", phases=2) == "T2"                # not a T1 name: the rules decide
    assert _role("t1_fl3d_tra", agent=True) == "CE-T1"


@pytest.mark.parametrize("image_type, role", [
    (("DERIVED", "PRIMARY", "DIFFUSION", "TRACEW", "ND", "NORM"), "DWI"),
    (("DERIVED", "PRIMARY", "DIFFUSION", "ADC", "ND", "NORM"), "ADC"),
    (("DERIVED", "PRIMARY", "DIFFUSION", "EADC", "ND", "NORM"), None),
    (("DERIVED", "PRIMARY", "DIFFUSION", "FA", "ND", "NORM"), None),
])
def test_siemens_derived_image_types(image_type, role):
    assert _role("ep2d_diff_tra", image_type=image_type) == role
    assert _role("AX 9", image_type=image_type) == role


def _study(real_dicom, folder):
    """T1, CE-T1, T2, T2 FS, STIR, a 3-phase dynamic series named like a T1, a DWI."""
    files = sorted_slices(image_files(real_dicom[BASE]), 6)
    copy_series(files, folder / "s03", description="T1W_SE", series_number=3)
    copy_series(files, folder / "s04", description="T1W_SE_GD", series_number=4,
                contrast_agent="Gadoterate")
    copy_series(files, folder / "s05", description="T2W_TSE", series_number=5)
    copy_series(files, folder / "s06", description="T2W_TSE_SPAIR", series_number=6)
    copy_series(files, folder / "s07", description="STIR_TSE cor", series_number=7)
    write_phases(files, folder / "s08", (1.0, 2.5, 1.5), description="T1W_FFE", series_number=8)
    write_dwi(files, folder / "s20", (0, 1000), "philips", image_type=SIEMENS_TRACE)
    return folder


def test_study_with_every_role(real_dicom, tmp_path):
    folder = _study(real_dicom, tmp_path / "P1")
    roles = {i.series_number: (i.role, i.reason) for i in discover_series(folder)}
    assert roles[5] == ("T2", "matches T2 (description)") and roles[4][0] == "CE-T1"
    assert roles[8] == ("DCE", "DCE: 3 temporal positions (dynamic phases)")
    assert roles[6][0] == roles[7][0] == "T2FS"
    # two fat-suppressed T2 series: ambiguous only for a caller that reads T2FS
    images = load_study(folder, "P1", require_gland=False,
                        read_series=("T1", "CE-T1", "T2", "DCE", "DWI", "ADC"))
    assert set(images) == {"T1", "CE-T1", "T2", "DCE", "DWI", "ADC"}
    with pytest.raises(InputError, match=r"2 series match the T2FS role \(#6 'T2W_TSE_SPAIR', "
                                         r"#7 'STIR_TSE cor'\)"):
        load_study(folder, "P1", require_gland=False)
    roles_file = tmp_path / "roles.yaml"
    roles_file.write_text("T2FS: {series_number: 6}\n", encoding="utf-8")
    images = load_study(folder, "P1", require_gland=False, roles_file=roles_file)
    assert list(images) == ["T1", "CE-T1", "T2", "T2FS", "DWI", "ADC", "DCE"]
    # the DCE channel is the phase of highest mean signal, the 2nd
    dce = sitk.GetArrayFromImage(images["DCE"])
    assert dce.shape[0] == 6 and np.all(dce[:, disc(dce.shape[1:])] == round(S0 * 2.5))
    assert notes_of(images["DCE"]) == ("DCE: phase 2 of 3 (highest mean signal: peak enhancement)",)


def test_a_required_adc_is_computed_from_dwi(real_dicom, tmp_path):
    folder = _study(real_dicom, tmp_path / "P2")
    images = load_study(folder, "P2", require_gland=False, series=("T1", "ADC"),
                        read_series=("T1", "ADC"))
    assert list(images) == ["T1", "ADC"]
    centre = sitk.GetArrayFromImage(images["ADC"])[:, 128, 128]
    assert centre == pytest.approx(math.log(S0 / round(S0 * math.exp(-1.5))), abs=1e-4)


def test_convert_writes_every_role(real_dicom, tmp_path):
    folder = _study(real_dicom, tmp_path / "P3")
    (tmp_path / "roles.yaml").write_text("T2FS: {series_number: 6}\n", encoding="utf-8")
    t1 = sorted((folder / "s03").iterdir())
    gland = ellipsoid(read_series_files(t1), [-40, 0, 0], [18, 25, 12])
    write_rtstruct({"Parotid_R": gland}, t1, folder / "RS" / "rs")
    out = tmp_path / "out"
    assert main(["convert", str(folder), str(out), "--roles", str(tmp_path / "roles.yaml")]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "ADC.nii.gz", "CE-T1.nii.gz", "DCE.nii.gz", "DWI.bval", "DWI.nii.gz", "T1.nii.gz",
        "T2.nii.gz", "T2FS.nii.gz", "parotid.nii.gz"]
    assert (out / "DWI.bval").read_text(encoding="utf-8").split() == ["0", "1000"]
    dwi = sitk.ReadImage(str(out / "DWI.nii.gz"))
    assert dwi.GetDimension() == 4 and dwi.GetSize()[3] == 2
    volumes = sitk.GetArrayFromImage(dwi)                     # (b, z, y, x)
    assert volumes[0, :, 128, 128] == pytest.approx(S0) and volumes[1, 0, 128, 128] < S0 / 4
    adc = sitk.ReadImage(str(out / "ADC.nii.gz"))
    assert adc.GetPixelID() == sitk.sitkFloat32
    assert sitk.GetArrayFromImage(adc)[:, 128, 128] == pytest.approx(1.5, abs=1e-3)
    files = find_patient_files(out, "P3", series=("T1", "DWI", "ADC"))   # the named layout
    back = read_images(files, ("T1", "DWI", "ADC"))
    assert sitk.GetArrayFromImage(back["ADC"])[:, 128, 128] == pytest.approx(1.5, abs=1e-3)
    assert sitk.GetArrayFromImage(back["DWI"])[:, 128, 128] == pytest.approx(volumes[1, :, 128, 128])


def test_a_named_dwi_folder_of_one_series_per_b_value_reads_by_its_headers(real_dicom, tmp_path):
    """A patient folder (named layout) whose ``DWI/`` holds DICOM files, one series per b-value
    (as the DICOM node links them): the b-values come from the headers, the ADC from the pair."""
    files = sorted_slices(image_files(real_dicom[BASE]), 6)
    folder = tmp_path / "P4"
    copy_series(files, folder / "T1", description="T1W_SE", series_number=3)
    write_dwi(files, folder / "DWI", (0, 1000), "philips", one_series=False, description="DWI_SSh")
    found = find_patient_files(folder, "P4", require_gland=False, series=("T1", "ADC"))
    images = read_images(found, ("DWI", "ADC"))
    assert sorted(images) == ["ADC", "DWI", "T1"]
    centre = sitk.GetArrayFromImage(images["ADC"])[:, 128, 128]
    assert centre == pytest.approx(math.log(S0 / round(S0 * math.exp(-1.5))), abs=1e-4)


def test_an_adc_map_is_read_without_touching_the_dwi(real_dicom, tmp_path):
    """With an ADC map in the study and no DWI channel wanted, the DWI series are never read: two
    DWI series sharing b = 1000 (ambiguous) do not stop it."""
    files = sorted_slices(image_files(real_dicom[BASE]), 6)
    folder = tmp_path / "P5"
    copy_series(files, folder / "s03", description="T1W_SE", series_number=3)
    write_adc(files, folder / "s30", 1500.0)
    write_dwi(files, folder / "s20", (0, 1000), "philips", description="DWI_SSh", series_number=20)
    write_dwi(files, folder / "s40", (1000,), "philips", description="DWI_SSh", series_number=40)
    images = load_study(folder, "P5", require_gland=False, series=("T1", "ADC"), read_series=("T1", "ADC"))
    assert sorted(images) == ["ADC", "T1"]
    assert sitk.GetArrayFromImage(images["ADC"])[:, 128, 128] == pytest.approx(1.5)


def test_convert_writes_a_named_dwi_folder_of_one_series_per_b_value(real_dicom, tmp_path):
    """``convert`` reads a named-layout ``DWI/`` DICOM folder as the pipeline does (by headers)."""
    files = sorted_slices(image_files(real_dicom[BASE]), 6)
    folder = tmp_path / "P6"
    copy_series(files, folder / "T1", description="T1W_SE", series_number=3)
    copy_series(files, folder / "CE-T1", description="T1W_SE_GD", series_number=4, contrast_agent="Gd")
    copy_series(files, folder / "T2", description="T2W_TSE", series_number=5)
    t1 = read_series_files(sorted((folder / "T1").iterdir()))
    gland = sitk.GetImageFromArray(ellipsoid(t1, [-40, 0, 0], [18, 25, 12]).astype(np.uint8))
    gland.CopyInformation(t1)
    sitk.WriteImage(gland, str(folder / "parotid.nii.gz"))
    write_dwi(files, folder / "DWI", (0, 1000), "philips", one_series=False, description="DWI_SSh")
    out = tmp_path / "out"
    assert main(["convert", str(folder), str(out)]) == 0
    assert (out / "DWI.bval").read_text(encoding="utf-8").split() == ["0", "1000"]
    assert (out / "ADC.nii.gz").is_file()
