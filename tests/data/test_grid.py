"""Series and masks land on the T1 grid at the right physical place; geometry errors name the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from patients import ORIGIN, SPACING, patient_arrays, to_image, write_patient
from mrparotid.errors import InputError
from mrparotid.data.grid import build_study, coverage, geometry_line, reference_grid
from mrparotid.io.files import find_patient_files

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
POINT = np.array([7.3, -9.1, 1.9])       # LPS mm, off-centre on every axis
SIGMA = 3.5                               # mm


def rotation(axis: int, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def grid_points(size, spacing, origin, direction) -> np.ndarray:
    """(z, y, x, 3) LPS positions of the voxel centres of a grid given as in SimpleITK."""
    nx, ny, nz = size
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    ijk = np.stack([i, j, k], -1) * np.asarray(spacing, float)
    return ijk @ np.asarray(direction, float).reshape(3, 3).T + np.asarray(origin, float)


def blob(points: np.ndarray) -> np.ndarray:
    """A bright Gaussian blob at POINT over a background of 10; float32 (z, y, x)."""
    r2 = ((points - POINT) ** 2).sum(-1)
    return (10.0 + 1000.0 * np.exp(-r2 / (2 * SIGMA ** 2))).astype(np.float32)


def covering_origin(size, spacing, direction) -> tuple:
    """Origin that centres a grid on LPS (0, 0, 0)."""
    half = (np.asarray(size) - 1) * np.asarray(spacing) / 2
    return tuple(-np.asarray(direction).reshape(3, 3) @ half)


def expected_index(study) -> np.ndarray:
    """(z, y, x) continuous index of POINT on the study's reference grid."""
    xyz = np.linalg.solve(study.direction * np.asarray(study.spacing), POINT - np.asarray(study.origin))
    return xyz[::-1]


def weighted_centroid(volume: np.ndarray) -> np.ndarray:
    w = np.clip(volume - 10.0, 0, None)
    w[w < 0.1 * w.max()] = 0
    return (np.argwhere(w > 0) * w[w > 0][:, None]).sum(0) / w.sum()


def write_sitk(path, size, spacing, origin, direction, *, mask: bool = False) -> None:
    pts = grid_points(size, spacing, origin, direction)
    values = ((np.sqrt(((pts - POINT) ** 2).sum(-1)) <= 8.0).astype(np.uint8) if mask else blob(pts))
    sitk.WriteImage(to_image(values, spacing, origin, direction), str(path), useCompression=True)


def write_nibabel_ras(path, size, spacing, origin_lps, direction_lps, *, mask: bool = False) -> None:
    """A NIfTI written by nibabel: its affine maps (i, j, k) to RAS mm."""
    pts = grid_points(size, spacing, origin_lps, direction_lps)
    values = ((np.sqrt(((pts - POINT) ** 2).sum(-1)) <= 8.0).astype(np.uint8) if mask else blob(pts))
    affine = np.eye(4)
    affine[:3, :3] = LPS_FROM_RAS @ np.asarray(direction_lps).reshape(3, 3) @ np.diag(spacing)
    affine[:3, 3] = LPS_FROM_RAS @ np.asarray(origin_lps)
    img = nib.Nifti1Image(np.ascontiguousarray(values.transpose(2, 1, 0)), affine)   # (x, y, z)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


OTHER_GRIDS = {
    # name: (writer, size (x, y, z), spacing, direction)
    "other_spacing_shifted": (write_sitk, (62, 50, 22), (1.3, 1.7, 1.8), np.eye(3)),
    "oblique_5deg": (write_sitk, (56, 56, 16), (1.5, 1.5, 2.5), rotation(0, 5.0) @ rotation(2, 5.0)),
    "nibabel_ras": (write_nibabel_ras, (52, 46, 14), (1.6, 1.8, 2.6), rotation(2, -5.0)),
    "flipped_axes": (write_sitk, (44, 44, 12), (1.9, 1.9, 3.1), np.diag([-1.0, -1.0, 1.0])),
}


@pytest.fixture(scope="module", params=[np.eye(3), np.diag([-1.0, -1.0, 1.0])], ids=["T1_lps", "T1_ras"])
def blob_study(request, tmp_path_factory):
    """T1 (identity or RAS-like axes) + one series per other grid, each with the blob at POINT."""
    t1_dir = request.param
    d = tmp_path_factory.mktemp("blob")
    t1_size = (40, 40, 12)
    t1_origin = covering_origin(t1_size, SPACING, t1_dir)
    write_sitk(d / "T1.nii.gz", t1_size, SPACING, t1_origin, t1_dir)
    studies = {}
    for name, (writer, size, spacing, direction) in OTHER_GRIDS.items():
        pdir = d / name
        pdir.mkdir()
        (pdir / "T1.nii.gz").symlink_to(d / "T1.nii.gz")
        origin = np.asarray(covering_origin(size, spacing, direction)) + np.array([2.1, -1.7, 1.3])
        writer(pdir / "T2.nii.gz", size, spacing, origin, direction)
        writer(pdir / "tumour.nii.gz", size, spacing, origin, direction, mask=True)
        write_sitk(pdir / "parotid.nii.gz", t1_size, SPACING, t1_origin, t1_dir, mask=True)
        files = find_patient_files(pdir, name, series=("T1", "T2"))
        studies[name] = build_study(files)
    return studies


