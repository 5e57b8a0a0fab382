"""Field data naming the image of a set (the CNN Image Set source), and a step of a set padded to
the set's grid read back as its image's own volume (cnn_engine.vtk_export)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonDataModel import vtkImageData

from cnn_engine.vtk_export import add_set_fields, set_fields_from_vtk, volume_from_vtk


@pytest.fixture(scope="module")
def set_volume(cat_volume):
    provenance = replace(cat_volume.provenance, image_path="/photos/n02123045/cat.jpg", set_index=2,
                         true_label=281, true_label_name="n02123045")
    return replace(cat_volume, provenance=provenance)


def test_set_fields_name_the_image_its_true_class_and_top1(set_volume):
    image = set_volume.to_vtk()
    categories = [f"class {i}" for i in range(1000)]
    categories[281] = "tabby"
    add_set_fields(image.GetFieldData(), set_volume, 25, categories)
    top = set_volume.predictions[0]
    assert set_fields_from_vtk(image) == {
        "image_name": "cat.jpg", "image_path": "/photos/n02123045/cat.jpg", "set_index": 2, "set_size": 25,
        "true_label": "tabby", "true_class_index": 281, "top1_label": top.label,
        "top1_probability": pytest.approx(top.probability)}


def test_without_the_models_classes_the_true_label_is_the_sets(set_volume):
    image = set_volume.to_vtk()
    add_set_fields(image.GetFieldData(), set_volume, 25)
    assert set_fields_from_vtk(image)["true_label"] == "n02123045"


def test_a_volume_outside_a_set_has_no_set_fields(cat_volume):
    assert set_fields_from_vtk(cat_volume.to_vtk()) is None


def test_a_step_padded_to_the_sets_grid_reads_back_as_its_own_volume(cat_volume):
    image = cat_volume.to_vtk()  # 337 x 224, 19 levels
    padded = vtkImageData()
    padded.SetDimensions(337, 300, 19)
    padded.SetSpacing(image.GetSpacing())
    points = image.GetPointData()
    for i in range(points.GetNumberOfArrays()):
        array = points.GetArray(i)
        components = array.GetNumberOfComponents()
        values = numpy_support.vtk_to_numpy(array).reshape(19, 224, 337, components)
        grown = np.full((19, 300, 337, components), np.nan if values.dtype.kind == "f" else 0, values.dtype)
        grown[:, :224] = values  # the image in the lower rows (y up), no value above
        copy = numpy_support.numpy_to_vtk(grown.reshape(-1, components).squeeze(), deep=True)
        copy.SetName(array.GetName())
        padded.GetPointData().AddArray(copy)
    padded.GetFieldData().ShallowCopy(image.GetFieldData())
    back = volume_from_vtk(padded)
    assert back.shape == cat_volume.shape
    assert np.array_equal(back.arrays["rank0"], cat_volume.arrays["rank0"], equal_nan=True)
    assert np.array_equal(back.image, cat_volume.image)
