"""Study folders: series discovery, roles, RTSTRUCT masks, inspect/convert, no identifiers out."""

from __future__ import annotations

import argparse
import gzip
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_fixtures import (copy_series, dice, ellipsoid, identifying_values, image_files,
                            materialize_all)

from mrparotid.cli.dicom import add_parsers
from mrparotid.errors import ConfigError, InputError
from mrparotid.io.manifest import read_manifest
from mrparotid.dicom.rtstruct import write_rtstruct
from mrparotid.dicom.discovery import discover_series, format_series_table
from mrparotid.dicom.roles import classify, load_roles
from mrparotid.dicom.study import is_study_folder, load_study
from mrparotid.dicom.types import SeriesInfo, SeriesTags

SOURCE = "philips_t1_ffe_ax_classic"


@pytest.fixture(scope="session")
def real_dicom(tmp_path_factory):
    return materialize_all(tmp_path_factory)


def _build_study(real_dicom, folder, *, extra_t2=False, with_t2=True):
    """A study export: three series at different depths, a localizer and an RTSTRUCT on T2."""
    files = image_files(real_dicom[SOURCE])
    root = folder / "DICOM" / "ST0001"
    copy_series(files, root / "SE3", description="t1_tse_tra", series_number=3)
    copy_series(files, root / "SE4" / "A", description="t1_tse_tra_fs", series_number=4,
                contrast_agent="Gadoterate")
    copy_series(files[:1], root / "SE1", description="localizer", series_number=1,
                image_type=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    t2 = copy_series(files, root / "SE5", description="T2 TSE AX", series_number=5) if with_t2 \
        else copy_series(files, root / "SE5", description="PD TSE AX", series_number=5)
    if extra_t2:
        copy_series(files, root / "SE7", description="T2 TSE COR", series_number=7)
    reference = read_series_files_cached(t2)
    right = ellipsoid(reference, [-40, 0, 0], [18, 25, 30])
    left = ellipsoid(reference, [40, 0, 0], [18, 25, 30])
    tumour = ellipsoid(reference, [42, 5, 0], [9, 10, 12])
    write_rtstruct({"Parotid_R": right, "Parotid_L": left, "GTV": tumour, "Brainstem": tumour},
                   t2, root / "RS" / "RS0001")
    return folder, {"right": right, "left": left, "tumour": tumour}


def read_series_files_cached(files):
    from mrparotid.dicom.series import read_series_files
    return read_series_files(files)


@pytest.fixture(scope="module")
def study(real_dicom, tmp_path_factory):
    return _build_study(real_dicom, tmp_path_factory.mktemp("P001") / "P001")


def _run(argv):
    parser = argparse.ArgumentParser(prog="mrparotid")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_is_study_folder(study, tmp_path):
    folder, _ = study
    assert is_study_folder(folder)
    named = tmp_path / "named"
    named.mkdir()
    (named / "T1.nii.gz").write_bytes(b"")
    (named / "dicom").mkdir()
    shutil.copy(next((folder / "DICOM" / "ST0001" / "SE3").iterdir()), named / "dicom" / "x.dcm")
    assert not is_study_folder(named)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello", encoding="utf-8")
    assert not is_study_folder(tmp_path / "empty")


def test_discover_series_and_roles(study):
    folder, _ = study
    infos = discover_series(folder)
    assert [i.series_number for i in infos] == [1, 3, 4, 5]
    roles = {i.series_number: i.role for i in infos}
    assert roles == {1: None, 3: "T1", 4: "CE-T1", 5: "T2"}
    assert "contrast agent tag" in infos[2].reason
    assert all(isinstance(i, SeriesInfo) and i.orientation == "axial" for i in infos)
    table = format_series_table(infos)
    assert "CE-T1" in table and "localizer" in table and len(table.splitlines()) == 6


def test_load_study_returns_series_and_masks(study):
    folder, truth = study
    images = load_study(folder, "P001", require_tumour=True)
    assert set(images) == {"T1", "CE-T1", "T2", "gland", "tumour"}
    for role in ("T1", "CE-T1", "T2"):
        assert images[role].GetSize() == (256, 256, 24)
        assert images[role].GetPixelID() == sitk.sitkFloat32
    gland = sitk.GetArrayFromImage(images["gland"])
    assert images["gland"].GetPixelID() == sitk.sitkUInt8
    assert images["gland"].GetOrigin() == images["T2"].GetOrigin()
    assert dice(gland == 1, truth["right"]) >= 0.95 and dice(gland == 2, truth["left"]) >= 0.95
    assert dice(sitk.GetArrayFromImage(images["tumour"]), truth["tumour"]) >= 0.95


def test_ambiguous_role_asks_for_a_mapping(real_dicom, tmp_path):
    folder, _ = _build_study(real_dicom, tmp_path / "P002", extra_t2=True)
    with pytest.raises(InputError, match=r"2 series match the T2 role") as err:
        load_study(folder, "P002")
    message = str(err.value)
    assert "\n" not in message and message.startswith("patient P002: file ")
    assert "`T2: {series_number: 5}`" in message and "--roles FILE" in message
    roles = tmp_path / "roles.yaml"
    roles.write_text("T2: {series_number: 7}\n", encoding="utf-8")
    images = load_study(folder, "P002", roles_file=roles)
    assert set(images) >= {"T1", "CE-T1", "T2", "gland"}
    infos = discover_series(folder, roles_file=roles)
    pinned = {i.series_number: (i.role, i.reason) for i in infos}
    assert pinned[7] == ("T2", "pinned (series_number 7)") and pinned[5][0] is None


def test_missing_role_and_bad_pin(real_dicom, tmp_path):
    folder, _ = _build_study(real_dicom, tmp_path / "P003", with_t2=False)
    with pytest.raises(InputError, match=r"no series matches the T2 role") as err:
        load_study(folder, "P003")
    assert "`T2: {series_number: N}`" in str(err.value) and "\n" not in str(err.value)
    roles = tmp_path / "roles.yaml"
    roles.write_text("T2: {series_number: 42}\n", encoding="utf-8")
    with pytest.raises(InputError, match="pinned to series_number 42"):
        load_study(folder, "P003", roles_file=roles)
    roles.write_text("T2: {series_number: 5}\n", encoding="utf-8")
    assert "T2" in load_study(folder, "P003", roles_file=roles)


@pytest.mark.parametrize("text, error", [
    ("T2: {series_number: five}\n", "bad pin"),
    ("T3: {series_number: 5}\n", "unknown key"),
    ("T2: {match: ['(t2']}\n", "bad regular expression"),
    ("- T2\n", "YAML mapping"),
])
def test_bad_roles_files(tmp_path, text, error):
    path = tmp_path / "roles.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=error):
        load_roles(path)


def _info(description, *, n=24, modality="MR"):
    return SeriesInfo("1.2.3", 1, modality, description, "axial", (256, 256), (1.0, 1.0, 5.0),
                      n, ())


@pytest.mark.parametrize("description, agent, image_type, n, role", [
    ("T1 TSE AX", False, (), 24, "T1"),
    ("T1 TSE AX", True, (), 24, "CE-T1"),
    ("T1+C", False, (), 24, "CE-T1"),
    ("AX T1 FS POST", False, (), 24, "CE-T1"),
    ("t1_vibe_fs_tra_KM", False, (), 24, "CE-T1"),
    ("T1W_SE_GD", False, (), 24, "CE-T1"),
    ("t2_tse_tra", False, (), 24, "T2"),
    ("T2 STIR cor", True, (), 24, "T2FS"),      # fat-suppressed T2 has its own role (issue 23)
    ("T2* GRE", False, (), 24, None),
    ("FLAIR", False, (), 24, None),
    ("ep2d_diff_b1000", False, (), 24, "DWI"),  # diffusion has its own role (issue 23)
    ("3-plane loc", False, (), 24, None),
    ("SURVEY", False, (), 24, None),
    ("t1_tse_tra", False, ("ORIGINAL", "PRIMARY", "LOCALIZER"), 24, None),
    ("t1_tse_tra", False, (), 2, None),
])
def test_classify_table(description, agent, image_type, n, role):
    got, reason = classify(_info(description, n=n), SeriesTags("", image_type, agent), load_roles())
    assert got == role, reason


def test_classify_other_modality_and_protocol_fallback():
    roles = load_roles()
    got = classify(_info("T1 AX", modality="CT"), SeriesTags("", (), False), roles)
    assert got == (None, "modality CT")
    got, reason = classify(_info("series 6"), SeriesTags("T2_TSE_AX", (), False), roles)
    assert got == "T2" and "protocol name" in reason


def test_inspect_and_convert_leak_no_identifiers(study, tmp_path, capsys):
    folder, truth = study
    secrets = identifying_values(image_files(folder / "DICOM" / "ST0001" / "SE3"))
    assert secrets, "fixture should carry placeholder identifiers to test against"

    assert _run(["inspect", str(folder)]) == 0
    out = capsys.readouterr()
    assert "T2 TSE AX" in out.out and "CE-T1" in out.out

    assert _run(["convert", str(folder), str(tmp_path / "one"), "--patient-id", "P001"]) == 0
    out_single = capsys.readouterr()
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == ["CE-T1.nii.gz", "T1.nii.gz", "T2.nii.gz", "parotid.nii.gz", "tumour.nii.gz"]
    gland = sitk.ReadImage(str(tmp_path / "one" / "parotid.nii.gz"))
    assert gland.GetPixelID() == sitk.sitkUInt8
    assert dice(sitk.GetArrayFromImage(gland) == 2, truth["left"]) >= 0.95

    manifest = tmp_path / "cohort.csv"
    rel = shutil.copytree(folder, tmp_path / "patients" / "P001")
    manifest.write_text("# a comment\npatient_id,diagnosis,patient_dir,split\n"
                        f"P001,warthin,{rel.relative_to(tmp_path).as_posix()},test\n", encoding="utf-8")
    assert _run(["convert", "--manifest", str(manifest), str(tmp_path / "cohort")]) == 0
    out_cohort = capsys.readouterr()
    converted = read_manifest(tmp_path / "cohort" / "manifest.csv")
    (case,) = converted.cases
    assert case.patient_dir == (tmp_path / "cohort" / "P001").resolve() and case.split == "test"

    texts = [out.out, out.err, out_single.out, out_single.err, out_cohort.out, out_cohort.err]
    blobs = [t.encode() for t in texts] + [(tmp_path / "cohort" / "manifest.csv").read_bytes()]
    for nii in list((tmp_path / "one").iterdir()) + list((tmp_path / "cohort" / "P001").iterdir()):
        raw = gzip.open(nii).read()
        header_end = int(np.frombuffer(raw[108:112], "<f4")[0])    # vox_offset: header + extensions
        blobs.append(raw[:header_end])
        assert raw[148:228].strip(b"\0") == b""                    # descrip is empty
    for blob in blobs:
        for secret in secrets:
            assert secret not in blob


def test_convert_arguments_and_missing_gland(real_dicom, tmp_path):
    with pytest.raises(ConfigError, match="either PATIENT_DIR OUT_DIR or --manifest"):
        _run(["convert", str(tmp_path / "out")])
    folder = tmp_path / "P004"
    copy_series(image_files(real_dicom[SOURCE]), folder / "a", description="T1", series_number=1)
    copy_series(image_files(real_dicom[SOURCE]), folder / "b", description="T1 +C", series_number=2)
    copy_series(image_files(real_dicom[SOURCE]), folder / "c", description="T2", series_number=3)
    with pytest.raises(InputError, match="no parotid gland contours found .no RTSTRUCT"):
        load_study(folder, "P004")


def _named_patient(folder):
    folder.mkdir(parents=True)
    arr = np.zeros((6, 8, 8), np.float32)
    arr[2:4, 2:6, 2:6] = 1
    for name in ("T1", "CE-T1", "T2", "parotid"):
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(folder / f"{name}.nii.gz"))
    return folder


