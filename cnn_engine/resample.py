"""Drawing feature maps of every resolution on the common grid of the network input.

Each level is drawn where its cells are: cell ``(r, c)`` of a level is centred on input
position ``offset + (r, c) * stride`` (input pixel ``(i, j)`` centred at ``(i, j)``), with the
stride and offset of its :class:`~cnn_engine.receptive.Geometry`, worked out from the network's
graph. Input pixel ``i`` lies at cell coordinate ``u = (i - offset) / stride``:

``nearest``   the pixel shows the cell whose centre is nearest, ``floor(u + 0.5)`` (a pixel
              exactly half-way shows the later cell);
``bilinear``  linear in ``u`` between the two cells around it, in rows and in columns.

Pixels beyond the first or last cell centre show that edge cell (no extrapolation), and the
level is never stretched: an input whose width is not a multiple of the stride (337 pixels at
stride 32) leaves the last cells covering less or more than a stride, where they really are.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .receptive import Geometry, cells_for_pixels

from .options import INTERPOLATIONS  # noqa: F401  (options owns the names)


def nearest_cells(pixels: int, cells: int, offset: float, stride: float) -> torch.Tensor:
    """For each of ``pixels`` input pixels along one axis, the index of the cell it shows (int64)."""
    u = cells_for_pixels(pixels, offset, stride)
    return torch.floor(u + 0.5).clamp_(0, cells - 1).long()


def bilinear_cells(pixels: int, cells: int, offset: float, stride: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Along one axis: the cells before and after each pixel (int64) and the weight of the
    later one (float32, 0 to 1), edges clamped."""
    u = cells_for_pixels(pixels, offset, stride).clamp_(0, cells - 1)
    before = torch.floor(u).long()
    after = (before + 1).clamp_(max=cells - 1)
    return before, after, (u - before).float()


def resample_into(out: np.ndarray, maps: torch.Tensor, interpolation: str, geometry: Geometry) -> None:
    """Draw feature ``maps`` (k, h, w) on ``out`` (k, H, W) float32 input-grid planes, in place.

    ``geometry`` is the level's (see the module docstring). ``out`` may be a strided view (one
    level of several ranks); each plane is written whole.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}: use one of {', '.join(INTERPOLATIONS)}")
    if interpolation == "bilinear":
        torch.from_numpy(out).copy_(resampled(maps, out.shape[1:], interpolation, geometry))
        return
    k, height, width = out.shape
    _, h, w = maps.shape
    # One gather per plane straight into the volume's memory: the volume is written at the
    # speed of a copy (two index_selects with temporaries cost as much as a small layer).
    index = _nearest_flat_index(height, width, h, w, geometry.offset, geometry.stride)
    flat = maps.detach().float().cpu().reshape(k, h * w)
    for j in range(k):
        torch.index_select(flat[j], 0, index, out=torch.from_numpy(out[j]).view(-1))


@lru_cache(maxsize=512)
def _nearest_flat_index(height: int, width: int, h: int, w: int, offset: tuple[float, float],
                        stride: tuple[float, float]) -> torch.Tensor:
    rows = nearest_cells(height, h, offset[0], stride[0])
    cols = nearest_cells(width, w, offset[1], stride[1])
    return (rows[:, None] * w + cols[None, :]).reshape(-1)


def resampled(maps: torch.Tensor, size: tuple[int, int], interpolation: str, geometry: Geometry) -> torch.Tensor:
    """Feature ``maps`` (k, h, w) drawn on a (height, width) input grid: (k, height, width) float32."""
    _, h, w = maps.shape
    height, width = int(size[0]), int(size[1])
    small = maps.detach().float().cpu()
    (oy, ox), (sy, sx) = geometry.offset, geometry.stride
    if interpolation == "nearest":
        index = _nearest_flat_index(height, width, h, w, geometry.offset, geometry.stride)
        return small.reshape(-1, h * w).index_select(1, index).view(-1, height, width)
    top, bottom, ty = bilinear_cells(height, h, oy, sy)
    left, right, tx = bilinear_cells(width, w, ox, sx)
    upper = small.index_select(1, top)
    rows = upper.lerp_(small.index_select(1, bottom), ty[None, :, None])
    first = rows.index_select(2, left)
    return first.lerp_(rows.index_select(2, right), tx[None, None, :])
