"""An evidence map drawn over its image, as a picture to look at or put in a paper."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import OutputError

# Anchor colours of matplotlib's "inferno" map at 0, 0.25, 0.5, 0.75, 1 (linearly interpolated).
_INFERNO = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values (any range; NaN as 0) to inferno colours: (height, width, 3) uint8."""
    finite = np.nan_to_num(values.astype(np.float64))
    low, high = finite.min(), finite.max()
    scaled = (finite - low) / (high - low) if high > low else np.zeros_like(finite)
    position = scaled * (len(_INFERNO) - 1)
    lower = np.clip(np.floor(position).astype(int), 0, len(_INFERNO) - 2)
    fraction = (position - lower)[..., None]
    colours = _INFERNO[lower] * (1 - fraction) + _INFERNO[lower + 1] * fraction
    return np.clip(np.rint(colours), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """The evidence map over the image: stronger evidence, more colour. (H, W, 3) uint8."""
    finite = np.nan_to_num(values.astype(np.float64))
    spread = finite.max() - finite.min()
    weight = ((finite - finite.min()) / spread if spread > 0 else np.zeros_like(finite))[..., None] * opacity
    blended = image.astype(np.float64) * (1 - weight) + colorize(values).astype(np.float64) * weight
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def save_picture(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB picture (PNG, JPEG... by extension) atomically."""
    from .netcdf import check_writable

    path = check_writable(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        Image.fromarray(picture).save(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except (OSError, ValueError, KeyError) as exc:
        os.unlink(temporary)
        raise OutputError(f"cannot write picture {path}: {exc}") from None
    return path