def test_cohort_with_a_bad_patient(tmp_path, capsys):
    from mrparotid.errors import CohortError

    _named_patient(tmp_path / "pts" / "A1")
    (tmp_path / "pts" / "B2").mkdir()
    (tmp_path / "pts" / "B2" / "notes.txt").write_text("nothing here", encoding="utf-8")
    manifest = tmp_path / "m.csv"
    manifest.write_text("patient_id,diagnosis,patient_dir\n"
                        "A1,malignant,pts/A1\nB2,warthin,pts/B2\n", encoding="utf-8")
    with pytest.raises(CohortError, match=r"1 bad patient.*patient B2: .*--skip-bad"):
        _run(["convert", "--manifest", str(manifest), str(tmp_path / "out")])
    assert not (tmp_path / "out" / "manifest.csv").exists()
    assert _run(["convert", "--manifest", str(manifest), str(tmp_path / "out"), "--skip-bad"]) == 0
    (case,) = read_manifest(tmp_path / "out" / "manifest.csv").cases
    assert case.patient_id == "A1" and case.diagnosis == "malignant"
    written = sorted(p.name for p in (tmp_path / "out" / "A1").iterdir())
    assert written == ["CE-T1.nii.gz", "T1.nii.gz", "T2.nii.gz", "parotid.nii.gz"]
    assert "convert" in capsys.readouterr().err        # the tqdm progress bar


