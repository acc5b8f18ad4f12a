"""segment_study with stand-in networks: masks on the T1 grid, sides, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from patients import GLAND_SLICES, GLAND_X, GLAND_Y, SHAPE, make_study

from mrparotid.errors import InputError, MissingSeriesError
from mrparotid.segmentation.config import load_segment_config
from mrparotid.segmentation.infer import LoadedSegmenter, segment_study, segmenter_meta


class _Logits(torch.nn.Module):
    """Gland logits +6 on the test study's glands (``sides``), tumour on slices 4-6 of the left
    gland; -6 elsewhere. The study's grid (2 mm in-plane) needs no resampling at 2 mm."""

    def __init__(self, sides=("L", "R"), tumour=True):
        super().__init__()
        self.sides, self.tumour = sides, tumour

    def forward(self, x):
        out = torch.full((x.shape[0], 2, *x.shape[2:]), -6.0)
        for side in self.sides:
            xs = GLAND_X[side]
            out[GLAND_SLICES, 0, GLAND_Y.start:GLAND_Y.stop, xs.start:xs.stop] = 6.0
        if self.tumour:
            out[4:7, 1, 16:22, 28:32] = 6.0
        return out


def _loaded(model, **overrides) -> LoadedSegmenter:
    """At 2 mm, the test study's own in-plane spacing, so the stand-in's pixels are the grid's."""
    cfg = load_segment_config(None, {**overrides, "data": {"spacing_mm": 2.0, **overrides.get("data", {})}})
    return LoadedSegmenter(model, segmenter_meta(cfg, False), Path("seg.ckpt"))


def test_masks_sides_and_volumes():
    study = make_study()
    auto = segment_study(_loaded(_Logits()), study)
    truth = study.gland > 0
    assert auto.gland.shape == SHAPE and auto.gland.dtype == np.uint8
    assert np.array_equal(auto.gland > 0, truth)
    assert set(np.unique(auto.gland[:, :, GLAND_X["L"]])) >= {2} and 1 not in auto.gland[:, :, GLAND_X["L"]]
    assert set(auto.sides) == {"L", "R"} and auto.sides["L"].tumour_found and not auto.sides["R"].tumour_found
    assert auto.tumour.sum() == 3 * 6 * 4 and auto.tumour_found
    assert auto.spacing == study.spacing and np.array_equal(auto.direction, study.direction)
    replaced = auto.apply(study, gland=False)
    assert replaced.gland is study.gland and replaced.tumour is auto.tumour


def test_one_side_only():
    auto = segment_study(_loaded(_Logits(sides=("R",), tumour=False)), make_study())
    assert set(auto.sides) == {"R"} and not auto.tumour_found
    assert not auto.tumour.any()          # a tumour far from every gland would be dropped too


def test_no_gland_is_an_error_unless_allowed():
    study = make_study()
    with pytest.raises(InputError, match="found no parotid gland") as err:
        segment_study(_loaded(_Logits(sides=())), study)
    assert "parotid.nii.gz" in str(err.value) and study.patient_id in str(err.value)
    auto = segment_study(_loaded(_Logits(sides=())), study, require_gland=False)
    assert auto.sides == {} and not auto.gland.any() and not auto.tumour.any()


def test_a_missing_series_is_named():
    arrays = make_study()
    study = type(arrays)(arrays.patient_id, {k: v for k, v in arrays.series.items() if k != "CE-T1"},
                         arrays.gland, arrays.tumour, arrays.spacing, arrays.origin, arrays.direction)
    with pytest.raises(MissingSeriesError) as err:
        segment_study(_loaded(_Logits()), study)
    assert err.value.role == "CE-T1"
    auto = segment_study(_loaded(_Logits(), data={"series": ["T1", "T2"]}), study)
    assert set(auto.sides) == {"L", "R"}
