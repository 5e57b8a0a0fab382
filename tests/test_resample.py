"""Resampling feature maps to the input grid: exact block repeats and the general mapping."""

from __future__ import annotations

import numpy as np
import torch

from cnn_engine.resample import resample_into, source_index


def test_nearest_is_an_exact_block_repeat_when_the_stride_divides():
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    out = np.zeros((1, 4, 6), np.float32)
    resample_into(out, maps, "nearest")
    assert out[0].tolist() == [
        [1, 1, 1, 2, 2, 2],
        [1, 1, 1, 2, 2, 2],
        [3, 3, 3, 4, 4, 4],
        [3, 3, 3, 4, 4, 4],
    ]


def test_nearest_writes_into_a_slice_of_a_larger_volume():
    block = np.zeros((2, 3, 4, 4), np.float32)
    resample_into(block[:, 1], torch.arange(8.0).reshape(2, 2, 2), "nearest")
    assert block[1, 1, 3, 3] == 7.0 and block[0, 1, 0, 0] == 0.0 and block[0, 1, 0, 2] == 1.0
    assert not block[:, 0].any() and not block[:, 2].any()


def test_uneven_stride_maps_pixel_centres_to_cells():
    # 3 cells over 7 pixels: pixel i (centre i + 0.5) shows cell floor((i + 0.5) * 3 / 7).
    assert source_index(7, 3).tolist() == [0, 0, 1, 1, 1, 2, 2]
    out = np.zeros((1, 1, 7), np.float32)
    resample_into(out, torch.tensor([[[10.0, 20.0, 30.0]]]), "nearest")
    assert out[0, 0].tolist() == [10, 10, 20, 20, 20, 30, 30]


def test_same_size_is_a_copy():
    maps = torch.rand(2, 5, 7)
    out = np.zeros((2, 5, 7), np.float32)
    resample_into(out, maps, "nearest")
    assert np.array_equal(out, maps.numpy())


def test_bilinear_interpolates_between_cell_centres():
    out = np.zeros((1, 1, 4), np.float32)
    resample_into(out, torch.tensor([[[0.0, 4.0]]]), "bilinear")
    # Cell centres at pixel positions 1.0 and 3.0 (stride 2): pixel centres 0.5 .. 3.5.
    assert out[0, 0].tolist() == [0.0, 1.0, 3.0, 4.0]
