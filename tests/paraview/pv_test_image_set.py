"""The CNN Image Set source in pvpython: a folder of images as time steps, set-wide channels and
scale, the cache of computed steps, the image caption, bad sets, and the example state."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from paraview import servermanager
from paraview.simple import Delete, Slice
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())  # CNNImageSet, CNNCaption, ...

FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-image-set-"))
# A small and fast model for most tests: resnet18 with random weights at 64 px (17 levels).
FAST = dict(Model="resnet18", Weights="random", InputSize=64)


def photo_folder(name: str, files: dict) -> Path:
    """A folder FOLDER/name holding ``files`` ({relative path: sample image or bytes})."""
    root = FOLDER / name
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            shutil.copyfile(pvcheck.SAMPLES / content, path)
    return root


# ImageFolder layout: the true class is the subfolder's name. Natural order: espresso, missile, tabby.
THREE = photo_folder("three", {"tabby/cat.jpg": "cat.jpg", "espresso/coffee.jpg": "coffee.jpg",
                               "missile/rocket.jpg": "rocket.jpg"})


def fetch(proxy, time: float, port: int = 0):
    proxy.UpdatePipeline(time=time)
    return servermanager.Fetch(proxy, idx=port)


def field(data, name: str):
    array = data.GetFieldData().GetAbstractArray(name)
    values = [array.GetValue(i) for i in range(array.GetNumberOfValues())]
    return values[0] if len(values) == 1 else values


def information(proxy, name: str):
    proxy.UpdatePropertyInformation()
    return proxy.GetPropertyValue(name)


# Time steps.

def test_the_time_steps_are_the_images_of_the_set():
    source = CNNImageSet(Images=str(THREE), **FAST)
    source.UpdatePipelineInformation()
    assert list(source.TimestepValues) == [0.0, 1.0, 2.0], list(source.TimestepValues)
    Delete(source)


def test_each_step_names_its_image_true_class_and_top1_prediction():
    source = CNNImageSet(Images=str(THREE), **FAST)
    for time, name, truth in [(0, "coffee.jpg", "espresso"), (1, "rocket.jpg", "missile"), (2, "cat.jpg", "tabby")]:
        data = fetch(source, time)
        table = servermanager.Fetch(source, idx=1)
        assert (field(data, "image_name"), field(data, "true_label"), field(data, "set_index")) == (name, truth, time)
        assert field(data, "top1_label") == table.GetColumnByName("label").GetValue(0)
        assert field(data, "set_size") == 3 and table.GetNumberOfRows() == 5
    Delete(source)


# The cache of computed steps.

def test_stepping_back_to_a_computed_step_runs_no_network():
    source = CNNImageSet(Images=str(THREE), **FAST)
    for time in (0, 1, 0, 1, 0):
        fetch(source, time)
    assert information(source, "ForwardPasses") == 2
    assert information(source, "SetScans") == 1  # the first pass over the set, once
    Delete(source)


def test_the_first_pass_over_the_set_shows_in_the_progress_bar():
    source = CNNImageSet(Images=str(THREE), BatchSize=1, **FAST)
    seen = []
    source.GetClientSideObject().AddObserver("ProgressEvent",
                                             lambda obj, event: seen.append(round(obj.GetProgress(), 3)))
    source.UpdatePipeline(time=0)
    # The first pass, image by image (Batch Size 1), to 0.8; then the step itself.
    assert [value for value in seen if 0 < value < 1] == [0.267, 0.533, 0.8] and seen[-1] == 1.0, seen
    Delete(source)


def test_level_spacing_keeps_the_computed_steps():
    source = CNNImageSet(Images=str(THREE), **FAST)
    fetch(source, 0)
    source.LevelSpacing = 7.0
    assert fetch(source, 0).GetSpacing() == (1.0, 1.0, 7.0)
    assert information(source, "ForwardPasses") == 1
    Delete(source)


def test_a_setting_that_changes_the_volumes_drops_the_computed_steps():
    source = CNNImageSet(Images=str(THREE), **FAST)
    fetch(source, 0)
    source.TopK = 2
    data = fetch(source, 0)
    assert information(source, "ForwardPasses") == 2
    assert sorted(data.GetPointData().GetArrayName(i) for i in range(data.GetPointData().GetNumberOfArrays())) == \
        ["image_luminance", "image_rgb", "rank0", "rank1"]
    Delete(source)


def test_only_the_last_eight_steps_are_kept():
    from cnn_paraview.image_set_source import CACHE_STEPS

    ten = photo_folder("ten", {f"img{i}.jpg": "cat.jpg" for i in range(10)})
    source = CNNImageSet(Images=str(ten), ChannelChoice="PerImage", Normalization="None", **FAST)
    for time in range(10):
        fetch(source, time)
    fetch(source, 9)  # kept
    fetch(source, 0)  # dropped: the oldest
    assert CACHE_STEPS == 8 and information(source, "ForwardPasses") == 11
    Delete(source)


# One channel choice and one scale for the set.

def test_set_channels_are_the_same_channels_at_every_step():
    source = CNNImageSet(Images=str(THREE), **FAST)
    channels = [field(fetch(source, time), "channel_index") for time in (0, 1, 2)]
    assert channels[0] == channels[1] == channels[2], channels
    per_image = CNNImageSet(Images=str(THREE), ChannelChoice="PerImage", **FAST)
    assert [field(fetch(per_image, time), "channel_index") for time in (0, 1, 2)] != channels
    Delete(per_image)
    Delete(source)


def test_set_normalization_scales_each_level_by_its_range_over_the_set():
    source = CNNImageSet(Images=str(THREE), **FAST)
    lows, highs = [], []
    for time in (0, 1, 2):
        data = fetch(source, time)
        width, height, levels = data.GetDimensions()
        ranks = np.stack([vtk_to_numpy(data.GetPointData().GetArray(f"rank{k}")).reshape(levels, height, width)
                          for k in range(4)])
        lows.append(np.nanmin(ranks, axis=(0, 2, 3)))
        highs.append(np.nanmax(ranks, axis=(0, 2, 3)))
    # Every level's smallest and largest value over the set are its ends: 0 and 1.
    np.testing.assert_allclose(np.min(lows, axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.max(highs, axis=0), 1.0, atol=1e-6)
    Delete(source)


def test_explicit_channels_are_the_listed_levels_and_channels():
    source = CNNImageSet(Images=str(THREE), ChannelChoice="Explicit", ExplicitChannels="layer4.1:3,7;layer2.0:5",
                         **FAST)
    data = fetch(source, 1)
    assert field(data, "level_name") == ["layer2.0", "layer4.1"]
    assert field(data, "channel_index") == [5, -1, 3, 7]  # two ranks a level: the longer list
    Delete(source)


def test_explicit_without_channels_is_one_message():
    source = CNNImageSet(Images=str(THREE), ChannelChoice="Explicit", **FAST)
    source.UpdatePipeline(time=0)
    assert information(source, "LastError") == ("Channel Choice Explicit needs Explicit Channels: LEVEL:C,C;LEVEL:C, "
                                                "e.g. layer4.2:12,40;layer3.5:7")
    Delete(source)


# What the view shows.

def test_the_image_caption_names_position_file_true_class_and_top1():
    from paraview.simple import CNNCaption

    source = CNNImageSet(Images=str(THREE), Model="efficientnet_lite0", Weights="default")
    caption = CNNCaption(Input=source, Content="Image")
    text = fetch(caption, 0).GetColumn(0).GetValue(0)
    probability = servermanager.Fetch(source, idx=1).GetColumnByName("probability").GetValue(0)
    assert text == f"1/3 coffee.jpg  true: espresso  top-1: espresso {probability * 100:.0f}%", text
    Delete(caption)
    Delete(source)


def test_images_of_different_sizes_share_the_sets_grid_without_pipeline_errors():
    # At 224 px: the cat 337 x 224, Grace Hopper 224 x 262; the set's grid is 337 x 262.
    mixed = photo_folder("mixed", {"a_cat.jpg": "cat.jpg", "b_hopper.jpg": "grace_hopper.jpg"})
    source = CNNImageSet(Images=str(mixed), ChannelChoice="PerImage", Normalization="None", Model="resnet18",
                         Weights="random")
    cut = Slice(Input=source)
    cut.SliceType.Normal = [0.0, 0.0, 1.0]
    with pvcheck.captured() as output:
        dims = [fetch(source, time).GetDimensions() for time in (0, 1, 0)]
        for time in (0, 1, 0):
            cut.UpdatePipeline(time=time)
    assert dims == [(337, 262, 11)] * 3, dims  # resnet18's blocks: 11 levels
    assert output.text == "", output.text
    # Each image fills the lower-left part of the grid (its own points where they are); the rest has no value.
    cat = vtk_to_numpy(fetch(source, 0).GetPointData().GetArray("rank0")).reshape(11, 262, 337)
    assert np.isfinite(cat[5, :224]).all() and np.isnan(cat[5, 224:]).all()
    hopper = vtk_to_numpy(fetch(source, 1).GetPointData().GetArray("rank0")).reshape(11, 262, 337)
    assert np.isfinite(hopper[5, :, :224]).all() and np.isnan(hopper[5, :, 224:]).all()
    Delete(cut)
    Delete(source)


def test_save_data_writes_the_shown_step_as_the_volume_of_its_own_image():
    import cnn_engine
    from paraview.simple import SaveData

    mixed = FOLDER / "mixed"  # from the test above: the cat and Grace Hopper
    source = CNNImageSet(Images=str(mixed), Model="resnet18", Weights="random")
    source.UpdatePipeline(time=1)
    target = FOLDER / "hopper.nc"
    SaveData(str(target), proxy=source)
    volume = cnn_engine.read_netcdf(target)
    assert volume.shape == (11, 262, 224), volume.shape  # its own grid, not the set's 337 x 262
    assert Path(volume.provenance.image_path).name == "b_hopper.jpg" and volume.provenance.set_index == 1
    assert volume.normalization == "set" and np.isfinite(volume.arrays["rank0"][5]).all()
    Delete(source)


# Bad sets.

def test_a_bad_image_is_one_message_at_its_step_and_the_other_steps_work():
    folder = photo_folder("one_bad", {"a.jpg": "cat.jpg", "b.jpg": b"not a picture", "c.jpg": "coffee.jpg"})
    source = CNNImageSet(Images=str(folder), **FAST)
    with pvcheck.captured() as output:
        source.UpdatePipeline(time=1)
    error = information(source, "LastError")
    assert error.startswith(f"image 2 of 3 ({folder / 'b.jpg'}) cannot be shown: not an image file"), error
    assert error.endswith("the other images of the set are not affected"), error
    assert output.text.count("CNN Image Set: image 2 of 3") == 1 and "Traceback" not in output.text, output.text
    assert source.GetDataInformation(0).GetNumberOfPoints() == 0
    assert fetch(source, 2).GetNumberOfPoints() > 0
    assert information(source, "LastError") == ""
    Delete(source)


def test_an_empty_folder_is_one_message():
    empty = FOLDER / "empty"
    empty.mkdir()
    source = CNNImageSet(Images=str(empty), **FAST)
    with pvcheck.captured() as output:
        source.UpdatePipeline()
    error = information(source, "LastError")
    assert error and str(empty) in error and output.text.count("CNN Image Set:") == 1, (error, output.text)
    assert list(source.TimestepValues) == []
    Delete(source)


def test_a_set_of_only_bad_images_is_one_message():
    folder = photo_folder("all_bad", {"a.jpg": b"not a picture", "b.png": b"nor this"})
    source = CNNImageSet(Images=str(folder), **FAST)
    with pvcheck.captured() as output:
        source.UpdatePipeline(time=0)
    assert information(source, "LastError") == \
        f"none of the 2 images of the set can be opened as an image (the first: {folder / 'a.jpg'})"
    assert output.text.count("CNN Image Set:") == 1 and "Traceback" not in output.text, output.text
    Delete(source)


def test_set_properties_out_of_range_are_refused():
    source = CNNImageSet(Images=str(THREE), **FAST)
    for name, value, message in [
        ("ChannelChoice", 3, "ChannelChoice = 3 refused: it must be 0 (PerImage), 1 (Set) or 2 (Explicit); "
                             "ChannelChoice stays 'Set'"),
        ("Normalization", 6, "Normalization = 6 refused: it must be 0 (PerLevelMinMax), 1 (PerLevelPercentile), "
                             "2 (PerLevelZScore), 3 (Global), 4 (None) or 5 (Set); Normalization stays 'Set'"),
        ("BatchSize", 257, "BatchSize = 257 refused: it must be an integer from 0 to 256; BatchSize stays 0"),
    ]:
        setattr(source, name, value)
        assert information(source, "LastError") == message, information(source, "LastError")
        setattr(source, name, 0)
    Delete(source)


# The example state.

def test_the_example_state_steps_through_five_images_with_set_channels_and_captions():
    script = Path(__file__).resolve().parent / "reload_image_set_state.py"
    env = dict(os.environ, PV_PLUGIN_PATH=str(pvcheck.ROOT / "plugin"))
    executable = sys.executable if sys.executable.endswith("pvpython") else "pvpython"
    state = pvcheck.ROOT / "examples" / "image_set_efficientnet_lite0.pvsm"
    result = subprocess.run([executable, str(script), str(state), str(FOLDER / "example")],
                            capture_output=True, text=True, env=env, timeout=600,
                            cwd=str(FOLDER))  # not the project folder: the state's relative list file is found anyway
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["times"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    captions = [step["caption"] for step in summary["steps"]]
    assert [c.split("  ")[0] for c in captions] == ["1/5 cat.jpg", "2/5 coffee.jpg", "3/5 rocket.jpg", "4/5 camera.png",
                                                    "5/5 grace_hopper.jpg"], captions
    assert "true: espresso  top-1: espresso" in captions[1], captions
    assert all(step["rank0"] == [0.0, 1.0] and step["picture_std"] > 10 for step in summary["steps"]), summary


pvcheck.run(globals())
