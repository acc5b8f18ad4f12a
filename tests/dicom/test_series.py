"""DICOM series reading against dcm2niix references, and the vendor quirks (on real fixtures)."""

from __future__ import annotations

import itertools
import shutil
import warnings

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_fixtures import SERIES, copy_series, image_files, materialize_all, reference_nifti
from pydicom.sequence import Sequence as DicomSequence

from mrparotid.dicom.series import SliceGapWarning, read_dicom_series, read_series_files, slice_gaps
from mrparotid.errors import InputError
from mrparotid.dicom.discovery import discover_series


@pytest.fixture(scope="session")
def real_dicom(tmp_path_factory):
    return materialize_all(tmp_path_factory)


def _lps_affine(image: sitk.Image) -> np.ndarray:
    """4x4 index (x, y, z) → LPS mm affine of a SimpleITK image."""
    a = np.eye(4)
    a[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    a[:3, 3] = image.GetOrigin()
    return a


def _corners(affine: np.ndarray, shape) -> np.ndarray:
    idx = np.array(list(itertools.product(*[(0, n - 1) for n in shape])), dtype=float)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def _rescale_slope(folder) -> float:
    ds = pydicom.dcmread(image_files(folder)[0], stop_before_pixels=True)
    if "PerFrameFunctionalGroupsSequence" in ds:
        pvt = ds.PerFrameFunctionalGroupsSequence[0].get("PixelValueTransformationSequence")
        return float(pvt[0].RescaleSlope) if pvt else 1.0
    return float(ds.get("RescaleSlope", 1) or 1)


@pytest.mark.parametrize("name", SERIES)
def test_matches_dcm2niix_reference(real_dicom, name):
    nib = pytest.importorskip("nibabel")
    image = read_dicom_series(real_dicom[name])
    ref = nib.load(reference_nifti(name))
    ref_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ref.affine      # RAS → LPS
    ours = _lps_affine(image)
    # world geometry: the 8 corner voxel centres agree as sets within 1e-3 mm
    a, b = _corners(ours, image.GetSize()), _corners(ref_lps, ref.shape[:3])
    dist = np.linalg.norm(a[:, None] - b[None], axis=2)
    assert dist.min(1).max() < 1e-3 and dist.min(0).max() < 1e-3
    # index map ref = M @ ours + t, derived from the affines: a signed permutation
    m = np.linalg.solve(ref_lps[:3, :3], ours[:3, :3])
    t = np.linalg.solve(ref_lps[:3, :3], ours[:3, 3] - ref_lps[:3, 3])
    perm = np.rint(m)
    assert np.abs(m - perm).max() < 1e-3 and np.abs(t - np.rint(t)).max() < 1e-3
    src_axis = [int(np.argmax(np.abs(perm[r]))) for r in range(3)]
    assert sorted(src_axis) == [0, 1, 2]
    for r, s in enumerate(src_axis):
        assert image.GetSize()[s] == ref.shape[r]
        assert abs(image.GetSpacing()[s] - ref.header.get_zooms()[r]) < 1e-3
    # voxel values: ours (x, y, z) → ref order; stored integers compare after the DICOM rescale
    ours_xyz = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    mapped = ours_xyz.transpose(src_axis)
    for r, s in enumerate(src_axis):
        if perm[r, s] < 0:
            mapped = np.flip(mapped, r)
    stored = np.asanyarray(ref.dataobj.get_unscaled()).reshape(ref.shape[:3])
    unscaled = mapped / _rescale_slope(real_dicom[name])
    assert np.abs(unscaled - stored).max() < 0.01
    assert image.GetPixelID() == sitk.sitkFloat32


def test_shuffled_and_renamed_files_give_the_same_volume(real_dicom, tmp_path):
    src = real_dicom["siemens_t1_fl2d_sag_classic"]
    files = image_files(src)
    rng = np.random.default_rng(0)
    dst = tmp_path / "shuffled"
    dst.mkdir()
    for f, new in zip(files, rng.permutation(len(files))):
        shutil.copy(f, dst / f"zz_{new:03d}.img")
    (dst / "README.txt").write_text("not DICOM", encoding="utf-8")
    (dst / ".DS_Store").write_bytes(b"\0" * 64)
    (dst / "notes").write_bytes(b"plain bytes, no DICOM preamble" * 10)
    a, b = read_dicom_series(src), read_dicom_series(dst)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert a.GetOrigin() == b.GetOrigin() and a.GetDirection() == b.GetDirection()


def _sorted_by_position(folder):
    files = image_files(folder)
    ds = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    iop = np.asarray(ds[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    return [f for _, f in sorted(zip([np.dot(d.ImagePositionPatient, normal) for d in ds], files))]


@pytest.mark.parametrize("drop", [[17], [16, 17]])
def test_dropped_slices_are_filled_with_a_warning(real_dicom, tmp_path, drop):
    src = real_dicom["siemens_t1_fl2d_sag_classic"]
    files = _sorted_by_position(src)
    full = read_dicom_series(src)
    kept = [f for i, f in enumerate(files) if i not in drop]
    gap = f"slice gap of {4.8 * (len(drop) + 1):.1f} mm"
    with pytest.warns(SliceGapWarning, match=gap) as rec:
        image = read_series_files(kept, where=tmp_path, max_gap_slices=len(drop))
    assert str(tmp_path) in str(rec[0].message)
    assert image.GetSize() == full.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), full.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.GetOrigin(), full.GetOrigin(), atol=1e-4)
    a, b = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(full)
    keep = [i for i in range(len(files)) if i not in drop]
    np.testing.assert_allclose(a[keep], b[keep], atol=1e-3)
    lo, hi = drop[0] - 1, drop[-1] + 1
    for k in drop:  # linear interpolation between the neighbours of the gap
        w = (k - lo) / (hi - lo)
        np.testing.assert_allclose(a[k], (1 - w) * b[lo] + w * b[hi], atol=1e-2)


def test_a_big_gap_is_an_error_naming_it(real_dicom, tmp_path):
    files = _sorted_by_position(real_dicom["siemens_t1_fl2d_sag_classic"])
    kept = files[:10] + files[13:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match=r"slice gap of 19\.2 mm .*3 missing slices") as err:
            read_series_files(kept, patient="P1", where=tmp_path)
    assert "\n" not in str(err.value) and str(err.value).startswith("patient P1: file ")


def test_uneven_and_repeated_positions_are_errors(real_dicom, tmp_path):
    files = _sorted_by_position(real_dicom["philips_t1_ffe_ax_classic"])
    uneven = copy_series(files, tmp_path / "uneven")
    ds = pydicom.dcmread(uneven[10])
    ds.ImagePositionPatient = [float(v) for v in ds.ImagePositionPatient[:2]] + \
        [float(ds.ImagePositionPatient[2]) + 1.7]
    ds.save_as(uneven[10])
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_dicom_series(tmp_path / "uneven")
    repeated = copy_series(files + files[:1], tmp_path / "repeated")
    with pytest.raises(InputError, match="repeat the position"):
        read_series_files(repeated)


@pytest.mark.parametrize("positions, step, gaps", [
    ([0, 5, 10, 15], 5.0, []),
    ([0, 5.2, 9.9, 15], 5.0, []),                 # within 10 %: no gap
    ([0, 5, 15, 20], 5.0, [(1, 10.0, 1)]),
    ([0, 5, 10, 25, 30], 5.0, [(2, 15.0, 2)]),
])
def test_slice_gaps_table(positions, step, gaps):
    got_step, got = slice_gaps(positions, max_missing=2)
    assert got_step == pytest.approx(step)
    assert [(g.before, g.gap_mm, g.missing) for g in got] == gaps


def test_two_series_in_one_folder(real_dicom, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("philips_t1_ffe_ax_classic", "siemens_t1_fl2d_sag_classic"):
        for f in image_files(real_dicom[name]):
            shutil.copy(f, mixed / f.name)
    infos = discover_series(mixed)
    assert sorted(i.n_slices for i in infos) == [24, 35]
    assert {i.orientation for i in infos} == {"axial", "sagittal"}
    with pytest.raises(InputError, match="holds 2 DICOM series") as err:
        read_dicom_series(mixed, patient="P2")
    assert "\n" not in str(err.value) and "mrparotid inspect" in str(err.value)


def test_raw_data_object_is_ignored(real_dicom):
    folder = real_dicom["philips_t1_ffe_ax_enhanced"]
    assert len(list(folder.iterdir())) == 2
    (info,) = discover_series(folder)
    assert info.n_slices == 24 and len(info.files) == 1


def _enhanced_copy(real_dicom, tmp_path, edit) -> tuple[sitk.Image, sitk.Image, pydicom.Dataset]:
    src = image_files(real_dicom["philips_t1_ffe_ax_enhanced"])[0]
    ds = pydicom.dcmread(src)
    edit(ds)
    (tmp_path / "enh").mkdir()
    ds.save_as(tmp_path / "enh" / "frames.dcm")
    return read_dicom_series(src.parent), read_dicom_series(tmp_path / "enh"), ds


def test_enhanced_frames_stored_out_of_order(real_dicom, tmp_path):
    perm = np.random.default_rng(1).permutation(24)

    def shuffle(ds):
        ds.PixelData = ds.pixel_array[perm].tobytes()
        ds.PerFrameFunctionalGroupsSequence = DicomSequence(
            [ds.PerFrameFunctionalGroupsSequence[i] for i in perm])
    original, shuffled, _ = _enhanced_copy(real_dicom, tmp_path, shuffle)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(original),
                                  sitk.GetArrayFromImage(shuffled))
    assert original.GetOrigin() == shuffled.GetOrigin()


def test_enhanced_rescale_that_varies_per_frame(real_dicom, tmp_path):
    def vary(ds):
        for k, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
            frame.PixelValueTransformationSequence[0].RescaleSlope = f"{2.0 + k:.1f}"
            frame.PixelValueTransformationSequence[0].RescaleIntercept = "-10"
    _, image, ds = _enhanced_copy(real_dicom, tmp_path, vary)
    stored = ds.pixel_array.astype(np.float64)
    expected = stored * (2.0 + np.arange(24))[:, None, None] - 10
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=1e-6)


