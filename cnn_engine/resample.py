"""Bringing feature maps of every resolution onto the common grid of the network input.

How a feature cell maps to input pixels: a level of native size ``h`` x ``w`` on an input of
``H`` x ``W`` pixels has a stride of ``H / h`` by ``W / w``. Input pixel row ``i`` (its centre at
``i + 0.5``) takes its value from feature row ``floor((i + 0.5) * h / H)``, and likewise for
columns. Where the stride ``s`` is a whole number (ResNet-50 at 224: 2, 4, 8, 16, 32) this is an
exact block repeat: feature cell ``(r, c)`` fills input pixels ``[r*s, (r+1)*s) x [c*s, (c+1)*s)``.
That is the cell's footprint on the grid, not its receptive field, which is much larger and,
for padded stride-2 convolutions, centred up to ``(s-1)/2`` pixels up and left of the block's
centre.

``bilinear`` interpolates between cell centres placed at ``(r + 0.5) * s`` (PyTorch's
``align_corners=False``), the same cell-to-pixel convention.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

INTERPOLATIONS = ("nearest", "bilinear")


def source_index(out_size: int, in_size: int) -> np.ndarray:
    """For each of ``out_size`` grid cells, the index of the ``in_size`` feature cell it shows."""
    return np.minimum(((np.arange(out_size) + 0.5) * in_size / out_size).astype(np.int64), in_size - 1)


def resample_into(out: np.ndarray, maps: torch.Tensor, interpolation: str = "nearest") -> None:
    """Write feature ``maps`` (k, h, w) onto ``out`` (k, H, W) float32, in place.

    ``out`` planes must be C-contiguous (each ``out[j]``). Nearest is an exact block repeat where
    ``H / h`` and ``W / w`` are whole numbers; see the module docstring for the mapping.
    """
    k, height, width = out.shape
    _, h, w = maps.shape
    if interpolation == "bilinear" and (h, w) != (height, width):
        resized = F.interpolate(maps[None].float(), size=(height, width), mode="bilinear", align_corners=False)
        out[...] = resized[0].cpu().numpy()
        return
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}: use one of {', '.join(INTERPOLATIONS)}")
    small = maps.float().cpu()
    if height % h == 0 and width % w == 0:
        sy, sx = height // h, width // w
        for j in range(k):
            # The plane is contiguous, so the view shares the volume's memory: torch's copy of a
            # broadcast (expanded) map writes the block repeat straight into it, vectorised.
            plane = torch.from_numpy(out[j]).view(h, sy, w, sx)
            plane.copy_(small[j][:, None, :, None].expand(h, sy, w, sx))
        return
    rows = torch.from_numpy(source_index(height, h))
    cols = torch.from_numpy(source_index(width, w))
    for j in range(k):
        torch.from_numpy(out[j]).copy_(small[j].index_select(0, rows).index_select(1, cols))
