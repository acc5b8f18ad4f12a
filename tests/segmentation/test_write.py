"""Automatic masks are written on the original T1 geometry and overlay the input exactly."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from patients import write_patient

from mrparotid.data.preprocess import load_study
from mrparotid.io.files import read_image
from mrparotid.io.manifest import PatientCase
from mrparotid.segmentation.infer import AutoMasks
from mrparotid.segmentation.postprocess import SideFinding, postprocess
from mrparotid.segmentation.write import GLAND_FILE, OVERLAY_FILE, TUMOUR_FILE, write_auto_masks

# (x, y, z) directions of the written series: LPS-aligned, RAS-like (x and y flipped, as NIfTI
# files often are), and axes permuted (a sagittal-like acquisition)
DIRECTIONS = {
    "lps": (1, 0, 0, 0, 1, 0, 0, 0, 1),
    "ras": (-1, 0, 0, 0, -1, 0, 0, 0, 1),
    "permuted": (0, 0, 1, 1, 0, 0, 0, 1, 0),
}


@pytest.mark.parametrize("name", DIRECTIONS)
def test_masks_overlay_the_t1_file(name, tmp_path):
    direction = DIRECTIONS[name]
    folder = write_patient(tmp_path / "P1", direction=direction, gland_labels=True)
    study = load_study(PatientCase("P1", "warthin", folder), mode="train")
    assert study.direction[0, 0] > 0.99   # the reference grid is LPS-aligned, whatever the file
    auto = AutoMasks("P1", study.gland, study.tumour.astype(np.uint8),
                     {"L": SideFinding("L", 1.0, 0.5)}, study.spacing, study.origin, study.direction)
    t1 = read_image(folder / "T1.nii.gz")
    paths = write_auto_masks(auto, t1, tmp_path / "out", study.series["T1"])
    assert paths["overlay"].name == OVERLAY_FILE and paths["overlay"].stat().st_size > 1000
    for written, given in ((GLAND_FILE, "parotid.nii.gz"), (TUMOUR_FILE, "tumour.nii.gz")):
        out = sitk.ReadImage(str(tmp_path / "out" / written))
        ref = sitk.ReadImage(str(folder / given))
        assert out.GetSize() == t1.GetSize()
        assert np.allclose(out.GetSpacing(), t1.GetSpacing())
        assert np.allclose(out.GetOrigin(), t1.GetOrigin(), atol=1e-4)
        assert np.allclose(out.GetDirection(), t1.GetDirection(), atol=1e-6)
        assert out.GetPixelID() == sitk.sitkUInt8
        assert np.array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(ref).astype(np.uint8))
    assert not list((tmp_path / "out").glob(".*tmp*"))   # atomic writes leave no temporaries


def test_gland_of_unknown_side_is_written_as_label_3(tmp_path):
    """A lone automatic gland on the patient's midline gets label 3 ("gland, side unknown") in
    parotid_auto.nii.gz, with a warning; one well off the midline gets its side's label."""
    from heads import head_study

    for gland_x, want in ((-58.0, {0, 3}), (-15.0, {0, 2})):
        study = head_study(fov_x=(-160, 160), head_x=-60, glands=[gland_x], tumour_in=0)
        clean = postprocess(study.gland, study.tumour, study.spacing, study=study,
                            min_component_mm3=0.0, tumour_max_distance_mm=3.0)
        auto = AutoMasks("P1", clean.gland, clean.tumour, clean.sides, study.spacing, study.origin,
                         study.direction)
        t1 = sitk.GetImageFromArray(study.series["T1"])
        t1.SetSpacing(study.spacing)
        t1.SetOrigin(study.origin)
        out = tmp_path / f"x{gland_x}"
        write_auto_masks(auto, t1, out, study.series["T1"])
        written = sitk.GetArrayFromImage(sitk.ReadImage(str(out / GLAND_FILE)))
        assert set(np.unique(written)) == want
        assert any(w.startswith("side unknown") for w in clean.warnings) == (3 in want)
