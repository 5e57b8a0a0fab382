"""A set of volumes in one netCDF file: one time step per image, streamed in, read back lazily,
equal to what went in; a volume that does not fit is refused by name and nothing is written."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import cnn_engine
from cnn_engine import FormatError
from cnn_engine.netcdf import NETCDF_FORMATS
from cnn_engine.set_netcdf import read_set_netcdf, write_set_netcdf

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


@pytest.fixture(scope="module")
def model():
    return cnn_engine.load_model("resnet18", weights="random", device="cpu")


@pytest.fixture(scope="module")
def image_list(tmp_path_factory) -> Path:
    """Three photographs, two with a true label (an ImageNet class name, a WordNet ID), one without."""
    path = tmp_path_factory.mktemp("set") / "set.csv"
    path.write_text(f"{SAMPLES / 'cat.jpg'},tabby\n{SAMPLES / 'coffee.jpg'},n07920052\n{SAMPLES / 'astronaut.jpg'}\n")
    return path


@pytest.fixture(scope="module")
def volumes(model, image_list) -> list[cnn_engine.ActivationVolume]:
    """The set at 64 pixels, centre-cropped (one grid for all), channels and scaling set-wide."""
    return list(cnn_engine.compute_volumes(model, image_list, input_size=64, fit="center-crop", channels="set",
                                           normalization="set"))


@pytest.fixture(scope="module")
def set_file(volumes, tmp_path_factory) -> Path:
    return write_set_netcdf(iter(volumes), tmp_path_factory.mktemp("nc") / "set.nc", count=4)


@pytest.mark.parametrize("format", NETCDF_FORMATS)
def test_set_file_round_trips_every_volume(volumes, tmp_path, format):
    back = read_set_netcdf(write_set_netcdf(iter(volumes), tmp_path / "set.nc", format=format))
    assert len(back) == 3
    for volume, again in zip(volumes, back):
        assert again.metadata_json() == volume.metadata_json()
        assert sorted(again.arrays) == ["rank0", "rank1", "rank2", "rank3"]
        for name, values in volume.arrays.items():
            assert np.array_equal(again.arrays[name], values, equal_nan=True), name
        assert np.array_equal(again.image, volume.image)


def test_set_file_reads_lazily_by_index_with_names(volumes, set_file):
    back = read_set_netcdf(set_file)
    assert back.names == ("cat.jpg", "coffee.jpg", "astronaut.jpg")
    assert back[-1].provenance.image_path == volumes[2].provenance.image_path
    assert [v.provenance.set_index for v in back[0:2]] == [0, 1]
    with pytest.raises(IndexError, match="volume 3 of a set file with 3"):
        back[3]


def test_set_file_keeps_each_images_true_label(set_file):
    provenances = [volume.provenance for volume in read_set_netcdf(set_file)]
    assert [(p.set_index, p.true_label, p.true_label_name) for p in provenances] == [
        (0, 281, "tabby"), (1, 967, "n07920052"), (2, None, None)]


def test_set_file_has_a_time_dimension_with_per_image_names_labels_and_channels(volumes, set_file):
    with xr.open_dataset(set_file) as ds:
        assert ds.rank0.dims == ("time", "level", "y", "x") and ds.rank0.shape == (3, 11, 64, 64)
        assert ds.time.values.tolist() == [0, 1, 2] and ds.time.attrs["axis"] == "T"
        assert ds.image_name.values.tolist() == ["cat.jpg", "coffee.jpg", "astronaut.jpg"]
        assert ds.true_label_name.values.tolist() == ["tabby", "n07920052", ""]
        assert ds.true_label.values.tolist() == [281, 967, -1]
        assert ds.top1_label.values.tolist() == [v.predictions[0].label for v in volumes]
        assert ds.level_channel_index.dims == ("time", "level", "rank")
        assert ds.level_channel_index.values[2].tolist() == [list(lv.channels) for lv in volumes[2].levels]
        assert ds.prediction_label.values[1].tolist() == [p.label for p in volumes[1].predictions]
        assert ds.attrs["cnn_format"] == "cnn_engine activation volume set"
        assert (ds.attrs["image_count"], ds.attrs["set_size"]) == (3, 4)
        # y is upright in the file, and image_name selects a time step.
        coffee = ds.swap_dims(time="image_name").sel(image_name="coffee.jpg")
        assert np.array_equal(coffee.rank0.values, volumes[1].arrays["rank0"][:, ::-1, :], equal_nan=True)


def test_set_file_streams_a_generator_once(volumes, tmp_path):
    taken: list[int] = []

    def one_at_a_time():
        for index, volume in enumerate(volumes):
            taken.append(index)
            yield volume

    path = write_set_netcdf(one_at_a_time(), tmp_path / "set.nc")
    assert taken == [0, 1, 2] and len(read_set_netcdf(path)) == 3


def test_volume_with_another_grid_is_refused_by_name_and_nothing_is_written(model, volumes, tmp_path):
    wider = cnn_engine.compute_volume(model, SAMPLES / "rocket.jpg", input_size=64)  # short side: 64 x 96
    target = tmp_path / "set.nc"
    with pytest.raises(FormatError, match=r"rocket\.jpg does not fit the set file: its grid \(levels, height, "
                                          r"width\) is \(11, \d+, \d+\), the first image's \(cat\.jpg\) "
                                          r"\(11, 64, 64\).*use fit center-crop.*nothing was written"):
        write_set_netcdf(iter([volumes[0], volumes[1], wider.normalized()]), target)
    assert os.listdir(tmp_path) == []


def test_volume_with_another_normalisation_is_refused_by_name(volumes, tmp_path):
    raw = dataclasses.replace(volumes[1], normalization="none")
    with pytest.raises(FormatError, match=r"coffee\.jpg does not fit the set file: its normalisation is none, the "
                                          r"first image's \(cat\.jpg\) set"):
        write_set_netcdf([volumes[0], raw], tmp_path / "set.nc")
    assert os.listdir(tmp_path) == []


def test_empty_set_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(FormatError, match="no volumes to write: the set gave none"):
        write_set_netcdf(iter([]), tmp_path / "set.nc")
    assert os.listdir(tmp_path) == []


def test_two_writes_of_a_set_are_byte_identical(volumes, tmp_path):
    first = write_set_netcdf(volumes, tmp_path / "first.nc").read_bytes()
    time.sleep(1.1)  # HDF5 stores times in whole seconds: a time in the file would differ now
    assert write_set_netcdf(volumes, tmp_path / "second.nc").read_bytes() == first


def test_read_netcdf_of_a_set_file_points_to_read_set_netcdf(set_file):
    with pytest.raises(FormatError, match=r"holds a set of 3 volumes, one per time step: read it with "
                                          r"cnn_engine.read_set_netcdf"):
        cnn_engine.read_netcdf(set_file)


def test_read_set_netcdf_of_a_single_volume_file_points_to_read_netcdf(volumes, tmp_path):
    path = volumes[0].to_netcdf(tmp_path / "cat.nc")
    with pytest.raises(FormatError, match=r"holds one volume, not a set: read it with cnn_engine.read_netcdf"):
        read_set_netcdf(path)
