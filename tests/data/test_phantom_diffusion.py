"""The phantom's scanner profiles and diffusion rendering, one patient at a time: the same anatomy
under three centres differs in noise, contrast and slice thickness; DWI noise is Rician; the ADC
map is mono-exponential and in the centre's unit; draws do not depend on the centre."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_erosion

from mrparotid.data.diffusion import ADC_UNITS, adc_unit
from mrparotid.data.phantom import make_cohort, series_grids
from mrparotid.data.phantom_anatomy import Anatomy, draw_spec, render
from mrparotid.data.phantom_diffusion import (ADC_RANGES, block_mean, draw_diffusion, epi_grid, fine_grid,
                                              render_diffusion, scanner_adc)
from mrparotid.data.phantom_profiles import (CENTRE_A, CENTRE_B, CENTRE_C, PROFILES, apply_profile,
                                             bias_field, draw_bias, profile_of)
from mrparotid.io.manifest import read_manifest

#: Rayleigh (Rician at zero signal) mean / standard deviation: sqrt(pi/2) / sqrt(2 - pi/2).
RAYLEIGH_MEAN_OVER_SD = float(np.sqrt(np.pi / 2) / np.sqrt(2 - np.pi / 2))


def _patient(diagnosis: str = "pleomorphic_adenoma", seed: int = 2):
    spec = draw_spec(np.random.default_rng(seed), diagnosis)
    rng = np.random.default_rng([spec.seed, 23])
    return spec, draw_diffusion(rng), draw_bias(rng)


def _diffusion(profile, diagnosis: str = "pleomorphic_adenoma"):
    spec, draws, bias = _patient(diagnosis)
    series = render_diffusion(spec, profile, draws, 80.0, bias, np.random.default_rng(1))
    return spec, draws, series


def test_centres_change_every_three_patients_not_with_the_diagnosis():
    assert [profile_of(i).name[-1] for i in range(10)] == list("aaabbbccca")
    assert [profile_of(i, centres=1).name for i in range(6)] == ["centre_a"] * 6
    with pytest.raises(ValueError):
        profile_of(0, centres=4)


def test_cohort_options_centres_and_no_diffusion(tmp_path):
    with pytest.raises(ValueError):
        make_cohort(tmp_path / "bad", 1, centres=0, progress=False)
    assert not (tmp_path / "bad").exists()                       # refused before writing anything
    manifest = make_cohort(tmp_path / "plain", 4, centres=1, diffusion=False, progress=False)
    assert {c.center for c in read_manifest(manifest).cases} == {"centre_a"}
    names = {p.name.split(".")[0].upper() for p in (tmp_path / "plain" / "patients").rglob("*")}
    assert not names & {"DWI", "ADC"} and "T1" in names


def test_dwi_noise_is_rician_and_grows_from_centre_a_to_c():
    levels = []
    for profile in PROFILES:
        spec, draws, series = _diffusion(profile)
        b0 = sitk.GetArrayFromImage(series.dwi)[0].astype(np.float64)
        grid = epi_grid(profile, 80.0, draws.shift).moved((0.0, draws.distortion_mm, 0.0))
        air = Anatomy(spec, grid.lps(), np.random.default_rng(spec.seed)).classes() == 0
        air = binary_erosion(air, iterations=2)                 # away from partial volume
        background = b0[air]
        assert background.size > 1000
        assert background.mean() / background.std() == pytest.approx(RAYLEIGH_MEAN_OVER_SD, rel=0.08)
        sigma = background.std() / np.sqrt(2 - np.pi / 2)
        levels.append(sigma / (draws.gain * 1000.0))
        assert levels[-1] == pytest.approx(profile.dwi_noise, rel=0.1)
    assert levels[0] < levels[1] < levels[2]


def test_adc_map_is_mono_exponential_in_the_centres_unit():
    for profile in (CENTRE_A, CENTRE_B):
        _, _, series = _diffusion(profile)
        dwi = sitk.GetArrayFromImage(series.dwi).astype(np.float64)
        stored = sitk.GetArrayFromImage(series.adc)
        assert adc_unit(stored) == profile.adc_unit
        adc = stored * ADC_UNITS[profile.adc_unit]
        tissue = adc > 0
        expected = np.log(dwi[0][tissue] / dwi[1][tissue])         # b = 1000 s/mm² → x 10⁻³ mm²/s
        np.testing.assert_allclose(adc[tissue], np.clip(expected, 0, 5.0), atol=6e-4)
    spec, draws, series = _diffusion(CENTRE_C)
    assert series.adc is None and series.b_values == (0.0, 1000.0)


def test_scanner_adc_recovers_a_known_adc_and_leaves_the_background_empty():
    s0 = np.full((2, 3, 4), 800.0)
    s1000 = s0 * np.exp(-1.7)
    adc = scanner_adc(np.concatenate([s0, np.full((1, 3, 4), 5.0)]),
                      np.concatenate([s1000, np.full((1, 3, 4), 4.0)]), sigma=10.0)
    np.testing.assert_allclose(adc[:2], 1.7)
    assert (adc[2] == 0).all()                                    # b0 below 3 sigma: no ADC


def test_supersampling_averages_each_voxels_sub_voxels():
    grid = epi_grid(CENTRE_A, 80.0, (1.0, -2.0, 0.5))
    fine = fine_grid(grid)
    assert fine.size == tuple(2 * s for s in grid.size)
    coarse_pts = grid.lps()
    np.testing.assert_allclose(block_mean(fine.lps()[..., 0]), coarse_pts[..., 0], atol=1e-3)


def test_draws_do_not_depend_on_the_centre_and_are_in_range():
    _, draws, _ = _patient("warthin")
    for tissue, (lo, hi) in ADC_RANGES.items():
        assert lo <= draws.adc[tissue] <= hi
    assert 1.5 <= abs(draws.distortion_mm) <= 2.5
    spec, _, bias = _patient("warthin")
    a = render_diffusion(spec, CENTRE_B, draws, 80.0, bias, np.random.default_rng(4))
    b = render_diffusion(spec, CENTRE_B, draws, 80.0, bias, np.random.default_rng(4))
    assert sitk.GetArrayFromImage(a.dwi).tobytes() == sitk.GetArrayFromImage(b.dwi).tobytes()


def test_profiles_change_contrast_mildly_and_add_noise():
    spec, _, bias = _patient("malignant")
    grid = series_grids(spec, CENTRE_A)[0]
    t1 = render(spec, grid, 0)
    classes = Anatomy(spec, grid.lps(), np.random.default_rng(spec.seed)).classes()
    muscle, gland = classes == 2, classes == 4
    assert apply_profile(t1, 0, spec.gain[0], CENTRE_A, 1.0, np.random.default_rng(0)) is t1
    ratio_a = np.median(t1[gland]) / np.median(t1[muscle])
    roughness = {}
    for profile in PROFILES:
        field = bias_field(grid.lps(), bias, profile.bias) if profile.bias else 1.0
        seen = apply_profile(t1, 0, spec.gain[0], profile, field, np.random.default_rng(0))
        ratio = np.median(seen[gland]) / np.median(seen[muscle])
        assert abs(ratio / ratio_a - 1) < 0.15, profile.name               # mild
        steps = np.diff(seen, axis=2)[muscle[:, :, 1:] & muscle[:, :, :-1]]
        roughness[profile.name] = np.std(steps) / np.median(seen[muscle])
    assert roughness["centre_a"] < roughness["centre_b"] < roughness["centre_c"]


def test_slice_thickness_differs_and_the_z_extent_stays():
    spec, _, _ = _patient()
    extents = set()
    for profile in PROFILES:
        grids = series_grids(spec, profile)
        assert [g.spacing[2] for g in grids] == list(profile.slice_mm)
        extents.add(round(grids[0].size[2] * grids[0].spacing[2] / 5) * 5)
    assert len({p.slice_mm for p in PROFILES}) == 3 and extents == {80}
