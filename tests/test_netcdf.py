"""netCDF export: a round trip keeps everything; a failed write leaves nothing behind."""

from __future__ import annotations

import numpy as np
import pytest

import cnn_engine
from cnn_engine import FormatError, OutputError


def test_round_trip_keeps_arrays_and_metadata(cat_volume, tmp_path):
    normalized = cat_volume.normalized()
    back = cnn_engine.read_netcdf(normalized.to_netcdf(tmp_path / "cat.nc"))
    # NaN scores (the 3-channel input has no 4th channel) compare equal in the JSON form.
    assert back.metadata_json() == normalized.metadata_json()
    assert back.levels[1:] == normalized.levels[1:]
    assert back.predictions == normalized.predictions
    assert back.provenance == normalized.provenance
    assert back.level_spacing == normalized.level_spacing and back.normalization == "per-level-minmax"
    assert np.array_equal(back.image, normalized.image)
    for name, values in normalized.arrays.items():
        assert np.array_equal(back.arrays[name], values, equal_nan=True)


def test_raw_round_trip_is_bit_identical(cat_volume, tmp_path):
    back = cnn_engine.read_netcdf(cnn_engine.write_netcdf(cat_volume, tmp_path / "raw.nc"))
    assert back.normalization == "none"
    assert np.array_equal(back.arrays["rank0"], cat_volume.arrays["rank0"], equal_nan=True)


def test_folder_given_as_output_file_is_reported(cat_volume, tmp_path):
    with pytest.raises(OutputError, match="is a folder; give a file name ending in .nc"):
        cat_volume.to_netcdf(tmp_path)


def test_missing_folder_is_reported(cat_volume, tmp_path):
    with pytest.raises(OutputError, match=r"the folder .*missing does not exist"):
        cat_volume.to_netcdf(tmp_path / "missing" / "x.nc")


def test_failed_write_leaves_no_file_and_no_temporary(cat_volume, tmp_path):
    broken = cnn_engine.ActivationVolume(
        arrays={"rank0": np.zeros((2, 3, 3), np.float32)},  # does not match the 19 levels
        levels=cat_volume.levels,
        predictions=cat_volume.predictions,
        provenance=cat_volume.provenance,
        image=cat_volume.image,
        level_spacing=1.0,
    )
    target = tmp_path / "broken.nc"
    target.write_bytes(b"previous content")
    with pytest.raises(ValueError):
        broken.to_netcdf(target)
    assert target.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.nc"]


def test_reading_a_foreign_file_is_a_format_error(tmp_path):
    (tmp_path / "x.nc").write_text("not netcdf")
    with pytest.raises(FormatError, match="not a netCDF-3 file"):
        cnn_engine.read_netcdf(tmp_path / "x.nc")


def test_reading_another_netcdf_is_a_format_error(tmp_path):
    from scipy.io import netcdf_file

    with netcdf_file(str(tmp_path / "other.nc"), "w") as nc:
        nc.createDimension("t", 2)
        nc.createVariable("t", "f4", ("t",))[:] = [0, 1]
    with pytest.raises(FormatError, match="not an activation volume written by cnn_engine"):
        cnn_engine.read_netcdf(tmp_path / "other.nc")


def test_metadata_alone_can_be_read(cat_volume, tmp_path):
    from cnn_engine.netcdf import read_metadata

    path = cat_volume.to_netcdf(tmp_path / "m.nc")
    assert read_metadata(path)["levels"][3]["name"] == "layer1.0"
