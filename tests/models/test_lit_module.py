"""The LightningModule without training: loss, class weights, metrics, optimiser, schedule and
checkpoint metadata of a tiny model with fixed weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mrparotid.config import load_config
from mrparotid.models.lit_module import SliceClassifier, class_weights_from, lr_factor


def module(**kw) -> SliceClassifier:
    cfg = load_config(None, ["--model.name", "tiny_resnet"])
    torch.manual_seed(0)
    return SliceClassifier(cfg["model"], cfg["optim"], ["T1", "CE-T1", "T2", "mask"], 10, **kw)


def batch(n: int = 8):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 4, 32, 32, generator=gen), torch.arange(n) % 4


def test_model_step_is_cross_entropy_of_the_wrapped_model():
    m = module().eval()
    x, y = batch()
    loss, logits, y_out = m.model_step((x, y))
    torch.testing.assert_close(logits, m.model(x))
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    assert torch.equal(y_out, y)


def test_class_weights_weigh_the_loss():
    weights = [1.0, 5.0, 1.0, 1.0]
    m = module(class_weights=weights).eval()
    x, y = batch()
    loss, logits, _ = m.model_step((x, y))
    torch.testing.assert_close(loss, F.cross_entropy(logits, y, weight=torch.tensor(weights)))
    assert class_weights_from("balanced", [10, 5, 5, 20]) == pytest.approx([1.0, 2.0, 2.0, 0.5])


def test_validation_accuracy_is_the_share_of_correct_slices():
    m = module().eval()
    x, y = batch(16)
    with torch.no_grad():
        m.validation_step((x, y), 0)
        pred = m.model(x).argmax(1)
    acc = m.val_metrics.compute()["val/acc"]
    assert float(acc) == pytest.approx(float((pred == y).float().mean()))


def test_training_step_gives_a_loss_with_gradients():
    m = module().train()
    loss = m.training_step(batch(), 0)
    loss.backward()
    assert loss.ndim == 0 and m.model.fc.weight.grad is not None


def test_optimiser_and_schedule_follow_the_config():
    m = module()
    conf = m.configure_optimizers()
    opt = conf["optimizer"]
    assert isinstance(conf["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.LambdaLR)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["lr"] == pytest.approx(3e-4 * lr_factor(0, m.hparams.optim, 10))
    assert lr_factor(9, {"scheduler": "cosine", "warmup_epochs": 1}, 10) < 0.05


def test_checkpoint_carries_the_run_metadata():
    m = module(meta={"format": "mrparotid-checkpoint-1", "channels": ["T1"]})
    ckpt: dict = {}
    m.on_save_checkpoint(ckpt)
    assert ckpt["mrparotid"]["channels"] == ["T1"]
