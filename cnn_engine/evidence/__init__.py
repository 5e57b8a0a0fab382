"""Class evidence maps: where in the image the network found the evidence for a class.

Four methods, each in its own module:

``cam`` (:mod:`.cam`)
    Class activation mapping (Zhou et al. 2016) for models that end in global average pooling
    and one linear layer (ResNet, EfficientNet): the class's linear weights applied to the last
    feature map. Exact and almost free.
``gradcam`` (:mod:`.gradcam`)
    Grad-CAM (Selvaraju et al. 2017) on a chosen layer (default: the last spatial block): the
    feature maps weighted by the spatial mean of the class score's gradient. Any model; one
    backward pass from the class score down to that layer. On a global-average-pooled linear
    head and the last feature map it equals CAM up to a constant factor.
``layercam`` (:mod:`cnn_engine.gradients`)
    LayerCAM (Jiang et al. 2021) at every level of the volume: per cell, the positive part of the
    class score's gradient times the activation, summed over channels. Stored as the volume array
    ``layercam`` (levels, height, width); the evidence map is the deepest level's. One backward
    pass for all levels.
``occlusion`` (:mod:`.occlusion`)
    Occlusion sensitivity (Zeiler and Fergus 2014): the drop of the class probability when a
    patch of the image is hidden, averaged over the patches covering each pixel. It measures
    what the *occluder* does: hiding texture with a flat colour can lower the score more than
    hiding the object itself (on a cat beside Gaussian noise, hiding noise lowered the cat logit
    more than hiding the cat, with EfficientNet-Lite0), so choose the occluder (``mean``
    colour, ``blur``, ``noise``) for the question asked.

CAM, Grad-CAM and LayerCAM keep positive evidence only (ReLU); all maps are (height, width)
float32 on the network input grid, image order (row 0 = top), drawn bilinearly from the layer's
grid with each cell centred on its receptive field (see :mod:`cnn_engine.resample`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import CnnEngineError

from ..options import METHODS, OCCLUDERS  # noqa: F401  (options owns the names)

#: A class asked for by index (281) or label ("tabby"); None means the top-1 prediction.
Target = Union[int, str, None]


class EvidenceError(CnnEngineError):
    """An evidence map cannot be made as asked (method, target class, layer)."""


@dataclass(frozen=True)
class EvidenceSettings:
    """How to make the evidence map (see the module docstring)."""

    method: str
    target: Target = None
    layer: str | None = None  # cam/gradcam: the feature layer (default: chosen by the method)
    patch: int = 32  # occlusion: patch side in input pixels
    stride: int = 16  # occlusion: step between patches in input pixels
    occluder: str = "mean"  # occlusion: mean, blur or noise
    batch_size: int = 16  # occlusion: occluded copies per forward pass (16 ran fastest here)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EvidenceError(f"unknown evidence method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.occluder not in OCCLUDERS:
            raise EvidenceError(f"unknown occluder {self.occluder!r}: use one of {', '.join(OCCLUDERS)}")
        if not (1 <= self.stride and 1 <= self.patch):
            raise EvidenceError("occlusion patch and stride must be at least 1 pixel")


@dataclass(frozen=True)
class EvidenceInfo:
    """Which method made a map, for which class, and how."""

    method: str
    target_index: int
    target_label: str
    target_probability: float
    layer: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def level_name(self) -> str:
        """How the map is named as a level of the volume: method, class label and index."""
        return f"{self.method}: {self.target_label} ({self.target_index})"


def resolve_target(target: Target, categories: tuple[str, ...], top1: int, classes: int | None = None) -> int:
    """A class index from an index, a label (case-insensitive) or None (the top-1 class).

    ``classes`` is the number of model outputs when known (a plain module may have no labels);
    otherwise the number of labels.
    """
    if target is None or (isinstance(target, str) and not target.strip()):
        return top1
    if isinstance(target, str) and target.strip().lstrip("-").isdigit():
        target = int(target.strip())
    if isinstance(target, int):
        count = len(categories) if classes is None else classes
        if not 0 <= target < count:
            raise EvidenceError(f"target class {target} is out of range: the model has classes 0 to {count - 1}")
        return target
    lowered = [c.lower() for c in categories]
    wanted = target.strip().lower()
    if wanted in lowered:
        return lowered.index(wanted)
    close = difflib.get_close_matches(wanted, lowered, n=4, cutoff=0.6)
    hint = f"; close labels: {', '.join(categories[lowered.index(c)] for c in close)}" if close else ""
    raise EvidenceError(f"unknown target class {target!r}{hint} (give a label or a class index)")
