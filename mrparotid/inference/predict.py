"""Model + uint8 crops → slice probabilities (float64, softmax over the four classes).

Nothing here imports Lightning, so ``mrparotid diagnose`` starts fast.
"""

from __future__ import annotations

import numpy as np
import torch

from mrparotid.constants import CLASSES
from mrparotid.data.series_dropout import append_present_flags
from mrparotid.models.precision import channels_last, inference_autocast, model_channels_last


def default_device() -> str:
    """``"cuda"`` when a GPU is usable, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def predict_probs(model: torch.nn.Module, x_uint8: np.ndarray | torch.Tensor, *, batch_size: int = 64,
                  device: str | torch.device = "cpu", precision: str = "auto",
                  present: np.ndarray | None = None, temperature: float = 1.0) -> np.ndarray:
    """Softmax class probabilities, float64 (n, 4), for uint8 crops (n, C, H, W) with 255 = 1.0.

    The model is moved to ``device`` and made channels_last; batches travel as uint8 and become
    float channels_last there. ``precision`` (``auto``: the hardware's choice, as in ``fit``; see
    :mod:`mrparotid.models.precision`) sets the arithmetic inside the model only: the logits are
    cast to float32 before the softmax.

    A model trained with series dropout (``model.series_flags``, see
    :mod:`mrparotid.data.series_dropout`) also gets its present-flag planes: ``present`` bool
    (k,) for every slice or (n, k) per slice, over ``model.series_flags``; default every series
    present. ``x_uint8`` then holds only the model's channels, an absent series' plane zero.

    ``temperature`` divides the logits before the softmax (temperature scaling); the package's
    own paths keep 1.0 (raw probabilities) and calibrate once, from the raw ones, with
    :func:`mrparotid.decision.temperature.apply_temperature`, which gives the same numbers.
    """
    temperature = float(temperature)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    x = torch.as_tensor(x_uint8)
    # moved and re-laid out outside inference mode: the weights stay usable for gradients
    # (heat maps) afterwards
    model = model_channels_last(model.to(device).eval())
    with torch.inference_mode():
        out = _batched_probs(model, x, batch_size, device, precision, present, temperature)
    if not out:
        return np.zeros((0, len(CLASSES)))
    return torch.cat(out).numpy()


def _batched_probs(model: torch.nn.Module, x: torch.Tensor, batch_size: int, device, precision: str,
                   present: np.ndarray | None, temperature: float) -> list[torch.Tensor]:
    out = []
    for start in range(0, len(x), batch_size):
        xb = channels_last(x[start:start + batch_size].to(device).float().div_(255.0))
        if getattr(model, "series_flags", ()):     # trained with series dropout: + flag planes
            xb = channels_last(append_present_flags(xb, _present_rows(model, present, start, len(xb))))
        with inference_autocast(precision, device):
            logits = model(xb)
        out.append((logits.float() / temperature).softmax(1).double().cpu())
    return out


def _present_rows(model: torch.nn.Module, present: np.ndarray | None, start: int, n: int) -> np.ndarray:
    """The present flags of slices ``start .. start + n``: bool (n, k) or (k,) for all."""
    k = len(model.series_flags)
    if present is None:
        return np.ones(k, dtype=bool)
    present = np.asarray(present, dtype=bool)
    if present.shape[-1] != k or present.ndim not in (1, 2):
        raise ValueError(f"present flags of shape {present.shape} for the model's {k} flagged "
                         f"series {model.series_flags}")
    return present if present.ndim == 1 else present[start:start + n]
