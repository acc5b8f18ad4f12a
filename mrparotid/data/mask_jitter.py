"""Training-time jitter of the gland-mask channel, so that the classifier cannot read the class
off the exact edge of a hand-drawn contour, which automatic masks do not reproduce.

Per selected sample: the mask is blurred (a box of ``2r + 1`` px), a smooth random field (a 6x6
grid of N(0, 0.15) upsampled bilinearly: an elastic wobble of the edge) is added, and the result is
thresholded at ``0.5 + u``, u ~ U(-0.35, 0.35) (an erosion or dilation by up to about ``0.7 r``
px). ``r`` is ``px`` at 224 px crops, scaled with the crop size. The mask stays binary; the MR
series are never touched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Crop size the jitter radius is given at.
REFERENCE_SIZE = 224


def jitter_masks(mask: Tensor, p: float, px: float) -> Tensor:
    """Jittered copy of ``mask`` (float (B, H, W), values 0/1); each sample with probability ``p``.
    Draws from torch's global RNG on ``mask.device``."""
    if p <= 0 or px <= 0 or mask.shape[0] == 0:
        return mask
    b, h, w = mask.shape
    r = max(1, int(round(px * h / REFERENCE_SIZE)))
    soft = F.avg_pool2d(mask.unsqueeze(1), 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    field = F.interpolate(torch.randn(b, 1, 6, 6, device=mask.device, dtype=mask.dtype) * 0.15,
                          size=(h, w), mode="bilinear", align_corners=False)
    cut = 0.5 + (torch.rand(b, 1, 1, 1, device=mask.device, dtype=mask.dtype) - 0.5) * 0.7
    jittered = ((soft + field) > cut).to(mask.dtype).squeeze(1)
    chosen = (torch.rand(b, device=mask.device) < p).view(-1, 1, 1)
    return torch.where(chosen, jittered, mask)
