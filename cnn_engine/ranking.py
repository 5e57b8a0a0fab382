"""Ranking the channels of one layer output and keeping the strongest.

A layer has hundreds to thousands of channels; the volume keeps the ``k`` channels that respond
most to this image. The score of a channel is a statistic of its map over all cells:

``mean`` (default)  mean activation
``max``             largest activation
``l2``              Euclidean norm of the map (sqrt of the sum of squares)

Ties go to the lower channel index, so rankings are deterministic.
"""

from __future__ import annotations

import torch

RANK_BY = ("mean", "max", "l2")


def channel_scores(maps: torch.Tensor, rank_by: str = "mean") -> torch.Tensor:
    """Score each channel of ``maps`` (channels, height, width); returns (channels,) float32."""
    if rank_by == "mean":
        return maps.mean(dim=(1, 2), dtype=torch.float32)
    if rank_by == "max":
        return maps.amax(dim=(1, 2)).float()
    if rank_by == "l2":
        return torch.linalg.vector_norm(maps.float(), dim=(1, 2))
    raise ValueError(f"unknown ranking {rank_by!r}: use one of {', '.join(RANK_BY)}")


def top_channels(maps: torch.Tensor, k: int, rank_by: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and scores of the ``k`` best channels of ``maps`` (channels, height, width).

    Returns two tensors of length ``min(k, channels)``, best first: channel indices (int64)
    and their scores (float32).
    """
    scores = channel_scores(maps, rank_by)
    ordered_scores, order = torch.sort(scores, descending=True, stable=True)
    keep = min(k, scores.numel())
    return order[:keep], ordered_scores[:keep]
