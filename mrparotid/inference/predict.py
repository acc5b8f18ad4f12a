"""Model + crops → slice probabilities; checkpoints in and out (``weights_only=True``).

Nothing here imports Lightning, so ``mrparotid diagnose`` starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mrparotid.constants import CLASSES
from mrparotid.errors import CheckpointError
from mrparotid.models.resnet import ResNet, build_model

FORMAT = "mrparotid-checkpoint-1"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference plus what it was trained with (``meta``)."""

    model: ResNet
    meta: dict
    path: Path

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.meta["channels"])


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Load an mrparotid checkpoint (Lightning ``.ckpt``) safely with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        File missing, unreadable, or not written by ``mrparotid fit``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path,
                              fix="pass --checkpoint RUN_DIR/checkpoints/best.ckpt from 'mrparotid fit'")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign/corrupt files
        reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load the checkpoint safely ({reason})", path=path,
                              fix="use a checkpoint written by 'mrparotid fit'") from None
    meta = ckpt.get("mrparotid") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("not an mrparotid checkpoint", path=path,
                              fix="use RUN_DIR/checkpoints/best.ckpt written by 'mrparotid fit'")
    m = meta["model"]
    kw = {k: v for k, v in m.items() if k not in ("name", "init")} if m["name"] == "resnet" \
        else {"drop_rate": m.get("drop_rate", 0.0)}
    model = build_model(m["name"], in_chans=len(meta["channels"]), num_classes=len(CLASSES), **kw)
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit the model ({str(exc).splitlines()[0][:100]})",
                              path=path, fix="the checkpoint is damaged; re-train") from None
    model.eval()
    return LoadedModel(model, meta, path)


def default_device() -> str:
    """``"cuda"`` when a GPU is usable, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@torch.inference_mode()
def predict_probs(model: torch.nn.Module, x_uint8: np.ndarray | torch.Tensor, *, batch_size: int = 64,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Softmax class probabilities, float64 (n, 4), for uint8 crops (n, C, H, W) with 255 = 1.0.

    The model is moved to ``device``; batches travel as uint8 and become float there.
    """
    x = torch.as_tensor(x_uint8)
    model = model.to(device).eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device).float().div_(255.0)
        out.append(model(xb).softmax(1).double().cpu())
    if not out:
        return np.zeros((0, len(CLASSES)))
    return torch.cat(out).numpy()