@pytest.mark.parametrize("grid", list(OTHER_GRIDS))
def test_series_and_mask_land_at_the_same_physical_place(blob_study, grid):
    study = blob_study[grid]
    expected = expected_index(study)
    # the reference grid is axial LPS: x towards Left, y Posterior, z Superior
    np.testing.assert_allclose(study.direction, np.eye(3), atol=1e-6)
    for role in ("T1", "T2"):
        np.testing.assert_allclose(weighted_centroid(study.series[role]), expected, atol=0.5,
                                   err_msg=f"{role} on grid {grid}")
    tumour_centroid = np.argwhere(study.tumour > 0).mean(0)
    np.testing.assert_allclose(tumour_centroid, expected, atol=0.5, err_msg=f"tumour on grid {grid}")


def test_index_to_lps_round_trips_the_reference_grid(blob_study):
    study = blob_study["nibabel_ras"]
    expected = expected_index(study)
    np.testing.assert_allclose(study.index_to_lps(expected[None])[0], POINT, atol=1e-6)
    z = study.slice_z_mm()
    assert z.shape == (study.shape[0],) and np.all(np.diff(z) > 0)   # slices go towards Superior


def test_reference_grid_only_permutes_and_flips():
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    image = to_image(array, direction=np.diag([-1.0, -1.0, 1.0]))
    ref = reference_grid(image)
    np.testing.assert_allclose(np.array(ref.GetDirection()).reshape(3, 3), np.eye(3))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ref), array[:, ::-1, ::-1])
    # the same physical point holds the same value
    p = image.TransformIndexToPhysicalPoint((1, 2, 3))
    assert ref[ref.TransformPhysicalPointToIndex(p)] == image[1, 2, 3]


def test_coverage_fraction():
    ref = to_image(np.zeros((12, 40, 40), np.float32))
    half = to_image(np.zeros((12, 40, 20), np.float32))      # the right half of the slab (low x)
    assert coverage(half, ref) == pytest.approx(0.5)
    far = to_image(np.zeros((12, 40, 40), np.float32), origin=(1000.0, 1000.0, 1000.0))
    assert coverage(far, ref) == 0.0


def test_geometry_line_names_spacing_origin_and_direction():
    line = geometry_line("T2", to_image(np.zeros((12, 40, 40), np.float32)))
    assert line.startswith("T2: size (40, 40, 12)") and "spacing (2, 2, 3)" in line
    assert "origin (-39.0, -39.0, -16.5)" in line and "\n" not in line


def test_masks_are_nearest_neighbour_and_series_linear(tmp_path):
    arrays = patient_arrays(gland_labels=True)     # values 1 and 2 must survive as they are
    d = write_patient(tmp_path / "P", arrays=arrays)
    # T2 on a half-voxel shifted grid: linear interpolation gives in-between values
    t2 = sitk.ReadImage(str(d / "T2.nii.gz"))
    t2.SetOrigin(tuple(np.asarray(ORIGIN) + np.array([1.0, 0.0, 0.0])))
    sitk.WriteImage(t2, str(d / "T2.nii.gz"))
    study = build_study(find_patient_files(d, "P"))
    assert set(np.unique(study.gland)) == {0, 1, 2}
    assert study.gland.dtype == np.uint8 and study.tumour.dtype == np.uint8
    assert not np.isin(np.unique(study.series["T2"]), np.unique(arrays["T2"])).all()


def test_missing_series_is_skipped_when_not_required(tmp_path):
    d = write_patient(tmp_path / "P", omit=("CE-T1",))
    study = build_study(find_patient_files(d, "P", series=("T1", "T2")))
    assert set(study.series) == {"T1", "T2"}


@pytest.mark.parametrize("role_file,what", [("T2.nii.gz", "T2 does not overlap"),
                                            ("CE-T1.nii.gz", "CE-T1 does not overlap"),
                                            ("parotid.nii.gz", "gland mask does not overlap"),
                                            ("tumour.nii.gz", "tumour mask does not overlap")])
def test_not_overlapping_the_t1_grid_names_patient_and_file(tmp_path, role_file, what):
    d = write_patient(tmp_path / "P007")
    image = sitk.ReadImage(str(d / role_file))
    image.SetOrigin(tuple(o + 1000.0 for o in image.GetOrigin()))
    sitk.WriteImage(image, str(d / role_file))
    with pytest.raises(InputError) as exc:
        build_study(find_patient_files(d, "P007"))
    text = str(exc.value)
    assert text.startswith(f"patient P007: file {d / role_file}:") and what in text
    assert "->" in text and "\n" not in text


def test_empty_gland_mask_is_an_error(tmp_path):
    arrays = patient_arrays()
    arrays["gland"][:] = 0
    d = write_patient(tmp_path / "P008", arrays=arrays)
    with pytest.raises(InputError, match=r"patient P008: file .*parotid\.nii\.gz: gland mask is empty"):
        build_study(find_patient_files(d, "P008"))
