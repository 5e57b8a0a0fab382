"""The VTK image data carries the arrays, the picture and the per-level metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from vtkmodules.util.numpy_support import vtk_to_numpy

import cnn_engine
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


def test_field_data_gives_each_levels_receptive_field_offset_and_geometry(vtk_image, cat_volume):
    field = vtk_image.GetFieldData()
    assert vtk_to_numpy(field.GetArray("receptive_field")).tolist() == [list(lv.receptive_field) for lv in cat_volume.levels]
    assert vtk_to_numpy(field.GetArray("offset")).tolist() == [list(lv.offset) for lv in cat_volume.levels]
    assert vtk_to_numpy(field.GetArray("receptive_field"))[18].tolist() == [427.0, 427.0]  # layer4.2
    geometry = field.GetAbstractArray("geometry")
    assert [geometry.GetValue(i) for i in range(geometry.GetNumberOfValues())] == ["exact"] * 19
    assert field.GetAbstractArray("rank_by").GetValue(0) == "mean"


@pytest.fixture(scope="module")
def layercam_volume(resnet50_random, cat_path):
    """Channels ranked by their effect on the tabby class, LayerCAM for it at every level, raw."""
    return cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=2, rank_by="effect",
                                     evidence="layercam", target="tabby")


def test_layercam_is_a_point_array_with_the_evidence_map_on_top(layercam_volume):
    image = layercam_volume.to_vtk()
    assert image.GetDimensions() == (337, 224, 20)  # 19 levels and the evidence map
    points = image.GetPointData()
    assert sorted(points.GetArrayName(i) for i in range(points.GetNumberOfArrays())) == [
        "image_luminance", "image_rgb", "layercam", "rank0", "rank1"]
    assert points.GetScalars().GetName() == "rank0"
    layercam = vtk_to_numpy(points.GetArray("layercam")).reshape(20, 224, 337)
    assert np.array_equal(layercam[:19], upright(layercam_volume.arrays["layercam"]))
    assert np.array_equal(layercam[19], layercam_volume.evidence[::-1])


def test_field_data_of_the_evidence_level_says_it_lies_on_the_input_grid(layercam_volume):
    field = layercam_volume.to_vtk().GetFieldData()
    assert vtk_to_numpy(field.GetArray("offset"))[19].tolist() == [0.0, 0.0]
    assert np.isnan(vtk_to_numpy(field.GetArray("receptive_field"))[19]).all()
    assert field.GetAbstractArray("geometry").GetValue(19) == "evidence map on the input grid"
    assert field.GetAbstractArray("level_name").GetValue(19) == "layercam: tabby (281)"
    assert field.GetAbstractArray("rank_by").GetValue(0) == "effect, target class 281"


def test_volume_with_layercam_comes_back_from_vtk(layercam_volume):
    from cnn_engine.vtk_export import volume_from_vtk

    back = volume_from_vtk(layercam_volume.to_vtk())
    assert sorted(back.arrays) == ["layercam", "rank0", "rank1"] and back.top_k == 2
    assert all(np.array_equal(back.arrays[k], v, equal_nan=True) for k, v in layercam_volume.arrays.items())
    assert np.array_equal(back.evidence, layercam_volume.evidence)
    assert back.metadata_json() == layercam_volume.metadata_json()


def test_metadata_from_a_file_before_geometry_gives_nan_and_unknown_fields():
    from vtkmodules.vtkCommonDataModel import vtkFieldData

    from cnn_engine.netcdf import read_metadata
    from cnn_engine.vtk_export import add_metadata_fields

    field = vtkFieldData()
    add_metadata_fields(field, read_metadata(Path(__file__).parent / "data" / "cat_resnet18_before_geometry.nc"))
    assert vtk_to_numpy(field.GetArray("receptive_field")).shape == (11, 2)
    assert np.isnan(vtk_to_numpy(field.GetArray("receptive_field"))).all()
    assert np.isnan(vtk_to_numpy(field.GetArray("offset"))).all()
    assert field.GetAbstractArray("geometry").GetValue(10) == "unknown"
    assert field.GetAbstractArray("rank_by").GetValue(0) == "mean"
