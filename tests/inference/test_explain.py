"""Grad-CAM heat maps: crop pixel → T1-grid voxel → LPS mm, the tumour share, the Adebayo et al.
(2018) model-randomisation check, and a model with nothing to hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from checkpoints import tiny_checkpoint
from patients import make_study, patient_arrays, write_patient
from mrparotid.cli.main import main
from mrparotid.data.crops import PLANES, extract_crops
from mrparotid.data.preprocess import slices_of_study
from mrparotid.errors import CheckpointError
from mrparotid.inference.diagnose import build_report, predict_patient
from mrparotid.inference.explain import (average_ranks, cam_summaries, crop_to_volume, explain_patient,
                                         grad_cam, rank_correlation, randomised_copy, sanity_check,
                                         side_boxes, target_layer)
from mrparotid.io.manifest import PatientCase
from mrparotid.models.checkpoint import LoadedModel
from mrparotid.models.resnet import tiny_resnet


@pytest.mark.parametrize("box,size", [((-5, 26, 3, 34), 64), ((10, 55, -7, 38), 32), ((2, 9, 4, 11), 7)])
def test_crop_pixels_map_back_onto_the_voxels_they_were_cut_from(box, size):
    rng = np.random.default_rng(0)
    volume = rng.integers(1, 200, (3, 48, 40)).astype(np.float32)     # every voxel its own label
    crop = extract_crops(volume, np.array([1]), box, size, is_mask=True)[0]
    rows, cols = np.indices((size, size))
    ys, xs = crop_to_volume(rows.ravel(), cols.ravel(), box, size)
    yi, xi = np.rint(ys).astype(int), np.rint(xs).astype(int)
    inside = (yi >= 0) & (yi < 48) & (xi >= 0) & (xi < 40)
    assert inside.any() and (~inside).any() == (box[0] < 0 or box[2] < 0 or box[1] > 48 or box[3] > 40)
    np.testing.assert_array_equal(crop.ravel()[inside], volume[1, yi[inside], xi[inside]])
    np.testing.assert_array_equal(crop.ravel()[~inside], 0)                 # outside: mask 0


# anisotropic voxels; x spacing >= 1.2 mm keeps the two glands > 20 mm apart, as in a real head,
# so they are two sides (closer glands are sided from the head's midline, issue 22)
@pytest.mark.parametrize("spacing", [(2.0, 2.0, 3.0), (1.2, 1.3, 4.0)])
def test_peak_in_mm_and_tumour_share(spacing):
    study = make_study(spacing=spacing, tumour_side="L")
    cfg = {"image_size": 48, "margin_mm": 6.0, "percentiles": (1.0, 99.0)}
    slices = slices_of_study(study, "warthin", cfg, mode="all")
    box = side_boxes(study, 6.0)["L"]
    k, y, x = 5, 18, 30                                    # a tumour voxel of the left side
    i = int(np.flatnonzero((slices.sides == "L") & (slices.slice_index == k))[0])
    rows, cols = np.indices((48, 48))
    ys, xs = crop_to_volume(rows.ravel(), cols.ravel(), box, 48)
    pix = int(np.argmin((ys - y) ** 2 + (xs - x) ** 2))
    cams = np.zeros((len(slices), 48, 48), np.float32)
    cams[i].flat[pix] = 1.0
    tumour = slices.crops[i, PLANES.index("tumour")] > 0
    outside = np.flatnonzero(~tumour.ravel())[0]
    j = (i + 1) % len(slices)
    cams[j].flat[outside] = 2.0
    got = cam_summaries(cams, slices, study, 6.0, tumour_known=True)
    assert got[i]["peak_voxel"] == [k, y, x]
    want = study.index_to_lps(np.array([[k, ys[pix], xs[pix]]]))[0]
    np.testing.assert_allclose(got[i]["peak_mm"], want, atol=0.06)
    assert got[i]["tumour_share"] == 1.0 and got[j]["tumour_share"] == 0.0
    empty = [s for n, s in enumerate(got) if n not in (i, j)][0]
    assert empty == {"peak_voxel": None, "peak_mm": None, "tumour_share": None, "peak": 0.0}
    assert cam_summaries(cams, slices, study, 6.0, tumour_known=False)[i]["tumour_share"] is None


def test_grad_cam_maps_are_nonnegative_crop_sized_and_empty_for_no_slices():
    torch.manual_seed(0)
    model = tiny_resnet(in_chans=4).eval()
    x = np.random.default_rng(1).integers(0, 255, (5, 4, 40, 40), dtype=np.uint8)
    maps = grad_cam(model, x, np.array([0, 1, 2, 3, 3]))
    assert maps.shape == (5, 40, 40) and maps.dtype == np.float32 and (maps >= 0).all()
    assert grad_cam(model, x[:0], np.zeros(0, int)).shape == (0, 40, 40)
    assert target_layer(model)[0] == "layer2"


def test_weights_made_under_inference_mode_still_explain():
    model = tiny_resnet(in_chans=4).eval()
    with torch.inference_mode():      # what predict_probs does to a model (channels_last)
        model = model.to(memory_format=torch.channels_last)
    x = np.random.default_rng(2).integers(0, 255, (2, 4, 32, 32), dtype=np.uint8)
    assert grad_cam(model, x, np.array([1, 3])).shape == (2, 32, 32)


def test_average_ranks_and_rank_correlation():
    np.testing.assert_array_equal(average_ranks(np.array([5.0, 5.0, 1.0])), [1.5, 1.5, 0.0])
    a = np.random.default_rng(0).random((3, 8, 8))
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(a, np.zeros_like(a)) == 0.0


def _trained_model_and_input():
    """A tiny model trained for a few seconds to tell tumour slices from the rest."""
    study = make_study(tumour_side="L", bilateral=True)
    slices = slices_of_study(study, "malignant", {"image_size": 32, "margin_mm": 6.0,
                                                  "percentiles": (1.0, 99.0)}, mode="all")
    x = np.ascontiguousarray(slices.crops[:, :4])
    y = torch.as_tensor((slices.crops[:, PLANES.index("tumour")].reshape(len(x), -1).any(1)) * 3)
    torch.manual_seed(0)
    model = tiny_resnet(in_chans=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt = torch.as_tensor(x).float() / 255
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x, model(xt).argmax(1).detach().numpy()


def test_randomised_weights_change_the_maps():
    """Adebayo et al. 2018: a map that survives randomising the weights explains nothing."""
    model, x, pred = _trained_model_and_input()
    result = sanity_check(model, x, pred, seed=0)
    assert result["slices"] == len(x)
    assert result["self"] == pytest.approx(1.0)
    assert result["randomised"] < 0.5, result
    clone = randomised_copy(model, seed=1)
    assert not torch.equal(clone.layer2[0].conv1.weight, model.layer2[0].conv1.weight)


def test_no_convolution_to_hook_is_a_checkpoint_error(tmp_path):
    flat = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 4))
    with pytest.raises(CheckpointError, match="no convolutional stage") as err:
        grad_cam(flat, np.zeros((1, 4, 8, 8), np.uint8), np.array([0]), path="x.ckpt")
    assert err.value.path == "x.ckpt" and "--explain" in err.value.fix


def test_explain_without_a_conv_stage_exits_2_before_reading_patients(tmp_path, monkeypatch, capfd):
    from mrparotid.models import checkpoint

    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    flat = LoadedModel(nn.Sequential(nn.Flatten(), nn.Linear(4, 4)), loaded.meta, loaded.path)
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda path: flat)
    code = main(["diagnose", str(tmp_path / "not-read"), "--checkpoint", str(tmp_path / "m.ckpt"),
                 "--explain", "-q"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no convolutional stage" in err[0] and "m.ckpt" in err[0]


def test_explain_patient_puts_a_cam_on_every_row(tmp_path):
    folder = write_patient(tmp_path / "P1", arrays=patient_arrays(tumour_side="R"))
    _, loaded = tiny_checkpoint(tmp_path / "m.ckpt")
    evidence = predict_patient(PatientCase("P1", "warthin", folder), loaded)
    report = build_report(evidence, loaded)
    cams = explain_patient(evidence, loaded, report)
    assert cams.shape == (len(evidence.slices), 32, 32)
    assert report["explain"]["layer"] == "layer2"
    for row in report["slices"]:
        cam = row["cam"]
        assert set(cam) == {"peak_voxel", "peak_mm", "tumour_share", "peak"}
        if cam["peak_voxel"] is not None:
            assert cam["peak_voxel"][0] == row["index"] and len(cam["peak_mm"]) == 3
            assert 0.0 <= cam["tumour_share"] <= 1.0
    assert Path(loaded.path).is_file()
