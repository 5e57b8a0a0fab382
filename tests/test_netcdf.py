"""netCDF export: a round trip keeps everything, in both formats; a failed write leaves nothing
behind; other tools (xarray, any CF reader) read the text, names and units as the volume has them;
the default netCDF-4 is compressed per level and as reproducible as netCDF-3."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.io import netcdf_file

import cnn_engine
from cnn_engine import FormatError, OutputError
from cnn_engine.netcdf import DEFLATE_LEVEL, NETCDF_FORMATS, netcdf4_library


@contextlib.contextmanager
def _dataset(path):
    """The file as the netCDF library sees it: raw values (chars as chars), text attributes as str."""
    with netcdf4_library().Dataset(str(path)) as nc:
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        yield nc


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


@pytest.mark.parametrize("format", NETCDF_FORMATS)
def test_raw_round_trip_is_bit_identical(cat_volume, tmp_path, format):
    back = cnn_engine.read_netcdf(cnn_engine.write_netcdf(cat_volume, tmp_path / "raw.nc", format=format))
    assert back.normalization == "none" and back.metadata_json() == cat_volume.metadata_json()
    for name, values in cat_volume.arrays.items():
        assert np.array_equal(back.arrays[name], values, equal_nan=True), name
    assert np.array_equal(back.image, cat_volume.image)


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
    with pytest.raises(FormatError, match=r"not a netCDF file: .*x\.nc \(neither netCDF-3 nor netCDF-4/HDF5\)"):
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


@pytest.fixture(scope="module")
def evidence_volume(resnet50_random, cat_path):
    """The cat, 19 levels, with a CAM map: every variable the format has, target_evidence included."""
    return cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=4, evidence="cam").normalized()


@pytest.fixture(scope="module")
def evidence_file(evidence_volume, tmp_path_factory):
    return evidence_volume.to_netcdf(tmp_path_factory.mktemp("nc") / "cat.nc")


@pytest.fixture(scope="module")
def accented_volume(evidence_volume):
    """The same volume with non-ASCII level names, layer types, labels and image name."""
    levels = list(evidence_volume.levels)
    levels[3] = dataclasses.replace(levels[3], name="couche_é.0", layer_type="Bloc résiduel")
    predictions = list(evidence_volume.predictions)
    predictions[0] = dataclasses.replace(predictions[0], label="crème brûlée")
    return dataclasses.replace(
        evidence_volume, levels=levels, predictions=predictions,
        evidence_info=dataclasses.replace(evidence_volume.evidence_info, target_label="crème brûlée"),
        provenance=dataclasses.replace(evidence_volume.provenance, image_path="/photos/chat_été.jpg"),
    )


def _text_variables(path) -> list[str]:
    with _dataset(path) as nc:
        return sorted(name for name, var in nc.variables.items() if var.dtype == np.dtype("S1"))


def test_xarray_reads_every_text_variable_as_the_volume_values(evidence_volume, evidence_file):
    expected = {
        "level_name": [lv.name for lv in evidence_volume.levels],
        "level_type": [lv.layer_type for lv in evidence_volume.levels],
        "level_geometry": [lv.geometry for lv in evidence_volume.levels],
        "prediction_label": [p.label for p in evidence_volume.predictions],
    }
    assert _text_variables(evidence_file) == sorted(expected)
    with xr.open_dataset(evidence_file) as ds:
        assert {name: ds[name].values.tolist() for name in expected} == expected
    assert expected["level_name"][:4] == ["input", "relu", "maxpool", "layer1.0"]


def test_char_variables_hold_the_utf8_bytes_nul_padded(evidence_file):
    with _dataset(evidence_file) as nc:
        names = nc.variables["level_name"]
        assert names.dimensions == ("level", "level_name_strlen") and names.shape == (19, 8)
        assert names[0].tobytes() == b"input\0\0\0" and names[3].tobytes() == b"layer1.0"
        assert names.getncattr("_Encoding") == "utf-8"


def test_every_variable_has_a_long_name(evidence_file):
    with _dataset(evidence_file) as nc:
        assert {"x", "y", "level", "image_luminance", "image_rgb", "target_evidence"} <= set(nc.variables)
        assert [name for name, var in nc.variables.items() if not var.__dict__.get("long_name", "").strip()] == []


def test_units_are_udunits_dimensionless_and_absent_only_on_text_indices_and_counts(evidence_file):
    with _dataset(evidence_file) as nc:
        units = {name: var.__dict__.get("units") for name, var in nc.variables.items()}
    no_units = {"level_index", "level_name", "level_type", "level_geometry", "level_native_shape",
                "level_channel_index", "prediction_index", "prediction_label"}
    assert {name for name, value in units.items() if value is None} == no_units
    assert {value for name, value in units.items() if name not in no_units} == {"1"}


def test_conventions_is_cf_1_8(evidence_file):
    with xr.open_dataset(evidence_file) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"


def test_level_index_selects_a_level_in_xarray(evidence_volume, evidence_file):
    with xr.open_dataset(evidence_file) as ds:
        level = ds.swap_dims(level="level_index").sel(level_index=3)
        assert level.level_name.item() == "layer1.0"
        # y is upright in the file: image row 0 is the last y.
        assert np.array_equal(level.rank0.values, evidence_volume.arrays["rank0"][3][::-1], equal_nan=True)
        assert np.array_equal(ds.isel(level=3).rank0.values, level.rank0.values, equal_nan=True)


def test_level_name_selects_a_level_in_xarray(evidence_volume, evidence_file):
    with xr.open_dataset(evidence_file) as ds:
        level = ds.swap_dims(level="level_name").sel(level_name="layer1.0")
        assert level.level_index.item() == 3 and level.level_type.item() == "Bottleneck"
        assert np.array_equal(level.rank1.values, evidence_volume.arrays["rank1"][3][::-1], equal_nan=True)


def test_level_coordinate_stays_index_times_spacing(evidence_volume, evidence_file):
    with xr.open_dataset(evidence_file) as ds:
        assert ds.level_index.values.tolist() == list(range(19))
        expected = np.arange(19, dtype=np.float32) * np.float32(evidence_volume.level_spacing)
        assert np.array_equal(ds.level.values, expected)


def test_evidence_volume_round_trips_equal(evidence_volume, evidence_file):
    back = cnn_engine.read_netcdf(evidence_file)
    assert back.metadata_json() == evidence_volume.metadata_json()
    assert np.array_equal(back.evidence, evidence_volume.evidence)
    for name, values in evidence_volume.arrays.items():
        assert np.array_equal(back.arrays[name], values, equal_nan=True)


def test_non_ascii_text_reads_back_in_xarray(accented_volume, tmp_path):
    path = accented_volume.to_netcdf(tmp_path / "accents.nc")
    with xr.open_dataset(path) as ds:
        assert ds.level_name.values[3] == "couche_é.0" and ds.level_type.values[3] == "Bloc résiduel"
        assert ds.prediction_label.values.tolist() == [p.label for p in accented_volume.predictions]
        assert ds.target_evidence.attrs["target_label"] == "crème brûlée"
        assert ds.attrs["title"] == "resnet50 activations of chat_été.jpg"


def test_non_ascii_text_round_trips_through_read_netcdf(accented_volume, tmp_path):
    back = cnn_engine.read_netcdf(accented_volume.to_netcdf(tmp_path / "accents.nc"))
    assert back.levels[3].name == "couche_é.0" and back.levels[3].layer_type == "Bloc résiduel"
    assert back.predictions[0].label == "crème brûlée" and back.evidence_info.target_label == "crème brûlée"
    assert back.provenance.image_path == "/photos/chat_été.jpg"
    assert back.metadata_json() == accented_volume.metadata_json()


def test_ncdump_prints_the_level_names_as_text(evidence_volume, evidence_file):
    import subprocess

    dump = subprocess.run(["ncdump", "-v", "level_name", str(evidence_file)], capture_output=True, text=True,
                          check=True).stdout
    data = dump.split("data:", 1)[1]
    names = [name for name in evidence_volume.level_names]
    assert f'level_name =\n  "{names[0]}",\n  "{names[1]}",' in data, data[:400]
    assert all(f'"{name}"' in data for name in names)


# Per-level geometry, the ranking behind the scores, and LayerCAM at every level.

#: Written by the engine before it recorded level geometry, class rankings or LayerCAM (commit
#: b2c9b18: resnet18, random weights, the cat at input size 32, top 2, a CAM map, normalised).
FILE_BEFORE_GEOMETRY = Path(__file__).parent / "data" / "cat_resnet18_before_geometry.nc"


@pytest.fixture(scope="module")
def layercam_volume(resnet50_random, cat_path):
    """Channels ranked by their effect on the tabby class, LayerCAM for it at every level."""
    return cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=2, rank_by="effect",
                                     evidence="layercam", target="tabby").normalized()


@pytest.fixture(scope="module")
def layercam_file(layercam_volume, tmp_path_factory):
    return layercam_volume.to_netcdf(tmp_path_factory.mktemp("layercam") / "cat.nc")


def test_level_geometry_variables_hold_each_levels_cells_in_input_pixels(evidence_volume, evidence_file):
    levels = evidence_volume.levels
    with xr.open_dataset(evidence_file) as ds:
        assert ds.level_receptive_field.dims == ds.level_offset.dims == ("level", "yx")
        assert ds.level_receptive_field.values.tolist() == [list(lv.receptive_field) for lv in levels]
        assert ds.level_offset.values.tolist() == [list(lv.offset) for lv in levels]
        assert ds.level_stride.values.tolist() == [list(lv.stride) for lv in levels]
        assert ds.level_geometry.values.tolist() == ["exact"] * 19
        relu = ds.swap_dims(level="level_name").sel(level_name="relu")  # conv1: 7x7, stride 2
        assert relu.level_receptive_field.values.tolist() == [7.0, 7.0]
        assert relu.level_stride.values.tolist() == [2.0, 2.0]
        last = ds.swap_dims(level="level_name").sel(level_name="layer4.2")
        assert last.level_receptive_field.values.tolist() == [427.0, 427.0]
        assert last.level_stride.values.tolist() == [32.0, 32.0]


def test_level_geometry_variables_say_how_cells_map_to_pixels(evidence_file):
    with _dataset(evidence_file) as nc:
        for name in ("level_stride", "level_receptive_field", "level_offset"):
            var = nc.variables[name]
            assert "input pixels" in var.long_name and var.units == "1", name
            assert "(level_offset[0] + r * level_stride[0], level_offset[1] + c * level_stride[1])" in var.comment
        assert "exact" in nc.variables["level_geometry"].long_name


def test_geometry_round_trips_through_read_netcdf(evidence_volume, evidence_file):
    back = cnn_engine.read_netcdf(evidence_file)
    assert [(lv.stride, lv.receptive_field, lv.offset, lv.geometry) for lv in back.levels] == [
        (lv.stride, lv.receptive_field, lv.offset, lv.geometry) for lv in evidence_volume.levels]


def test_scores_say_they_were_ranked_by_mean_activation(evidence_file):
    with _dataset(evidence_file) as nc:
        scores = nc.variables["level_channel_score"]
        assert scores.ranking == "mean" and scores.comment == "mean activation of the channel's map"
        assert "target_index" not in scores.ncattrs()


def test_scores_say_they_were_ranked_by_effect_on_the_target_class(layercam_file):
    with xr.open_dataset(layercam_file) as ds:
        attrs = ds.level_channel_score.attrs
    assert attrs["ranking"] == "effect" and attrs["target_index"] == 281 and attrs["target_label"] == "tabby"
    assert attrs["comment"].startswith("first-order effect on the target class's log-probability")
    assert attrs["long_name"] == "ranking score (effect) of each kept channel"


def test_layercam_is_a_level_y_x_variable_upright_like_the_ranks(layercam_volume, layercam_file):
    with _dataset(layercam_file) as nc:
        layercam = nc.variables["layercam"]
        assert layercam.dimensions == ("level", "y", "x") and len(nc.dimensions["rank"]) == 2
        assert np.array_equal(layercam[:], layercam_volume.arrays["layercam"][:, ::-1, :])
        assert layercam.method == "layercam" and layercam.target_index == 281 and layercam.target_label == "tabby"
        assert layercam.long_name == "LayerCAM class evidence of each level for tabby (class 281)"
        assert layercam.units == "1" and layercam.normalization == "per-level-minmax"


def test_layercam_round_trips_beside_the_ranks_without_being_one(layercam_volume, layercam_file):
    back = cnn_engine.read_netcdf(layercam_file)
    assert sorted(back.arrays) == ["layercam", "rank0", "rank1"] and back.top_k == 2
    assert np.array_equal(back.arrays["layercam"], layercam_volume.arrays["layercam"])
    assert back.provenance.rank_by == "effect" and back.provenance.rank_target == 281
    assert back.evidence_info.method == "layercam"
    assert back.metadata_json() == layercam_volume.metadata_json()


def test_file_written_before_geometry_and_layercam_reads_as_unknown():
    old = cnn_engine.read_netcdf(FILE_BEFORE_GEOMETRY)
    assert old.shape == (11, 32, 48) and sorted(old.arrays) == ["rank0", "rank1"] and old.top_k == 2
    assert all(np.isnan(lv.receptive_field).all() and np.isnan(lv.offset).all() for lv in old.levels)
    assert {lv.geometry for lv in old.levels} == {"unknown"}
    assert old.levels[3].stride == (4.0, 4.0) and old.levels[3].name == "layer1.0"
    assert old.provenance.rank_by == "mean" and old.provenance.rank_target is None
    assert old.evidence_info.method == "cam"


def test_file_written_before_geometry_is_written_again_with_nan_geometry(tmp_path):
    again = cnn_engine.read_netcdf(FILE_BEFORE_GEOMETRY).to_netcdf(tmp_path / "again.nc")
    with xr.open_dataset(again) as ds:
        assert np.isnan(ds.level_receptive_field.values).all() and np.isnan(ds.level_offset.values).all()
        assert set(ds.level_geometry.values.tolist()) == {"unknown"}
        assert "layercam" not in ds.variables


# The two formats: compressed netCDF-4 (the default) and netCDF-3.

@pytest.fixture(scope="module")
def small_volume():
    """resnet18 (random weights) on the cat at 64 pixels: 11 levels x 4 ranks x 64 x 96."""
    model = cnn_engine.load_model("resnet18", weights="random", device="cpu")
    return cnn_engine.compute_volume(model, Path(__file__).parent.parent / "sample_images" / "cat.jpg",
                                     input_size=64).normalized()


def test_default_format_is_netcdf4_deflated_one_level_plane_per_chunk(small_volume, tmp_path):
    path = small_volume.to_netcdf(tmp_path / "cat.nc")
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    with _dataset(path) as nc:
        assert nc.data_model == "NETCDF4"
        for name in ("rank0", "rank3", "image_luminance"):
            assert nc.variables[name].chunking() == [1, 64, 96], name
            assert nc.variables[name].filters()["zlib"], name
            assert not nc.variables[name].filters()["shuffle"], name  # nearest resampling: see netcdf.shuffles
            assert nc.variables[name].filters()["complevel"] == DEFLATE_LEVEL == 1, name
        assert nc.variables["level_name"].chunking() == "contiguous"
        assert [name for name, var in nc.variables.items() if "_FillValue" in var.ncattrs()] == []


def test_netcdf3_format_is_the_classic_64_bit_offset_file_scipy_reads(small_volume, tmp_path):
    path = cnn_engine.write_netcdf(small_volume, tmp_path / "cat.nc", format="netcdf3")
    assert path.read_bytes()[:4] == b"CDF\x02"
    with netcdf_file(str(path), "r", mmap=False) as nc:
        assert nc.variables["rank0"].dimensions == ("level", "y", "x") and nc.cnn_format == b"cnn_engine activation volume"


def test_both_formats_hold_the_same_variables_dimensions_and_attributes(small_volume, tmp_path):
    def layout(path):
        with _dataset(path) as nc:
            return ({name: len(dim) for name, dim in nc.dimensions.items()},
                    {name: (var.dtype.str[1:], var.dimensions, var.__dict__) for name, var in nc.variables.items()},
                    nc.__dict__)

    four = layout(cnn_engine.write_netcdf(small_volume, tmp_path / "4.nc", format="netcdf4"))
    three = layout(cnn_engine.write_netcdf(small_volume, tmp_path / "3.nc", format="netcdf3"))
    assert four == three


def test_compressed_file_is_a_fifth_of_the_netcdf3_file(cat_volume, tmp_path):
    """ResNet-50, the cat: 19 levels x 4 ranks x 224 x 337, per-level min-max (the export default)."""
    volume = cat_volume.normalized()
    three = cnn_engine.write_netcdf(volume, tmp_path / "3.nc", format="netcdf3").stat().st_size
    four = cnn_engine.write_netcdf(volume, tmp_path / "4.nc").stat().st_size
    assert three > 29_000_000 and four < three / 4


@pytest.mark.parametrize("format", NETCDF_FORMATS)
def test_two_writes_of_a_volume_are_byte_identical(small_volume, tmp_path, format):
    first = cnn_engine.write_netcdf(small_volume, tmp_path / "first.nc", format=format).read_bytes()
    time.sleep(1.1)  # HDF5 stores times in whole seconds: a time in the file would differ now
    second = cnn_engine.write_netcdf(small_volume, tmp_path / "second.nc", format=format).read_bytes()
    assert first == second


def test_netcdf4_write_leaves_only_the_file(small_volume, tmp_path):
    """HDF5 writes a scratch file that has a name only while HDF5 creates it: it is gone after."""
    scratch = [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(".cat.nc.")]
    small_volume.to_netcdf(tmp_path / "cat.nc")
    assert os.listdir(tmp_path) == ["cat.nc"]
    assert [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(".cat.nc.")] == scratch


def test_unknown_format_is_a_format_error_before_anything_is_written(small_volume, tmp_path):
    with pytest.raises(FormatError, match=r"unknown netCDF format 'hdf5': choose one of netcdf4, netcdf3"):
        cnn_engine.write_netcdf(small_volume, tmp_path / "x.nc", format="hdf5")
    assert os.listdir(tmp_path) == []


def test_set_position_and_true_label_travel_in_a_single_image_file(small_volume, tmp_path):
    provenance = dataclasses.replace(small_volume.provenance, set_index=7, true_label=281,
                                     true_label_name="n02123045")
    volume = dataclasses.replace(small_volume, provenance=provenance)
    path = volume.to_netcdf(tmp_path / "cat.nc")
    back = cnn_engine.read_netcdf(path).provenance
    assert (back.set_index, back.true_label, back.true_label_name) == (7, 281, "n02123045")
    with xr.open_dataset(path) as ds:
        assert (ds.attrs["set_index"], ds.attrs["true_label"], ds.attrs["true_label_name"]) == (7, 281, "n02123045")


def test_file_written_before_sets_reads_without_set_position_or_true_label():
    old = cnn_engine.read_netcdf(FILE_BEFORE_GEOMETRY).provenance
    assert (old.set_index, old.true_label, old.true_label_name) == (None, None, None)
