"""SaveData writes the engine's netCDF; ParaView's stock reader and the filter read it back."""

import os
import tempfile
from pathlib import Path

import numpy as np
from paraview import servermanager
from paraview.simple import Delete, NetCDFReader, SaveData
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())
CAT = str(pvcheck.SAMPLES / "cat.jpg")
FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-pv-"))


def test_savedata_writes_a_volume_the_engine_reads_back_equal():
    import cnn_engine

    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=2)
    source.UpdatePipeline()
    SaveData(str(FOLDER / "cat.nc"), proxy=source)
    volume = cnn_engine.read_netcdf(FOLDER / "cat.nc")
    data = servermanager.Fetch(source)
    rank1 = vtk_to_numpy(data.GetPointData().GetArray("rank1")).reshape(19, 224, 337)[:, ::-1]
    assert np.array_equal(volume.arrays["rank1"], rank1, equal_nan=True)
    assert volume.level_names[18] == "layer4.2" and volume.provenance.weights == "random (seed 0)"
    assert len(volume.predictions) == 5
    Delete(source)


def test_stock_reader_then_filter_keeps_values_and_metadata():
    reader = NetCDFReader(FileName=[str(FOLDER / "cat.nc")])
    normalize = CNNLayerNormalize(Input=reader, Normalization="PerLevelMinMax")
    normalize.UpdatePipeline()
    data = servermanager.Fetch(normalize)
    assert data.GetClassName() == "vtkImageData" and data.GetDimensions() == (337, 224, 19)
    activation = vtk_to_numpy(data.GetPointData().GetArray("activation")).reshape(19, 224, 337)
    assert np.nanmin(activation) == 0.0 and np.nanmax(activation) == 1.0
    names = data.GetFieldData().GetAbstractArray("level_name")
    assert names is not None and names.GetValue(3) == "layer1.0"
    assert data.GetFieldData().GetAbstractArray("cnn_metadata") is not None
    Delete(normalize)
    Delete(reader)


def test_writing_into_a_missing_folder_reports_and_leaves_nothing():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    source.UpdatePipeline()
    target = FOLDER / "missing" / "x.nc"
    from paraview.simple import CreateWriter

    writer = CreateWriter(str(target), source)
    try:
        writer.UpdatePipeline()
    except RuntimeError as error:
        assert str(error) == (f"CNN NetCDF Writer: cannot write {target}: the folder {FOLDER / 'missing'} "
                              "does not exist"), str(error)
    else:
        raise AssertionError("the write did not raise")
    algorithm = writer.GetClientSideObject()
    assert algorithm.last_error and "does not exist" in algorithm.last_error, algorithm.last_error
    assert not target.exists() and not (FOLDER / "missing").exists()
    Delete(writer)
    Delete(source)


def test_filter_output_cannot_be_saved_as_a_volume():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    normalize = CNNLayerNormalize(Input=source, FirstLevel=2, LastLevel=4)
    normalize.UpdatePipeline()
    from paraview.simple import CreateWriter

    writer = CreateWriter(str(FOLDER / "cropped.nc"), normalize)
    try:
        writer.UpdatePipeline()
    except RuntimeError:
        pass
    else:
        raise AssertionError("the write did not raise")
    error = writer.GetClientSideObject().last_error
    assert error and "save the CNN Activation Volume itself" in error, error
    assert not (FOLDER / "cropped.nc").exists()
    assert not [p for p in os.listdir(FOLDER) if p.endswith(".part")]
    Delete(writer)
    Delete(normalize)
    Delete(source)


pvcheck.run(globals())
