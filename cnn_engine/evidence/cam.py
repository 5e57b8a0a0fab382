"""Class activation mapping: the class's linear weights over the last feature map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import LayerCatalog
from . import EvidenceError


def cam_layers(module: nn.Module, catalog: LayerCatalog) -> tuple[str, nn.Linear]:
    """The feature operation CAM reads and the classifier it weights it with.

    CAM is exact only when the last spatial feature map reaches the class scores through global
    average pooling and a single linear layer; anything else is an error pointing to Grad-CAM.
    """
    linear_names = [n.module for n in catalog.nodes if n.layer_type == "Linear"]
    spatial = [n.name for n in catalog.nodes[1:] if catalog.is_spatial(n.name)]
    hint = "use evidence='gradcam', which works for any model"
    if len(linear_names) != 1 or not spatial:
        raise EvidenceError(
            f"CAM needs a model ending in global average pooling and one linear layer; "
            f"{catalog.model_name} has {len(linear_names)} linear layers: {hint}"
        )
    linear = module.get_submodule(linear_names[0])
    channels = catalog.reference_shapes[spatial[-1]][1]
    if linear.in_features != channels:
        raise EvidenceError(
            f"CAM: the last feature map of {catalog.model_name} has {channels} channels but its classifier "
            f"takes {linear.in_features} inputs: {hint}"
        )
    return spatial[-1], linear


def class_activation_map(features: torch.Tensor, linear: nn.Linear, target: int) -> torch.Tensor:
    """ReLU(sum_c w[target, c] * A_c) on the layer's own grid.

    ``features`` is the (1, C, h, w) map before pooling. Returns (h, w) float32; the caller
    draws it on the input grid with the layer's geometry (see :mod:`cnn_engine.resample`).
    """
    weights = linear.weight[target].to(features.dtype)
    return F.relu(torch.einsum("c,chw->hw", weights, features[0]))