@pytest.mark.parametrize("strip", ["series", "series+images", "everything"])
def test_rtstruct_found_by_image_refs_or_frame_of_reference(study, tmp_path, strip):
    import pydicom

    folder = shutil.copytree(study[0], tmp_path / "P005")
    rs_path = folder / "DICOM" / "ST0001" / "RS" / "RS0001"
    ds = pydicom.dcmread(rs_path)
    # without RTReferencedStudySequence the series is found through the contours' image refs;
    # without those too, as the role series in the same frame of reference
    del ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence
    if strip in ("series", "everything"):  # a foreign frame of reference
        ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.4"
        for roi in ds.StructureSetROISequence:
            roi.ReferencedFrameOfReferenceUID = "1.2.3.4"
    if strip in ("series+images", "everything"):
        for roi in ds.ROIContourSequence:
            for contour in roi.ContourSequence:
                del contour.ContourImageSequence
    ds.save_as(rs_path)
    if strip == "everything":
        with pytest.raises(InputError, match="references no image series in this folder"):
            load_study(folder, "P005")
        return
    images = load_study(folder, "P005")
    gland = sitk.GetArrayFromImage(images["gland"])
    assert dice(gland == 2, study[1]["left"]) >= 0.95


def test_study_folder_prepares_like_a_named_layout(study, tmp_path):
    """A DICOM study export (series + RTSTRUCT) goes through `prepare` without conversion."""
    import json

    from mrparotid.cli.main import main

    folder, _ = study
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"patient_id,diagnosis,patient_dir,split\nP001,warthin,{folder},train\n",
                        encoding="utf-8")
    out = tmp_path / "counts.json"
    assert main(["prepare", str(manifest), "--json", str(out), "-q", "--data.image_size", "32",
                 "--data.cache_dir", str(tmp_path / "cache")]) == 0
    slices = json.loads(out.read_text(encoding="utf-8"))["splits"]["train"]["slices"]
    assert slices["warthin"] > 0 and slices["no_tumour"] > 0      # tumour side + contralateral gland
    assert slices["pleomorphic_adenoma"] == slices["malignant"] == 0
