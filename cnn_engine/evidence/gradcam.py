"""Grad-CAM: feature maps weighted by the spatial mean of the class score's gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def grad_cam(features: torch.Tensor, score: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """ReLU(sum_c mean_hw(d score / d A_c) * A_c), bilinearly resampled to ``size``.

    ``features`` is the (1, C, h, w) output of the chosen layer, still attached to the graph
    that produced ``score`` (the target class's logit). Only the part of the backward pass
    between the score and that layer runs. Returns (height, width) float32.
    """
    (gradient,) = torch.autograd.grad(score, features)
    weights = gradient[0].mean(dim=(1, 2))
    with torch.no_grad():
        cam = F.relu(torch.einsum("c,chw->hw", weights, features[0]))
        return F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
