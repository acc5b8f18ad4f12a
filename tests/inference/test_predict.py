"""``predict_probs`` without training: a tiny model with fixed weights on crops of a 2-patient
hand-made cohort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patients import write_cohort
from mrparotid.config import load_config
from mrparotid.data.crops import select_channels
from mrparotid.data.preprocess import prepare_patient
from mrparotid.inference.predict import predict_probs
from mrparotid.io.manifest import read_manifest
from mrparotid.models.factory import build_classifier


@pytest.fixture(scope="module")
def crops_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    manifest = write_cohort(root, [("P001", "warthin", {}),
                                   ("P002", "malignant", {"tumour_side": "R"})])
    cfg = load_config(None, ["--model.name", "tiny_resnet", "--data.image_size", "32"])
    x = np.concatenate([select_channels(prepare_patient(case, cfg, mode="all").crops,
                                        cfg["data"]["channels"], "none", tumour_known=True)
                        for case in read_manifest(manifest).cases])
    torch.manual_seed(0)
    model = build_classifier(cfg["model"], x.shape[1], pretrained=False)
    return x, model


def reference(model, x_uint8: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.as_tensor(x_uint8).float() / 255).softmax(1).double().numpy()


def test_probabilities_are_the_models_softmax_on_crops_scaled_to_one(crops_and_model):
    x, model = crops_and_model
    probs = predict_probs(model, x)
    assert x.dtype == np.uint8 and probs.shape == (len(x), 4) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    # a reduced-precision inference path (bf16 where the CPU has it) stays within 0.03
    np.testing.assert_allclose(probs, reference(model, x), atol=0.03)
    assert not np.allclose(probs, reference(model, x // 2), atol=1e-3)   # the input reaches it


def test_batch_size_and_batch_neighbours_do_not_change_a_slice(crops_and_model):
    x, model = crops_and_model
    whole = predict_probs(model, x, batch_size=64)
    np.testing.assert_allclose(predict_probs(model, x, batch_size=3), whole, atol=1e-3)
    np.testing.assert_allclose(predict_probs(model, x[5:6]), whole[5:6], atol=1e-3)


def test_inference_leaves_batchnorm_statistics_alone(crops_and_model):
    x, model = crops_and_model
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    predict_probs(model, x)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_no_slices_give_an_empty_table(crops_and_model):
    x, model = crops_and_model
    assert predict_probs(model, x[:0]).shape == (0, 4)


def test_the_model_can_still_take_gradients_after_prediction(crops_and_model):
    """Re-laying the weights out inside inference mode made them inference tensors, so a heat
    map (which needs gradients) failed on a model that had just predicted."""
    x, model = crops_and_model
    predict_probs(model, x[:2])
    out = model(torch.as_tensor(x[:2]).float().div(255).requires_grad_())
    out.sum().backward()
    assert model.fc.weight.grad is not None
