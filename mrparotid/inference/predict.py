"""Model + uint8 crops → slice probabilities (float64, softmax over the four classes).

Nothing here imports Lightning, so ``mrparotid diagnose`` starts fast.
"""

from __future__ import annotations

import numpy as np
import torch

from mrparotid.constants import CLASSES


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
