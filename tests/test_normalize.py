"""Normalisations on hand-made (levels, height, width) arrays with exact results."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_engine import CnnEngineError
from cnn_engine.normalize import normalize, parse_normalization

LEVELS = np.array(
    [
        [[0.0, 5.0], [10.0, 20.0]],  # spread 20
        [[-1.0, -1.0], [-1.0, -1.0]],  # constant
        [[2.0, 4.0], [6.0, 8.0]],
    ],
    dtype=np.float32,
)


def test_per_level_minmax_maps_each_level_to_unit_range():
    out = normalize(LEVELS, "per-level-minmax")
    assert out[0].tolist() == [[0.0, 0.25], [0.5, 1.0]]
    assert np.allclose(out[2], [[0.0, 1 / 3], [2 / 3, 1.0]], rtol=0, atol=1e-7)


def test_constant_level_becomes_zero_without_dividing_by_zero():
    with np.errstate(all="raise"):
        out = normalize(LEVELS, "per-level-minmax")
        z = normalize(LEVELS, "per-level-zscore")
    assert out[1].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert z[1].tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_global_minmax_uses_the_whole_array():
    out = normalize(LEVELS, "global-minmax")
    assert out[1, 0, 0] == 0.0 and out[0, 1, 1] == 1.0
    assert out[0, 0, 0] == pytest.approx(1 / 21)


def test_per_level_zscore():
    out = normalize(LEVELS, "per-level-zscore")
    assert out[2].tolist() == pytest.approx(np.array([[-3, -1], [1, 3]]) / np.sqrt(5), abs=1e-6)


def test_per_level_percentile_clips_then_scales():
    values = np.arange(101, dtype=np.float32).reshape(1, 1, 101)
    out = normalize(values, "per-level-percentile", percentiles=(10, 90))
    assert out[0, 0, 0] == 0.0 and out[0, 0, 10] == 0.0
    assert out[0, 0, 50] == pytest.approx(0.5)
    assert out[0, 0, 90] == 1.0 and out[0, 0, 100] == 1.0


def test_none_returns_the_values_unchanged():
    out = normalize(LEVELS, "none")
    assert np.array_equal(out, LEVELS) and out is not LEVELS


def test_nan_cells_stay_nan_and_are_ignored():
    values = np.array([[[np.nan, 1.0], [3.0, 5.0]]], np.float32)
    out = normalize(values, "per-level-minmax")
    assert np.isnan(out[0, 0, 0])
    assert out[0].ravel()[1:].tolist() == [0.0, 0.5, 1.0]


def test_names_are_accepted_in_the_plugin_spelling_too():
    assert parse_normalization("PerLevelMinMax") == "per-level-minmax"
    assert parse_normalization("Global") == "global-minmax"
    with pytest.raises(CnnEngineError, match="unknown normalization 'sideways'"):
        parse_normalization("sideways")


# Channel choices and level ranges (cnn_engine.selection), on the same hand-made values.
from cnn_engine.selection import combine_ranks, layer_view  # noqa: E402

RANK0 = np.array([[[1.0, 4.0]], [[2.0, 2.0]]], np.float32)  # 2 levels of 1x2
RANK1 = np.array([[[3.0, 0.0]], [[np.nan, np.nan]]], np.float32)


def test_top1_is_rank0_and_rank_picks_one():
    assert np.array_equal(combine_ranks([RANK0, RANK1], "Top1"), RANK0)
    assert np.array_equal(combine_ranks([RANK0, RANK1], "rank", 1), RANK1, equal_nan=True)


def test_mean_and_max_over_ranks_ignore_nan():
    assert combine_ranks([RANK0, RANK1], "MeanTopK").tolist() == [[[2.0, 2.0]], [[2.0, 2.0]]]
    assert combine_ranks([RANK0, RANK1], "max-top-k").tolist() == [[[3.0, 4.0]], [[2.0, 2.0]]]


def test_rank_beyond_the_kept_ones_is_an_error():
    with pytest.raises(CnnEngineError, match="rank 2 asked for, but the volume keeps ranks 0 to 1"):
        combine_ranks([RANK0, RANK1], "rank", 2)


def test_layer_view_keeps_the_level_range_and_normalises():
    view, levels = layer_view([RANK0, RANK1], "max-top-k", first=0, last=0)
    assert levels == slice(0, 1)
    assert view.tolist() == [[[0.0, 1.0]]]


LAYERCAM = np.array([[[0.0, 2.0]], [[5.0, 1.0]]], np.float32)  # not a rank: evidence at each level


def test_layercam_choice_shows_the_layercam_array_normalised_per_level():
    assert combine_ranks([RANK0, RANK1], "LayerCAM", layercam=LAYERCAM).tolist() == LAYERCAM.tolist()
    view, levels = layer_view([RANK0, RANK1], "LayerCAM", layercam=LAYERCAM)
    assert levels == slice(0, 2) and view.tolist() == [[[0.0, 1.0]], [[1.0, 0.0]]]


def test_layercam_choice_without_a_layercam_array_says_how_to_make_one():
    with pytest.raises(CnnEngineError, match="the volume has no layercam array: make it with evidence LayerCAM"):
        layer_view([RANK0, RANK1], "layercam")
