"""ParaView's stock NetCDF reader on the engine's files: a compressed (netCDF-4) volume opens as
the same image data as its netCDF-3 twin, a set file opens as one time step per image, and a
perturbation sweep's file as one time step per severity."""

import shutil
import tempfile
from pathlib import Path

import numpy as np
from paraview import servermanager
from paraview.simple import Delete, NetCDFReader
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())  # puts the project's environment on the path, netCDF4 loaded safely

import cnn_engine  # noqa: E402
from cnn_engine.netcdf import NETCDF_FORMATS  # noqa: E402
from cnn_engine.set_netcdf import write_set_netcdf  # noqa: E402

FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-pv-set-"))
MODEL = cnn_engine.load_model("resnet18", weights="random", device="cpu")
IMAGES = [pvcheck.SAMPLES / name for name in ("cat.jpg", "coffee.jpg", "astronaut.jpg")]
#: 11 levels x 4 ranks x 64 x 64 each (centre-cropped: one grid for the whole set).
VOLUMES = list(cnn_engine.compute_volumes(MODEL, IMAGES, input_size=64, fit="center-crop",
                                          normalization="per-level-minmax"))


def _fetch(reader, time=None):
    if time is None:
        reader.UpdatePipeline()
    else:
        reader.UpdatePipeline(time)
    return servermanager.Fetch(reader)


def _point_arrays(data) -> dict:
    points = data.GetPointData()
    return {points.GetArrayName(i): vtk_to_numpy(points.GetArray(i)) for i in range(points.GetNumberOfArrays())}


def _levels_in_image_order(values):
    """A point array of the (64, 64, 11) image as (level, row, column), row 0 at the top."""
    return values.reshape(11, 64, 64)[:, ::-1, :]


def test_compressed_volume_opens_as_the_same_image_data_as_netcdf3():
    data = {}
    for format in NETCDF_FORMATS:
        reader = NetCDFReader(FileName=[str(cnn_engine.write_netcdf(VOLUMES[0], FOLDER / f"cat_{format}.nc",
                                                                    format=format))])
        data[format] = _fetch(reader)
        Delete(reader)
    four, three = data["netcdf4"], data["netcdf3"]
    assert four.GetClassName() == three.GetClassName() == "vtkImageData"
    assert four.GetDimensions() == three.GetDimensions() == (64, 64, 11)
    assert four.GetSpacing() == three.GetSpacing() and four.GetOrigin() == three.GetOrigin()
    arrays4, arrays3 = _point_arrays(four), _point_arrays(three)
    assert sorted(arrays4) == sorted(arrays3) == ["image_luminance", "rank0", "rank1", "rank2", "rank3"]
    for name, values in arrays3.items():
        assert np.array_equal(arrays4[name], values, equal_nan=True), name
    assert np.array_equal(_levels_in_image_order(arrays4["rank0"]), VOLUMES[0].arrays["rank0"], equal_nan=True)


def test_set_file_has_one_time_step_per_image():
    for format in NETCDF_FORMATS:
        reader = NetCDFReader(FileName=[str(write_set_netcdf(VOLUMES, FOLDER / f"set_{format}.nc", format=format))])
        reader.UpdatePipelineInformation()
        assert list(reader.TimestepValues) == [0.0, 1.0, 2.0], format
        data = _fetch(reader, 0.0)
        assert data.GetClassName() == "vtkImageData" and data.GetDimensions() == (64, 64, 11), format
        assert sorted(_point_arrays(data)) == ["image_luminance", "rank0", "rank1", "rank2", "rank3"], format
        Delete(reader)


def test_each_time_step_shows_its_images_volume():
    reader = NetCDFReader(FileName=[str(write_set_netcdf(VOLUMES, FOLDER / "steps.nc"))])
    for step, volume in enumerate(VOLUMES):
        arrays = _point_arrays(_fetch(reader, float(step)))
        assert np.array_equal(_levels_in_image_order(arrays["rank0"]), volume.arrays["rank0"], equal_nan=True), step
        luminance = _levels_in_image_order(arrays["image_luminance"])[0]
        assert np.array_equal(luminance, cnn_engine.volume.luminance(volume.image)), step
    Delete(reader)


def test_a_sweep_file_has_one_time_step_per_severity_with_its_volume():
    sweep = cnn_engine.sweep(MODEL, IMAGES[0], "blur", [0, 0.5, 2, 6], layers="blocks", input_size=64,
                             fit="center-crop")
    reader = NetCDFReader(FileName=[str(sweep.to_netcdf(FOLDER / "sweep.nc"))])
    reader.UpdatePipelineInformation()
    assert list(reader.TimestepValues) == [0.0, 0.5, 2.0, 6.0]  # the severities themselves
    levels = len(sweep.levels)
    rank0 = _point_arrays(_fetch(reader, 2.0))["rank0"].reshape(levels, 64, 64)[:, ::-1, :]
    assert np.array_equal(rank0, sweep.volume(2).arrays["rank0"], equal_nan=True)
    Delete(reader)


pvcheck.run(globals(), cleanup=lambda: shutil.rmtree(FOLDER, ignore_errors=True))
