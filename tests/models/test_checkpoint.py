"""Loading checkpoints: anything that is not an mrparotid checkpoint is one clear line."""

from __future__ import annotations

import pytest
import torch

from mrparotid.errors import CheckpointError
from mrparotid.models.checkpoint import load_checkpoint


@pytest.mark.parametrize("content", [b"epoch,loss\n1,0.5\n", b"", b"not a checkpoint at all"])
def test_a_text_file_is_not_an_mrparotid_checkpoint(tmp_path, content):
    path = tmp_path / "metrics.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    text = str(exc.value)
    assert "not an mrparotid checkpoint" in text and "weights_only" not in text and "\n" not in text
    assert "checkpoints/best.ckpt" in text and str(path) in text


def test_a_pickle_with_objects_and_a_foreign_checkpoint(tmp_path):
    unsafe, foreign = tmp_path / "unsafe.ckpt", tmp_path / "foreign.ckpt"
    torch.save({"a": object()}, unsafe)
    torch.save({"state_dict": {}}, foreign)
    for path in (unsafe, foreign):
        with pytest.raises(CheckpointError, match="not an mrparotid checkpoint"):
            load_checkpoint(path)
