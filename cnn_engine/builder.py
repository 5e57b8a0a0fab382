"""Building one image's volume from its layer outputs as the forward pass produces them.

The forward runners (:func:`cnn_engine.compute_volume` for one image, :mod:`cnn_engine.sets`
for batches) hand each level's output to a :class:`VolumeBuilder`, which chooses that level's
channels (ranked, or given), draws them on the input grid and records what the level is.
Nothing here runs the network.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .errors import CnnEngineError
from .layers import LevelSpec
from .models import CnnModel
from .ranking import top_channels
from .receptive import Geometry, footprint_geometry
from .resample import resample_into
from .volume import LevelInfo


class VolumeBuilder:
    """One image's rank arrays (top_k, levels, height, width) and level records, filled level by level.

    ``channels``, when given, holds per level the channel indices to show, best first (None for
    a level ranked by ``rank_by`` as usual); a level with fewer than ``top_k`` channels gets NaN
    maps and channel -1 on the missing ranks. ``size`` is the network input (height, width) in
    pixels; ``geometry`` the model's cells for that size (``CnnModel.geometry``).
    """

    def __init__(self, model: CnnModel, levels: Sequence[LevelSpec], top_k: int, rank_by: str, interpolation: str,
                 size: tuple[int, int], channels: Sequence[Sequence[int] | None] | None = None) -> None:
        self.levels = list(levels)
        self.top_k = top_k
        self.rank_by = rank_by
        self.interpolation = interpolation
        self.size = size
        self.geometry = model.geometry(size)
        self.channels = list(channels) if channels is not None else [None] * len(self.levels)
        # (rank, level, row, column): each rank's (level, row, column) block is contiguous.
        self.block = model.output_buffer((top_k, len(self.levels)) + tuple(size))
        self.infos: list[LevelInfo | None] = [None] * len(self.levels)

    def add(self, index: int, maps: torch.Tensor, scores: torch.Tensor | None = None) -> None:
        """Level ``index``'s output ``maps`` (channels, rows, columns) of this image; ``scores``
        (channels,) replace the ranking computed from the maps (class rankings)."""
        level = self.levels[index]
        maps = maps.detach()
        if maps.dim() != 3:
            raise CnnEngineError(f"layer {level.name!r} gave a {tuple(maps.shape)} output per image, not a spatial map")
        cells = level_geometry(self.geometry, level.node, maps.shape[1:], self.size)
        given = self.channels[index]
        if given is None:
            channels, scores = top_channels(maps, self.top_k, self.rank_by, scores)
        else:
            channels = _checked_channels(given, maps.shape[0], level.name)
            scores = torch.full((len(channels),), float("nan"))
        kept = maps.index_select(0, channels)
        resample_into(self.block[: len(channels), index], kept, self.interpolation, cells)
        padding = self.top_k - len(channels)
        if padding:
            self.block[len(channels):, index] = np.nan
        self.infos[index] = LevelInfo(
            index=index,
            name=level.name,
            layer_type=level.layer_type,
            native_shape=tuple(int(v) for v in maps.shape),
            stride=cells.stride,
            channels=tuple(channels.tolist()) + (-1,) * padding,
            scores=tuple(scores.tolist()) + (float("nan"),) * padding,
            raw_min=float(kept.min()) if kept.numel() else float("nan"),
            raw_max=float(kept.max()) if kept.numel() else float("nan"),
            receptive_field=cells.receptive_field,
            offset=cells.offset,
            geometry=cells.note,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """``rank0`` ... ``rank{K-1}``, each (levels, height, width), image order."""
        return {f"rank{k}": self.block[k] for k in range(self.top_k)}


def level_geometry(geometry: dict[str, Geometry], node: str, cells: Sequence[int], size: tuple[int, int]) -> Geometry:
    """The geometry of operation ``node`` whose output has ``cells`` (rows, columns), on an input
    of ``size`` (height, width) pixels; where the graph gave none (or a different grid), the
    cells are drawn on their footprint (input size / cells) and the note says so."""
    found = geometry.get(node)
    if found is not None:
        return found
    return footprint_geometry(cells, size, f"unknown for {node}: drawn on its footprint (input size / cells)")


def _checked_channels(given: Sequence[int], count: int, level: str) -> torch.Tensor:
    bad = [c for c in given if not 0 <= int(c) < count]
    if bad:
        raise CnnEngineError(f"channel {bad[0]} does not exist on level {level!r}, which has channels 0 to {count - 1}")
    return torch.tensor([int(c) for c in given], dtype=torch.int64)