def test_a_part_of_an_enhanced_file_is_rescaled_as_in_the_whole_file(real_dicom, tmp_path):
    """One b-value or one DCE phase is a subset of an enhanced file's frames with one rescale:
    read alone, it keeps the values it has in the whole file (the file's rescale varies, so GDCM,
    which applies the first frame's to all, must not read it)."""
    from mrparotid.dicom.headers import frames_of
    from mrparotid.dicom.series import read_frames

    def two_slopes(ds):
        for k, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
            frame.PixelValueTransformationSequence[0].RescaleSlope = "1.0" if k < 12 else "2.0"
    _, _, ds = _enhanced_copy(real_dicom, tmp_path, two_slopes)
    frames = frames_of(ds, tmp_path / "enh" / "frames.dcm")
    whole = read_frames(frames)
    np.testing.assert_array_equal(read_frames(frames[12:]), whole[12:])
    np.testing.assert_array_equal(read_frames(frames[:12]), whole[:12])


def test_localizer_and_non_image_objects_get_no_role(real_dicom, tmp_path):
    folder = tmp_path / "study"
    files = image_files(real_dicom["philips_t1_ffe_ax_classic"])
    copy_series(files, folder / "ax", new_uids=False)
    copy_series(files[:1], folder / "loc", image_type=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    copy_series(files[:3], folder / "survey", description="SURVEY_3plane", series_number=1)
    infos = discover_series(folder)
    assert len(infos) == 3
    roles = {i.n_slices: (i.role, i.reason) for i in infos}
    assert roles[24][0] == "T1"
    assert roles[1][0] is None and roles[1][1].startswith("localizer")
    assert roles[3][0] is None and roles[3][1] == "localizer (description)"


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_dicom_series(tmp_path / "nope")
    with pytest.raises(InputError, match="no readable DICOM image files"):
        read_dicom_series(tmp_path)


def test_oblique_keeps_its_geometry(real_dicom):
    image = read_dicom_series(real_dicom["ge_mprage_3d_ax_oblique"])
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    angle = np.degrees(np.arccos(abs(direction[2, 2])))
    assert angle == pytest.approx(13.2, abs=0.1)
    (info,) = discover_series(real_dicom["ge_mprage_3d_ax_oblique"])
    assert info.orientation == "oblique axial 13.2 deg"
