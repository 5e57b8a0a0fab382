"""Ranking the channels of one layer output and keeping the strongest.

A layer has hundreds to thousands of channels; the volume keeps the ``k`` best of them for this
image. The score of a channel is a statistic of its map over all cells:

``mean`` (default)  mean activation
``max``             largest activation
``l2``              Euclidean norm of the map (sqrt of the sum of squares)

or what the channel does for the decision, for a target class ``t`` (the top-1 class unless
one is asked for), computed by :func:`cnn_engine.compute_volume` from the whole network:

``effect``          first-order effect on the target's log-probability:
                    ``sum over cells of d log p_t / d A * A`` (one backward pass; the
                    log-probability rather than the raw logit, so a channel that raises every
                    class alike does not count, see :mod:`cnn_engine.gradients`)
``ablation``        the measured drop of ``p_t`` when the channel is set to zero (one batched
                    forward pass of the rest of the network per channel: slow on many levels,
                    see :mod:`cnn_engine.ablation`)

Ties go to the lower channel index, so rankings are deterministic.
"""

from __future__ import annotations

import torch

# Rankings that judge a channel by its effect on a target class need the whole network.
from .options import CLASS_RANKINGS, RANK_BY  # noqa: E402,F401  (options owns the names)


def channel_scores(maps: torch.Tensor, rank_by: str = "mean") -> torch.Tensor:
    """Score each channel of ``maps`` (channels, height, width); returns (channels,) float32."""
    if rank_by == "mean":
        return maps.mean(dim=(1, 2), dtype=torch.float32)
    if rank_by == "max":
        return maps.amax(dim=(1, 2)).float()
    if rank_by == "l2":
        return torch.linalg.vector_norm(maps.float(), dim=(1, 2))
    if rank_by in CLASS_RANKINGS:
        raise ValueError(f"ranking {rank_by!r} needs the whole network and a target class: use compute_volume")
    raise ValueError(f"unknown ranking {rank_by!r}: use one of {', '.join(RANK_BY)}")


def top_channels(maps: torch.Tensor, k: int, rank_by: str = "mean",
                 scores: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and scores of the ``k`` best channels of ``maps`` (channels, height, width).

    ``scores`` (channels,), when given, are used instead of computing ``rank_by`` from the maps
    (the ``effect`` and ``ablation`` scores). Returns two tensors of length ``min(k, channels)``,
    best first: channel indices (int64) and their scores (float32).
    """
    scores = channel_scores(maps, rank_by) if scores is None else scores.detach().float().cpu()
    ordered_scores, order = torch.sort(scores, descending=True, stable=True)
    keep = min(k, scores.numel())
    return order[:keep], ordered_scores[:keep]
