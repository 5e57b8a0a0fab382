"""Choosing what to show of a volume: which ranked channel (or a summary of them) and which levels.

Used by the ParaView filter "CNN Layer Normalize" and by scripts alike; the arrays are the
volume's ``rank0`` ... ``rank{K-1}``, each (levels, height, width), in any row order (nothing
here looks across rows).

Channel choices: ``top1`` (the best channel: ``rank0``), ``rank`` (the channel ranked ``rank``,
counting from 0), ``mean-top-k`` and ``max-top-k`` (cell-wise mean or maximum over the K kept
channels, NaN ranks ignored), and ``layercam``: not a channel but the volume's ``layercam`` array
(LayerCAM class evidence at every level, made with evidence ``layercam``), when it has one.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .errors import CnnEngineError
from .normalize import DEFAULT_PERCENTILES, normalize

CHANNEL_CHOICES = ("top1", "rank", "mean-top-k", "max-top-k", "layercam")


def parse_channels(name: str) -> str:
    """Canonical channel choice; case, ``-`` and ``_`` are ignored (``MeanTopK`` works)."""
    key = name.replace("-", "").replace("_", "").lower()
    aliases = {choice.replace("-", ""): choice for choice in CHANNEL_CHOICES}
    if key not in aliases:
        raise CnnEngineError(f"unknown channel choice {name!r}: use one of {', '.join(CHANNEL_CHOICES)}")
    return aliases[key]


def combine_ranks(ranks: Sequence[np.ndarray], channels: str = "top1", rank: int = 0,
                  layercam: np.ndarray | None = None) -> np.ndarray:
    """One (levels, height, width) float32 array from the ranked channel arrays (best first), or
    for ``layercam`` the volume's ``layercam`` array (None when the volume has none: an error)."""
    channels = parse_channels(channels)
    if channels == "layercam":
        if layercam is None:
            raise CnnEngineError("the volume has no layercam array: make it with evidence LayerCAM (the source's "
                                 "Evidence, --evidence layercam, or compute_volume(..., evidence='layercam')), "
                                 "or choose another Channels value")
        return np.asarray(layercam, dtype=np.float32)
    if not ranks:
        raise CnnEngineError("the volume has no rank arrays (rank0, rank1, ...)")
    if channels == "top1":
        return np.asarray(ranks[0], dtype=np.float32)
    if channels == "rank":
        if not 0 <= rank < len(ranks):
            raise CnnEngineError(f"rank {rank} asked for, but the volume keeps ranks 0 to {len(ranks) - 1}")
        return np.asarray(ranks[rank], dtype=np.float32)
    stack = np.stack([np.asarray(r, dtype=np.float32) for r in ranks])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells where every rank is NaN stay NaN
        combined = np.nanmean(stack, axis=0) if channels == "mean-top-k" else np.nanmax(stack, axis=0)
    return combined.astype(np.float32)


def level_range(levels: int, first: int, last: int) -> slice:
    """The levels ``first`` to ``last`` inclusive, clamped to the volume; -1 for last means the end."""
    if last < 0 or last >= levels:
        last = levels - 1
    first = min(max(first, 0), levels - 1)
    if first > last:
        raise CnnEngineError(f"first level {first} is after last level {last}")
    return slice(first, last + 1)


def layer_view(
    ranks: Sequence[np.ndarray],
    channels: str = "top1",
    rank: int = 0,
    normalization: str = "per-level-minmax",
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    first: int = 0,
    last: int = -1,
    layercam: np.ndarray | None = None,
) -> tuple[np.ndarray, slice]:
    """The ``activation`` array of the ParaView filter: chosen channels, chosen levels, normalised.

    ``layercam`` is the volume's ``layercam`` array, if it has one (for the ``layercam`` choice).
    Returns the array (kept levels, height, width) and the slice of levels it covers.
    """
    combined = combine_ranks(ranks, channels, rank, layercam)
    levels = level_range(combined.shape[0], first, last)
    return normalize(combined[levels], normalization, percentiles), levels
