"""From an RGB picture to the network's input tensor, and the picture on the same grid.

The network input grid *is* the volume's X/Y grid: one input pixel is one cell of the volume.
Three ways to fit the image to it:

``short-side`` (default)
    The whole image, no crop: the short side resized to ``size`` pixels (224), the long side by
    the same factor (aspect ratio kept, rounded to whole pixels).
``center-crop``
    The classic ImageNet evaluation: short side resized to ``size * 256 / 224``, then the
    central ``size`` x ``size`` square.
``native``
    The image as it is, no resizing.

In every mode a long side above ``max_side`` pixels is scaled down to it (with a warning), so a
panorama or a camera original cannot exhaust memory.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from .errors import CnnEngineError

from .options import FITS  # noqa: E402,F401  (options owns the names)
DEFAULT_SIZE = 224
DEFAULT_MAX_SIDE = 1024


@dataclass(frozen=True)
class Preprocessing:
    """How an image is fitted to the network input (see the module docstring)."""

    fit: str = "short-side"
    size: int = DEFAULT_SIZE
    max_side: int = DEFAULT_MAX_SIDE

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise CnnEngineError(f"unknown fit {self.fit!r}: use one of {', '.join(FITS)}")
        if not 16 <= self.size <= self.max_side:
            raise CnnEngineError(f"input size {self.size} is out of range: use 16 to {self.max_side} pixels")

    def describe(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class NetworkInput:
    """The tensor fed to the network and the picture it was made from.

    ``tensor`` is (1, 3, height, width) float32, normalised with the weights' mean and std;
    ``rgb`` is (height, width, 3) uint8 in image order (row 0 = top), the same pixels before
    normalisation.
    """

    tensor: torch.Tensor
    rgb: np.ndarray


def fitted_size(width: int, height: int, preprocessing: Preprocessing) -> tuple[int, int]:
    """(width, height) in pixels of the network input for an image of ``width`` x ``height``."""
    if preprocessing.fit == "center-crop":
        resized = _resized_size(width, height, preprocessing, warn=False)
        side = min(preprocessing.size, *resized)
        return side, side
    return _resized_size(width, height, preprocessing, warn=False)


def input_grid(path: str | os.PathLike, preprocessing: Preprocessing) -> tuple[int, int]:
    """(width, height) in pixels of the network input the image file at ``path`` gets, from its
    header alone (nothing is decoded; see :func:`cnn_engine.images.image_size`)."""
    from .images import image_size

    return fitted_size(*image_size(path), preprocessing)


def _resized_size(width: int, height: int, preprocessing: Preprocessing, warn: bool) -> tuple[int, int]:
    if preprocessing.fit == "native":
        target = (width, height)
    else:
        short = preprocessing.size if preprocessing.fit == "short-side" else round(preprocessing.size * 256 / 224)
        scale = short / min(width, height)
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if max(target) > preprocessing.max_side:
        scale = preprocessing.max_side / max(target)
        capped = (max(1, round(target[0] * scale)), max(1, round(target[1] * scale)))
        if warn:
            warnings.warn(
                f"the image would be {target[0]}x{target[1]} pixels at the network input; scaled down to "
                f"{capped[0]}x{capped[1]} (the long side is capped at {preprocessing.max_side} pixels)",
                stacklevel=4,
            )
        target = capped
    return target


def fit_image(image: Image.Image, preprocessing: Preprocessing) -> Image.Image:
    """Resize (and for ``center-crop`` crop) an RGB image to the network input grid."""
    width, height = image.size
    target = _resized_size(width, height, preprocessing, warn=True)
    if target != (width, height):
        image = image.resize(target, Image.BILINEAR)
    if preprocessing.fit == "center-crop":
        crop = fitted_size(width, height, preprocessing)[0]
        left = (image.size[0] - crop) // 2
        top = (image.size[1] - crop) // 2
        image = image.crop((left, top, left + crop, top + crop))
    return image


def network_input(
    image: Image.Image,
    preprocessing: Preprocessing,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> NetworkInput:
    """Fit ``image`` to the input grid and normalise it as the weights expect."""
    fitted = fit_image(image, preprocessing)
    return fitted_input(np.asarray(fitted, dtype=np.uint8), mean, std)


def fitted_input(rgb: np.ndarray, mean: tuple[float, float, float], std: tuple[float, float, float]) -> NetworkInput:
    """The network input of an already fitted (height, width, 3) uint8 picture (image order):
    values scaled to [0, 1] and normalised with the weights' ``mean`` and ``std``."""
    tensor = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return NetworkInput(tensor=((tensor - mean_t) / std_t).unsqueeze(0).contiguous(), rgb=rgb)
