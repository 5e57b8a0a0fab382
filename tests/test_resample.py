"""Drawing feature maps on the input grid: each pixel shows the cell centred nearest to it."""

from __future__ import annotations

import numpy as np
import torch

from cnn_engine.receptive import INPUT_GEOMETRY, Geometry
from cnn_engine.resample import nearest_cells, resample_into


def cells(stride: float, offset: float) -> Geometry:
    return Geometry(stride=(stride, stride), receptive_field=(stride, stride), offset=(offset, offset))


def test_padded_stride_2_cells_are_centred_on_even_pixels():
    # A 3x3 stride-2 convolution padded by 1: cell r is centred on pixel 2 r (offset 0), so pixel 1
    # lies half-way between cells 0 and 1 and shows the later one.
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    out = np.zeros((1, 4, 4), np.float32)
    resample_into(out, maps, "nearest", cells(2, 0))
    assert out[0].tolist() == [[1, 2, 2, 2], [3, 4, 4, 4], [3, 4, 4, 4], [3, 4, 4, 4]]


def test_footprint_centred_cells_repeat_in_blocks():
    # Offset (s - 1) / 2: each cell centred on the middle of its s x s block.
    maps = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    out = np.zeros((1, 4, 6), np.float32)
    resample_into(out, maps, "nearest", Geometry(stride=(2, 3), receptive_field=(2, 3), offset=(0.5, 1.0)))
    assert out[0].tolist() == [[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2], [3, 3, 3, 4, 4, 4], [3, 3, 3, 4, 4, 4]]


def test_nearest_writes_into_a_slice_of_a_larger_volume():
    block = np.zeros((2, 3, 4, 4), np.float32)
    resample_into(block[:, 1], torch.arange(8.0).reshape(2, 2, 2), "nearest", cells(2, 0.5))
    assert block[1, 1, 3, 3] == 7.0 and block[0, 1, 0, 0] == 0.0 and block[0, 1, 0, 2] == 1.0
    assert not block[:, 0].any() and not block[:, 2].any()


def test_a_width_that_is_not_a_multiple_of_the_stride_is_not_stretched():
    # 3 cells of stride 2 centred on pixels 0, 2, 4 over 7 pixels: pixels 5 and 6 lie beyond the
    # last centre and show the last cell; nothing is spread to fill the width.
    assert nearest_cells(7, 3, 0.0, 2.0).tolist() == [0, 1, 1, 2, 2, 2, 2]
    out = np.zeros((1, 1, 7), np.float32)
    resample_into(out, torch.tensor([[[10.0, 20.0, 30.0]]]), "nearest", Geometry((1, 2), (1, 3), (0, 0)))
    assert out[0, 0].tolist() == [10, 20, 20, 30, 30, 30, 30]


def test_same_size_is_a_copy():
    maps = torch.rand(2, 5, 7)
    out = np.zeros((2, 5, 7), np.float32)
    resample_into(out, maps, "nearest", INPUT_GEOMETRY)
    assert np.array_equal(out, maps.numpy())
    resample_into(out, maps, "bilinear", INPUT_GEOMETRY)
    assert np.array_equal(out, maps.numpy())


def test_bilinear_interpolates_between_cell_centres_and_clamps_at_the_edges():
    out = np.zeros((1, 1, 6), np.float32)
    resample_into(out, torch.tensor([[[0.0, 4.0]]]), "bilinear", Geometry((1, 2), (1, 3), (0, 1)))
    # Cell centres on pixels 1 and 3 (stride 2): pixel 0 before the first shows it, 2 is half-way.
    assert out[0, 0].tolist() == [0.0, 0.0, 2.0, 4.0, 4.0, 4.0]
