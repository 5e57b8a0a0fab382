"""Orientation: image order in Python, upright (y up) in netCDF and VTK.

A bright marker in the image's top-left corner must be at row 0, column 0 of the arrays, and
at small x, large y in ParaView's coordinates.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnn_engine
from cnn_engine.netcdf import VolumeFile

SIZE = 224


@pytest.fixture(scope="module")
def marker_volume(resnet50_random):
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    picture[:32, :32] = 255  # top-left corner
    return cnn_engine.compute_volume(resnet50_random, picture, layers=["input"], top_k=1)


def test_marker_is_at_row_0_column_0_in_api_arrays(marker_volume):
    level0 = marker_volume.arrays["rank0"][0]
    assert level0[0, 0] > level0[SIZE - 1, SIZE - 1]
    assert marker_volume.image[0, 0].tolist() == [255, 255, 255]
    assert marker_volume.image[-1, -1].tolist() == [0, 0, 0]


def test_marker_is_top_left_in_netcdf(marker_volume, tmp_path):
    path = marker_volume.to_netcdf(tmp_path / "marker.nc")
    with VolumeFile(path) as nc:  # either netCDF format
        y = nc.array("y")
        values = nc.array("rank0", 0)  # (y, x)
        luminance = nc.array("image_luminance", 0)
    top_row = int(np.argmax(y))  # largest y is the top of the picture in ParaView
    assert luminance[top_row, 0] == pytest.approx(255.0) and luminance[0, 0] == 0.0
    assert values[top_row, 0] > values[0, SIZE - 1]


def test_marker_is_top_left_in_vtk(marker_volume):
    image = marker_volume.to_vtk()
    from vtkmodules.util.numpy_support import vtk_to_numpy

    luminance = vtk_to_numpy(image.GetPointData().GetArray("image_luminance"))
    # Point (x=0, y=SIZE-1, z=0): x fastest, then y, then z.
    top_left = image.ComputePointId([0, SIZE - 1, 0])
    bottom_left = image.ComputePointId([0, 0, 0])
    assert luminance[top_left] == pytest.approx(255.0)
    assert luminance[bottom_left] == 0.0
    x, y, _ = image.GetPoint(top_left)
    assert (x, y) == (0.0, SIZE - 1.0)
