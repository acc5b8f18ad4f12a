"""SYNTHETIC phantom cohort: the documented layout, marked synthetic, preparable, class looks differ."""

from __future__ import annotations

import numpy as np
import pytest

from mrparotid.data.cache import prepare_cohort
from mrparotid.data.preprocess import prepare_patient
from mrparotid.config import load_config
from mrparotid.constants import CLASSES, DIAGNOSES
from mrparotid.io.files import find_patient_files, read_image
from mrparotid.io.manifest import read_manifest
from mrparotid.data.phantom import SYNTHETIC_NOTE, centred_grid, draw_spec, render


def test_layout_and_synthetic_marks(phantom_cohort):
    root = phantom_cohort.parent
    assert phantom_cohort.name == "manifest.csv"
    assert (root / "SYNTHETIC.txt").read_text(encoding="utf-8").strip() == SYNTHETIC_NOTE
    assert phantom_cohort.read_text(encoding="utf-8").splitlines()[0] == f"# {SYNTHETIC_NOTE}"
    manifest = read_manifest(phantom_cohort)
    assert manifest.synthetic
    assert [c.patient_id for c in manifest.cases] == ["SYN001", "SYN002", "SYN003"]
    assert [c.diagnosis for c in manifest.cases] == list(DIAGNOSES)       # diagnoses cycle
    assert all(c.patient_dir == root / "patients" / c.patient_id for c in manifest.cases)
    for case in manifest.cases:
        files = find_patient_files(case.patient_dir, case.patient_id, require_tumour=True)
        assert set(files.paths) == {"T1", "CE-T1", "T2", "DWI", "ADC", "gland", "tumour"}  # centre A
        assert (case.patient_dir / "DWI.bval").read_text(encoding="utf-8").split() == ["0", "1000"]
    first = find_patient_files(root / "patients" / "SYN001", require_tumour=True)
    assert first.paths["CE-T1"].is_dir() and len(list(first.paths["CE-T1"].glob("*.dcm"))) == 20
    names = {p.name for c in manifest.cases for p in c.patient_dir.iterdir()}
    assert len({n.split(".")[0].upper() for n in names}) > 5                # aliases vary


def test_series_lie_on_different_grids(phantom_cohort):
    files = find_patient_files(phantom_cohort.parent / "patients" / "SYN002")
    images = {role: read_image(files.paths[role]) for role in ("T1", "CE-T1", "T2")}
    spacings = {role: tuple(np.round(im.GetSpacing(), 3)) for role, im in images.items()}
    assert len(set(spacings.values())) == 3
    origins = {tuple(np.round(im.GetOrigin(), 2)) for im in images.values()}
    assert len(origins) == 3
    t2_direction = np.array(images["T2"].GetDirection()).reshape(3, 3)
    assert not np.allclose(t2_direction, np.eye(3))                       # T2 is tilted
    tilt = np.degrees(np.arccos(np.clip(t2_direction[2, 2], -1, 1)))
    assert 0 < tilt <= 5.0


def test_every_phantom_patient_prepares(phantom_cohort, tmp_path):
    manifest = read_manifest(phantom_cohort)
    cfg = load_config(None, ["--data.image_size", "32", "--data.cache_dir", str(tmp_path)])
    prepared = prepare_cohort(manifest, cfg, progress=False)
    assert not prepared.bad and prepared.built == 3
    for case in manifest.cases:
        slices = prepare_patient(case, cfg)
        k = CLASSES.index(case.diagnosis)
        assert (slices.labels == k).sum() >= 3, case.patient_id
        assert set(slices.labels.tolist()) <= {0, k}
        tumour_sides = set(slices.sides[slices.labels == k].tolist())
        assert len(tumour_sides) >= 1


def test_same_seed_same_patients():
    a = draw_spec(np.random.default_rng(5), "warthin")
    b = draw_spec(np.random.default_rng(5), "warthin")
    assert a == b
    assert draw_spec(np.random.default_rng(6), "warthin") != a


def test_grid_positions_agree_with_simpleitk():
    grid = centred_grid((7, 5, 4), (1.1, 0.9, 3.0), shift=(3.0, -2.0, 1.0), tilt_deg=4.0)
    image = grid.empty()
    pts = grid.lps()
    assert pts.shape == (4, 5, 7, 3)
    for ijk in [(0, 0, 0), (6, 4, 3), (2, 3, 1)]:
        np.testing.assert_allclose(pts[ijk[2], ijk[1], ijk[0]], image.TransformIndexToPhysicalPoint(ijk),
                                   atol=1e-4)
    np.testing.assert_allclose(pts.reshape(-1, 3).mean(0), (3.0, -2.0, 1.0), atol=1e-4)


def tumour_contrast(diagnosis: str, series: int, n: int = 6, seed: int = 1) -> float:
    """Mean over ``n`` phantoms of (mean tumour / mean gland intensity) on one series: the
    per-patient scanner gain cancels."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n):
        spec = draw_spec(rng, diagnosis)
        grid = centred_grid((20, 20, 5), (2.0, 2.0, 3.0), shift=spec.tumour_centre)
        labels = render(spec, grid, None)
        values = render(spec, grid, series)
        tumour, gland = labels == 3, (labels == 1) | (labels == 2)
        ratios.append(values[tumour].mean() / values[gland].mean())
    return float(np.mean(ratios))


def test_class_looks_differ_as_documented():
    # pleomorphic adenoma: very bright on T2 (brighter than malignant and Warthin)
    pa_t2 = tumour_contrast("pleomorphic_adenoma", 2)
    assert pa_t2 > tumour_contrast("malignant", 2) + 0.3
    assert pa_t2 > tumour_contrast("warthin", 2) + 0.3
    # Warthin: strong enhancement (CE-T1), more than the pleomorphic adenoma's moderate one
    assert tumour_contrast("warthin", 1) > tumour_contrast("pleomorphic_adenoma", 1) + 0.1


def test_phantom_labels_mark_sides_and_tumour():
    spec = draw_spec(np.random.default_rng(3), "malignant")
    grid = centred_grid((75, 85, 10), (2.0, 2.0, 4.0))
    labels = render(spec, grid, None)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    x = grid.lps()[..., 0]
    assert x[labels == 2].mean() > 0 > x[labels == 1].mean()             # 2 = left = LPS +x
    side = 1 if spec.tumour_side == "L" else -1
    assert side * x[labels == 3].mean() > 0


@pytest.mark.parametrize("series", [0, 1, 2])
def test_rendered_series_are_finite_and_non_negative(series):
    spec = draw_spec(np.random.default_rng(4), "warthin")
    values = render(spec, centred_grid((20, 20, 4), (4.0, 4.0, 6.0)), series)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() > 0
