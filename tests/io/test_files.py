"""Patient folder → series and masks: names, duplicates, unreadable files, DICOM folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mrparotid.dicom.writer import write_dicom_series
from patients import (BAD_PATIENTS, ORIGIN, SPACING, patient_arrays, to_image,
                      write_patient)
from mrparotid.errors import InputError
from mrparotid.io.files import find_patient_files, read_image, role_of


@pytest.mark.parametrize("name,role", [
    ("T1.nii.gz", "T1"), ("t1w.nrrd", "T1"), ("CE-T1.mha", "CE-T1"), ("ce_t1.nii", "CE-T1"),
    ("T1C.nii.gz", "CE-T1"), ("t1ce.mhd", "CE-T1"), ("T1+C.nii.gz", "CE-T1"), ("T2W.NII.GZ", "T2"),
    ("parotid.nii.gz", "gland"), ("Gland.nrrd", "gland"), ("parotid_mask.nii", "gland"),
    ("tumor.nii.gz", "tumour"), ("Tumour.mha", "tumour"), ("lesion.nii.gz", "tumour"),
    ("notes.txt", None), ("T1.json", None), ("T1.raw", None), ("T3.nii.gz", None), ("T1", None),
])
def test_role_of_file_names(name, role):
    assert role_of(Path(name)) == role


def test_role_of_folders(tmp_path):
    (tmp_path / "t1c").mkdir()
    (tmp_path / "tumour").mkdir()
    assert role_of(tmp_path / "t1c") == "CE-T1"
    assert role_of(tmp_path / "tumour") is None      # masks are files, not DICOM folders


def test_find_patient_files_by_alias(tmp_path):
    d = write_patient(tmp_path / "P001", names={"T1": "t1w", "CE-T1": "T1+C", "T2": "T2W",
                                                "gland": "gland", "tumour": "lesion"})
    (d / "notes.txt").write_text("ignored", encoding="utf-8")
    files = find_patient_files(d, "P001", require_tumour=True)
    assert files.patient_id == "P001"
    assert {r: p.name for r, p in files.paths.items()} == {
        "T1": "t1w.nii.gz", "CE-T1": "T1+C.nii.gz", "T2": "T2W.nii.gz", "gland": "gland.nii.gz",
        "tumour": "lesion.nii.gz"}


def test_patient_id_defaults_to_folder_name(tmp_path):
    assert find_patient_files(write_patient(tmp_path / "P042")).patient_id == "P042"


def test_tumour_is_optional_unless_required(tmp_path):
    d = write_patient(tmp_path / "P001", omit=("tumour",))
    assert "tumour" not in find_patient_files(d, "P001").paths
    with pytest.raises(InputError, match=r"patient P001: file .*P001: no tumour mask found among"):
        find_patient_files(d, "P001", require_tumour=True)


@pytest.mark.parametrize("role,name", [("T1", "T1"), ("CE-T1", "CE-T1"), ("T2", "T2"),
                                       ("gland", "parotid")])
def test_missing_series_or_gland_names_patient_and_file(tmp_path, role, name):
    d = write_patient(tmp_path / "P003", omit=(role,))
    with pytest.raises(InputError) as exc:
        find_patient_files(d, "P003")
    text = str(exc.value)
    assert text.startswith(f"patient P003: file {d}: no {role} ")
    assert "->" in text and "\n" not in text


def test_series_subset_may_leave_out_ce_t1(tmp_path):
    d = write_patient(tmp_path / "P001", omit=("CE-T1",))
    assert "CE-T1" not in find_patient_files(d, "P001", series=("T1", "T2")).paths


def test_two_files_for_one_series(tmp_path):
    d = write_patient(tmp_path / "P004")
    sitk.WriteImage(to_image(patient_arrays()["T1"]), str(d / "t1w.nrrd"))
    with pytest.raises(InputError) as exc:
        find_patient_files(d, "P004")
    text = str(exc.value)
    assert text.startswith(f"patient P004: file {d / 't1w.nrrd'}: 2 entries match the T1 role")
    assert "T1.nii.gz" in text and "t1w.nrrd" in text


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match=r"patient P005: file .*P005: patient folder not found"):
        find_patient_files(tmp_path / "P005", "P005")
    (tmp_path / "P006").mkdir()
    with pytest.raises(InputError, match=r"patient P006: file .*P006: patient folder is empty"):
        find_patient_files(tmp_path / "P006", "P006")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_read_image_keeps_geometry_and_values(tmp_path, suffix):
    array = patient_arrays()["T2"]
    path = tmp_path / f"T2{suffix}"
    sitk.WriteImage(to_image(array), str(path))
    image = read_image(path, patient="P")
    assert image.GetPixelID() == sitk.sitkFloat32 and image.GetSize() == (40, 40, 12)
    np.testing.assert_allclose(image.GetSpacing(), SPACING)
    np.testing.assert_allclose(image.GetOrigin(), ORIGIN)
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), array)


def test_read_image_mhd_with_raw_data_file(tmp_path):
    path = tmp_path / "T1.mhd"
    sitk.WriteImage(to_image(patient_arrays()["T1"]), str(path))
    assert role_of(path) == "T1" and read_image(path).GetSize() == (40, 40, 12)


def test_read_image_squeezes_a_single_volume_4d_file(tmp_path):
    path = tmp_path / "T1.mha"
    sitk.WriteImage(sitk.JoinSeries([to_image(patient_arrays()["T1"])]), str(path))   # x, y, z, t=1
    assert sitk.ReadImage(str(path)).GetDimension() == 4
    image = read_image(path)
    assert image.GetDimension() == 3 and image.GetSize() == (40, 40, 12)


@pytest.mark.parametrize("image,what", [
    (sitk.GetImageFromArray(np.zeros((40, 40), np.float32)), "2-D"),
    (sitk.GetImageFromArray(np.zeros((12, 40, 40, 3), np.float32), isVector=True), "3 component"),
])
def test_read_image_rejects_non_volumes(tmp_path, image, what):
    path = tmp_path / "T1.nrrd"
    sitk.WriteImage(image, str(path))
    with pytest.raises(InputError, match=f"patient P: file .*T1.nrrd: expected a 3-D scalar volume.*{what}"):
        read_image(path, patient="P")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_truncated_file_is_an_error(tmp_path, suffix):
    path = tmp_path / f"T2{suffix}"
    sitk.WriteImage(to_image(patient_arrays()["T2"] + np.random.default_rng(0).random(
        (12, 40, 40)).astype(np.float32)), str(path), useCompression=True)
    data = path.read_bytes()
    path.write_bytes(data[: 2 * len(data) // 3])
    with pytest.raises(InputError) as exc:
        read_image(path, patient="P009")
    text = str(exc.value)
    assert text.startswith(f"patient P009: file {path}: cannot read the image (") and "re-export" in text


def test_not_an_image_is_an_error(tmp_path):
    path = tmp_path / "T2.nii.gz"
    path.write_bytes(b"hello " * 100)
    with pytest.raises(InputError, match=r"patient P: file .*T2.nii.gz: cannot read the image \(no image "
                                         r"reader recognises the file\) -> re-export"):
        read_image(path, patient="P")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_voxels_are_an_error(tmp_path, suffix, bad):
    array = patient_arrays()["T2"]
    array[6, 20, 20] = bad
    array[6, 20, 21] = bad
    path = tmp_path / f"T2{suffix}"
    sitk.WriteImage(to_image(array), str(path))
    with pytest.raises(InputError, match=rf"patient P010: file .*T2{suffix.replace('.', '[.]')}: "
                                         r"2 non-finite voxel value\(s\)"):
        read_image(path, patient="P010")


def test_integer_nifti_masks_read_fine(tmp_path):
    path = tmp_path / "parotid.nii.gz"
    sitk.WriteImage(to_image(patient_arrays()["gland"]), str(path))
    assert sitk.GetArrayFromImage(read_image(path)).max() == 1.0


def test_dicom_folder_series_reads_with_its_geometry(tmp_path):
    image = to_image(patient_arrays()["CE-T1"])
    write_dicom_series(image, tmp_path / "CE-T1", "1.2.826.0.1.3680043.10.1999.7.1")
    out = read_image(tmp_path / "CE-T1", patient="P")
    assert out.GetSize() == (40, 40, 12)
    np.testing.assert_allclose(out.GetSpacing(), SPACING, atol=1e-4)
    np.testing.assert_allclose(out.GetOrigin(), ORIGIN, atol=1e-4)
    # the same contrast as written (rescaled to 0..4095 on export)
    a, b = sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(image)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999


def test_dicom_folder_with_two_series_is_an_error(tmp_path):
    d = write_patient(tmp_path / "P011")
    BAD_PATIENTS["dicom_folder_two_series"][0](d)
    files = find_patient_files(d, "P011")
    assert files.paths["CE-T1"] == d / "CE-T1"
    with pytest.raises(InputError) as exc:
        read_image(files.paths["CE-T1"], patient="P011")
    assert str(exc.value).startswith(f"patient P011: file {d / 'CE-T1'}: folder holds 2 DICOM series")


def test_fingerprint_follows_size_and_mtime(tmp_path):
    d = write_patient(tmp_path / "P001")
    write_dicom_series(to_image(patient_arrays()["CE-T1"]), d / "CE-T1", "1.2.3.4")
    (d / "CE-T1.nii.gz").unlink()
    files = find_patient_files(d, "P001")
    before = files.fingerprint()
    roles = [row[0] for row in before]
    assert roles.count("CE-T1") == 12 and roles.count("T1") == 1     # every DICOM file counts
    assert files.fingerprint() == before
    st = (d / "T2.nii.gz").stat()
    os.utime(d / "T2.nii.gz", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = files.fingerprint()
    assert [r for r in after if r[0] != "T2"] == [r for r in before if r[0] != "T2"]
    assert [r for r in after if r[0] == "T2"] != [r for r in before if r[0] == "T2"]


def test_fingerprint_of_mhd_includes_its_voxel_file(tmp_path):
    d = write_patient(tmp_path / "P001", omit=("T1",))
    sitk.WriteImage(to_image(patient_arrays()["T1"]), str(d / "T1.mhd"))
    files = find_patient_files(d, "P001")
    assert files.paths["T1"].name == "T1.mhd"
    before = files.fingerprint()
    assert ("T1", "T1.raw") in [row[:2] for row in before]
    raw = d / "T1.raw"
    st = raw.stat()
    os.utime(raw, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))   # new voxels, same header
    assert files.fingerprint() != before


def test_missing_folder_fix_says_where_the_folder_was_named(tmp_path):
    with pytest.raises(InputError, match="check patient_dir in the manifest"):
        find_patient_files(tmp_path / "P1", "P1")
    with pytest.raises(InputError, match="check the folder path$") as err:
        find_patient_files(tmp_path / "P1", "P1", hint="folder")
    assert "manifest" not in str(err.value)


@pytest.mark.parametrize("name,role", [
    ("t1_tse_tra.nii.gz", "T1"), ("t1_vibe_fs_tra_post.nii.gz", "CE-T1"), ("t2_tse_ax.nii", "T2"),
    ("t2_tse_tra.nrrd", "T2"), ("T2W_TSE.nii.gz", "T2"), ("T1W_SE.mha", "T1"), ("T1_FS_GD.nii", "CE-T1"),
    ("t2_flair_tra.nii.gz", None), ("localizer_t1.nii.gz", None), ("t1_mask.nii.gz", None),
    ("tumour_t2.nii.gz", None),
])
def test_scanner_protocol_names_get_roles_by_the_dicom_role_rules(name, role):
    from mrparotid.dicom.roles import role_of_name

    assert role_of(Path(name)) == role
    if role is not None:     # the same rules as a SeriesDescription
        assert role_of_name(name.split(".")[0]) == role


def test_find_patient_files_by_protocol_name(tmp_path):
    d = write_patient(tmp_path / "P1", names={"T1": "t1_tse_tra", "CE-T1": "t1_vibe_fs_tra_post",
                                              "T2": "t2_tse_ax"}, suffix=".nii")
    files = find_patient_files(d, "P1")
    assert {r: files.paths[r].name for r in ("T1", "CE-T1", "T2")} == {
        "T1": "t1_tse_tra.nii", "CE-T1": "t1_vibe_fs_tra_post.nii", "T2": "t2_tse_ax.nii"}
    # an exact name wins over a protocol name of the same role; protocol-named folders are not
    # series (a DICOM study export names its folders by protocol)
    sitk.WriteImage(to_image(patient_arrays()["T2"]), str(d / "T2.nii.gz"))
    (d / "t1_tse_cor").mkdir()
    assert find_patient_files(d, "P1").paths["T2"].name == "T2.nii.gz"
    assert role_of(d / "t1_tse_cor") is None


def test_a_missing_role_lists_the_files_seen_and_the_names_accepted(tmp_path):
    d = write_patient(tmp_path / "P1", omit=("T2",))
    sitk.WriteImage(to_image(patient_arrays()["T2"]), str(d / "t2_flair_ax.nii"))
    with pytest.raises(InputError) as exc:
        find_patient_files(d, "P1")
    text = str(exc.value)
    assert text.startswith(f"patient P1: file {d}: no T2 series found")     # the folder, which exists
    for seen in ("T1.nii.gz", "CE-T1.nii.gz", "parotid.nii.gz", "t2_flair_ax.nii"):
        assert seen in text
    assert "T2/T2W" in text and "t2_tse_ax" in text and "dicom_roles.yaml" in text
    assert "train" not in text and "checkpoint" not in text and "\n" not in text
