"""Channel ranking on hand-made maps, with exact expected orders and scores."""

from __future__ import annotations

import torch

from cnn_engine.ranking import channel_scores, top_channels

# Three 2x2 channels: mean, max and L2 rank them differently.
MAPS = torch.tensor(
    [
        [[1.0, 1.0], [1.0, 1.0]],  # mean 1.0, max 1, l2 2.0
        [[0.0, 0.0], [0.0, 3.0]],  # mean 0.75, max 3, l2 3.0
        [[2.0, 2.0], [-1.0, -1.0]],  # mean 0.5, max 2, l2 sqrt(10)
    ]
)


def test_mean_ranking():
    indices, scores = top_channels(MAPS, 2, "mean")
    assert indices.tolist() == [0, 1]
    assert scores.tolist() == [1.0, 0.75]


def test_max_ranking():
    indices, scores = top_channels(MAPS, 3, "max")
    assert indices.tolist() == [1, 2, 0]
    assert scores.tolist() == [3.0, 2.0, 1.0]


def test_l2_ranking():
    indices, scores = top_channels(MAPS, 1, "l2")
    assert indices.tolist() == [2]
    assert torch.allclose(scores, torch.tensor([10.0**0.5]))


def test_ties_go_to_the_lower_channel_index():
    maps = torch.ones(5, 2, 2)
    assert top_channels(maps, 3, "mean")[0].tolist() == [0, 1, 2]


def test_k_larger_than_channel_count_keeps_all_channels():
    indices, _ = top_channels(MAPS, 10, "mean")
    assert indices.tolist() == [0, 1, 2]


def test_scores_are_per_channel():
    assert channel_scores(MAPS, "mean").tolist() == [1.0, 0.75, 0.5]
