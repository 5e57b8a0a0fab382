"""The VTK image data carries the arrays, the picture and the per-level metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy

from cnn_engine.volume import upright


@pytest.fixture(scope="module")
def vtk_image(cat_volume):
    return cat_volume.to_vtk()


def test_grid_matches_the_volume(vtk_image, cat_volume):
    assert vtk_image.GetDimensions() == (337, 224, 19)
    assert vtk_image.GetSpacing() == pytest.approx((1.0, 1.0, cat_volume.level_spacing))
    assert vtk_image.GetOrigin() == (0.0, 0.0, 0.0)


def test_rank_arrays_are_the_upright_volume_arrays(vtk_image, cat_volume):
    rank2 = vtk_to_numpy(vtk_image.GetPointData().GetArray("rank2")).reshape(19, 224, 337)
    assert np.array_equal(rank2, upright(cat_volume.arrays["rank2"]), equal_nan=True)


def test_picture_is_attached_on_every_level(vtk_image, cat_volume):
    rgb = vtk_to_numpy(vtk_image.GetPointData().GetArray("image_rgb")).reshape(19, 224, 337, 3)
    assert np.array_equal(rgb[7], cat_volume.image[::-1])


def test_field_data_describes_every_level(vtk_image, cat_volume):
    field = vtk_image.GetFieldData()
    names = field.GetAbstractArray("level_name")
    assert [names.GetValue(i) for i in range(names.GetNumberOfValues())] == cat_volume.level_names
    channels = vtk_to_numpy(field.GetArray("channel_index"))
    assert channels.shape == (19, 4)
    assert channels[5].tolist() == list(cat_volume.levels[5].channels)
    metadata = json.loads(field.GetAbstractArray("cnn_metadata").GetValue(0))
    assert metadata["provenance"]["model"] == "resnet50"
    assert [p["label"] for p in metadata["predictions"]] == [p.label for p in cat_volume.predictions]


def test_volume_comes_back_from_vtk(vtk_image, cat_volume):
    from cnn_engine.vtk_export import volume_from_vtk

    back = volume_from_vtk(vtk_image)
    assert back.metadata_json() == cat_volume.metadata_json()
    assert np.array_equal(back.image, cat_volume.image)
    assert all(np.array_equal(back.arrays[k], cat_volume.arrays[k], equal_nan=True) for k in cat_volume.arrays)


def test_predictions_table_has_one_row_per_prediction(cat_volume):
    from cnn_engine.vtk_export import predictions_table

    table = predictions_table(cat_volume)
    assert table.GetNumberOfRows() == 5
    assert [table.GetColumn(i).GetName() for i in range(4)] == ["rank", "class_index", "label", "probability"]
    assert table.GetColumnByName("label").GetValue(0) == cat_volume.predictions[0].label
