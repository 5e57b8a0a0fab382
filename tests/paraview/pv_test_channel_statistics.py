"""The CNN Channel Statistics source in pvpython: the table of every level and channel, the chosen
channel's class means, the exemplar atlas, feature probes, bad input, and the chosen channel shown
by a CNN Image Set through a property link that a state file keeps."""

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from paraview import servermanager
from paraview.simple import Delete, SaveState
from PIL import Image, ImageOps
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())  # CNNImageSet, ...
from paraview.simple import CNNChannelStatistics  # noqa: E402

FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-statistics-"))
# The trained offline model at 64 px: the real thing, small enough for a test.
FAST = dict(Model="efficientnet_lite0", InputSize=64)


def labelled_folder(name: str, classes: dict) -> Path:
    """FOLDER/name with a subfolder per class (an ImageNet class name): three pictures of each
    sample photograph ({class: photo}), the whole, a crop and the mirror image."""
    root = FOLDER / name
    for label, photo in classes.items():
        (root / label).mkdir(parents=True)
        picture = Image.open(pvcheck.SAMPLES / photo).convert("RGB")
        width, height = picture.size
        for i, variant in enumerate([picture, picture.crop((0, 0, width * 4 // 5, height * 4 // 5)),
                                     ImageOps.mirror(picture)]):
            variant.save(root / label / f"{label}{i}.png")
    return root


TWO_CLASSES = labelled_folder("two", {"tabby": "cat.jpg", "espresso": "coffee.jpg"})
_shared = {}


def statistics():
    """One source over TWO_CLASSES, shared by the tests that only read it (the statistics take a
    pass over the set); each test sets the Level and Channel it needs. Batch Size 1, and its
    progress kept in _shared["progress"]."""
    if "source" not in _shared:
        source = CNNChannelStatistics(registrationName="CNN Channel Statistics", Images=str(TWO_CLASSES), BatchSize=1,
                                      **FAST)
        seen = _shared["progress"] = []
        source.GetClientSideObject().AddObserver("ProgressEvent",
                                                 lambda obj, event: seen.append(round(obj.GetProgress(), 3)))
        source.UpdatePipeline()
        _shared["source"] = source
    return _shared["source"]


def engine_statistics():
    """The same statistics from cnn_engine directly, with the source's own model and batches."""
    if "engine" not in _shared:
        import cnn_engine

        model = statistics().GetClientSideObject().session.current_model
        _shared["engine"] = cnn_engine.channel_statistics(model, str(TWO_CLASSES), input_size=64, batch_size=1)
    return _shared["engine"]


def information(proxy, name: str):
    proxy.UpdatePropertyInformation()
    return proxy.GetPropertyValue(name)


def columns(table) -> dict:
    """A vtkTable as {column name: list of values}."""
    result = {}
    for i in range(table.GetNumberOfColumns()):
        column = table.GetColumn(i)
        result[table.GetColumnName(i)] = [column.GetValue(r) for r in range(table.GetNumberOfRows())]
    return result


def same(a, b) -> bool:
    """Equal, NaN equal to NaN."""
    return all((isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)) or x == y
               for x, y in zip(a, b)) and len(a) == len(b)


def choose(source, level: int, channel: int) -> None:
    source.Level = level
    source.Channel = channel
    source.UpdatePipeline()


def field(data, name: str) -> list:
    array = data.GetFieldData().GetAbstractArray(name)
    return [array.GetValue(i) for i in range(array.GetNumberOfValues())]


# The table.

def test_the_table_has_a_row_per_level_and_channel_as_the_engine_computes_them():
    table = columns(servermanager.Fetch(statistics(), idx=0))
    rows = engine_statistics().rows()
    assert list(table) == ["level", "level_index", "channel", "preferred_class", "preferred_class_name",
                           "selectivity", "auroc", "mean", "images"], list(table)
    assert len(table["level"]) == sum(engine_statistics().channel_counts) == len(rows)
    for name in ("level", "channel", "preferred_class", "preferred_class_name", "selectivity", "auroc", "mean",
                 "images"):
        assert same(table[name], [getattr(row, name) for row in rows]), name
    assert table["level_index"] == [engine_statistics().levels.index(row.level) for row in rows]
    assert set(table["preferred_class_name"]) == {"tabby", "espresso"}


# The chosen channel.

def test_the_chosen_channel_table_holds_its_class_means_and_standard_deviations():
    source = statistics()
    choose(source, 5, 3)
    stats = engine_statistics()
    table = columns(servermanager.Fetch(source, idx=1))
    assert table["class"] == ["tabby", "espresso"] and table["class_index"] == [281, 967]
    assert table["images"] == [3, 3]
    np.testing.assert_allclose(table["mean"], stats.class_mean[5][3])
    np.testing.assert_allclose(table["sd"], stats.class_std[5][3])
    assert information(source, "ChosenChannel") == f"{stats.levels[5]}:3"


def test_choosing_levels_and_channels_computes_the_statistics_once():
    source = statistics()
    for level, channel in [(1, 0), (5, 7), (-1, 100), (9, 2)]:
        choose(source, level, channel)
        assert servermanager.Fetch(source, idx=1).GetNumberOfRows() == 2
    assert information(source, "StatisticsRuns") == 1


def test_level_minus_one_is_the_last_level():
    source = statistics()
    choose(source, -1, 12)
    assert information(source, "ChosenChannel") == f"{engine_statistics().levels[-1]}:12"
    assert information(source, "ChannelRange") == [0, 1279]  # _swish_1: 1280 channels
    assert information(source, "LevelRange") == [-1, len(engine_statistics().levels) - 1]


def test_a_channel_the_level_lacks_is_one_message_and_the_table_stays():
    source = statistics()
    with pvcheck.captured() as output:
        choose(source, 0, 3)
        servermanager.Fetch(source, idx=1)
    assert information(source, "LastError") == "channel 3 does not exist on level 'input', which has channels 0 to 2"
    assert output.text.count("CNN Channel Statistics:") == 1 and "Traceback" not in output.text, output.text
    assert source.GetDataInformation(0).GetNumberOfRows() == sum(engine_statistics().channel_counts)
    assert source.GetDataInformation(1).GetNumberOfRows() == 0
    choose(source, 0, 2)
    assert information(source, "LastError") == ""


def test_a_level_the_model_lacks_is_one_message():
    source = statistics()
    choose(source, 40, 0)
    levels = engine_statistics().levels
    assert information(source, "LastError") == (f"Level 40 does not exist: this model's layer set has {len(levels)} "
                                                f"levels, 0 to {len(levels) - 1} (-1: the last, {levels[-1]})")
    choose(source, 1, 0)


# The atlas.

def test_the_atlas_is_the_levels_exemplar_atlas_upright_on_its_canvas():
    from cnn_engine.atlas import exemplar_atlas
    from cnn_paraview.statistics_source import atlas_canvas

    source = statistics()
    choose(source, 6, 0)
    image = servermanager.Fetch(source, idx=2)
    width, height, _ = image.GetDimensions()
    assert (width, height) == atlas_canvas(9) == (798, 854)
    pixels = vtk_to_numpy(image.GetPointData().GetArray("atlas")).reshape(height, width, 3)[::-1]  # row 0 = top
    atlas = exemplar_atlas(engine_statistics(), 6).rgb
    assert atlas.shape == (height, width, 3)  # 16 channels of 6 exemplars: the full canvas
    np.testing.assert_array_equal(pixels, atlas)


# Progress, notes and bad input.

def test_the_progress_bar_follows_the_images():
    statistics()
    seen = _shared["progress"]  # the shared source's first update: Batch Size 1
    # Image by image to 0.9; then the tables and the atlas.
    assert [value for value in seen if 0 < value < 1] == [0.15, 0.3, 0.45, 0.6, 0.75, 0.9], seen
    assert seen[-1] == 1.0, seen


def test_a_set_of_one_class_says_that_selectivity_is_undefined():
    one = labelled_folder("one", {"tabby": "cat.jpg"})
    source = CNNChannelStatistics(Images=str(one), **FAST)
    with pvcheck.captured() as output:
        source.UpdatePipeline()
    assert ("the set has one class only (tabby): selectivity and AUROC compare a class with the others and are "
            "undefined (NaN); add images of other classes") in output.text, output.text
    assert information(source, "LastError") == ""
    table = columns(servermanager.Fetch(source, idx=0))
    assert all(math.isnan(v) for v in table["selectivity"]) and set(table["preferred_class_name"]) == {"tabby"}
    Delete(source)


def test_no_images_is_one_message():
    source = CNNChannelStatistics(**FAST)
    with pvcheck.captured() as output:
        source.UpdatePipeline()
    assert information(source, "LastError").startswith("no images chosen: set Images to a folder with one subfolder "
                                                       "per class")
    assert output.text.count("CNN Channel Statistics:") == 1, output.text
    Delete(source)


def test_statistics_properties_out_of_range_are_refused():
    source = CNNChannelStatistics(Images=str(TWO_CLASSES), **FAST)
    for name, value, message in [
        ("Stimuli", 2, "Stimuli = 2 refused: it must be 0 (ImageSet) or 1 (FeatureProbes); Stimuli stays 'ImageSet'"),
        ("TopN", 0, "TopN = 0 refused: it must be an integer from 1 to 100; TopN stays 9"),
        ("Channel", -3, "Channel = -3 refused: it must be an integer from 0 to 999999; Channel stays 0"),
    ]:
        setattr(source, name, value)
        assert information(source, "LastError") == message, information(source, "LastError")
    Delete(source)


# Feature probes.

def test_feature_probes_give_tuning_columns_and_the_chosen_channels_curves():
    # ResNet-18 with random weights at 32 px: the stimuli pass quickly; the columns are what counts here.
    source = CNNChannelStatistics(Stimuli="FeatureProbes", Model="resnet18", Weights="random", InputSize=32, Level=1,
                                  Channel=4)
    source.UpdatePipeline()
    probes = source.GetClientSideObject().result
    table = columns(servermanager.Fetch(source, idx=0))
    assert list(table) == ["level", "level_index", "channel", "preferred_orientation_deg", "osi",
                           "preferred_frequency", "preferred_hue_deg", "hsi", "label"], list(table)
    rows = probes.rows()
    for name in ("level", "channel", "preferred_orientation_deg", "osi", "preferred_hue_deg", "hsi", "label"):
        assert same(table[name], [getattr(row, name) for row in rows]), name
    curves = columns(servermanager.Fetch(source, idx=1))
    tuning = probes.tuning(1, 4)
    assert list(curves) == ["orientation_deg", "orientation_response", "frequency_cycles_per_pixel",
                            "frequency_response", "hue_deg", "hue_response"], list(curves)
    for name, values in [("orientation_deg", tuning.orientations_deg), ("orientation_response", tuning.orientation),
                         ("hue_deg", tuning.hues_deg), ("hue_response", tuning.hue)]:
        np.testing.assert_allclose(curves[name][:len(values)], values, err_msg=name)
    shortest = len(tuning.frequencies)
    np.testing.assert_allclose(curves["frequency_response"][:shortest], tuning.frequency)
    assert all(math.isnan(v) for v in curves["frequency_cycles_per_pixel"][shortest:])  # padded to the longest
    assert servermanager.Fetch(source, idx=2).GetNumberOfPoints() == 0  # no exemplars: no atlas
    Delete(source)


# The chosen channel in the image set.

def test_choosing_a_channel_shows_it_in_the_image_set_at_every_step():
    from cnn_paraview.scenes import choose_channel, link_chosen_channel

    source = statistics()
    # Normalization None: no first pass over the set, which this test does not need.
    images = CNNImageSet(registrationName="CNN Image Set", Images=str(TWO_CLASSES), ChannelChoice="Explicit",
                         ExplicitChannels="_blocks.0:0", Normalization="None", **FAST)
    _shared["image_set"] = images
    link_chosen_channel(source, images)
    levels = engine_statistics().levels
    for level, channel in [(5, 3), (12, 40)]:
        assert choose_channel(source, level, channel) == f"{levels[level]}:{channel}"
        for time in (0, 4):
            images.UpdatePipeline(time=time)
            data = servermanager.Fetch(images)
            assert (field(data, "level_name"), field(data, "channel_index")) == ([levels[level]], [channel])
    assert information(source, "StatisticsRuns") == 1


def test_the_link_is_saved_in_the_state_and_works_in_a_fresh_pvpython():
    if "image_set" not in _shared:
        test_choosing_a_channel_shows_it_in_the_image_set_at_every_step()
    state = FOLDER / "study.pvsm"
    SaveState(str(state))
    summary = reload_state(state, 7, 21)
    assert summary["link"] == [["CNNChannelStatistics", "ChosenChannel", 1], ["CNNImageSet", "ExplicitChannels", 2]]
    levels = engine_statistics().levels
    assert summary["chosen_after_loading"] == summary["explicit_after_loading"] == f"{levels[12]}:40"
    assert summary["chosen"] == summary["explicit"] == f"{levels[7]}:21"
    assert (summary["set_levels"], summary["set_channels"]) == ([levels[7]], [21])
    assert summary["statistics_runs"] == 1


def test_deleting_a_linked_source_drops_its_link_and_states_still_save():
    # ParaView 5.11 keeps a link to a deleted proxy and crashes saving the next state.
    from cnn_paraview.scenes import link_chosen_channel

    linked = CNNChannelStatistics(registrationName="Linked Statistics", Images=str(TWO_CLASSES), **FAST)
    images = CNNImageSet(registrationName="Linked Set", Images=str(TWO_CLASSES), ChannelChoice="Explicit",
                         ExplicitChannels="_blocks.0:0", Normalization="None", **FAST)
    link_chosen_channel(linked, images, name="Doomed Link")
    manager = servermanager.ProxyManager().SMProxyManager
    assert manager.GetRegisteredLink("Doomed Link") is not None
    Delete(images)
    del images
    assert manager.GetRegisteredLink("Doomed Link") is None
    state = FOLDER / "after_delete.pvsm"
    SaveState(str(state))
    assert 'PropertyLink name="Doomed Link"' not in state.read_text()
    Delete(linked)


def test_the_example_state_opens_the_study_and_the_set_follows_the_channel():
    summary = reload_state(pvcheck.ROOT / "examples" / "channel_statistics.pvsm", 12, 5, ARTIFACTS / "study.png")
    assert summary["sources"] == ["CNN Channel Statistics", "CNN Image Set", "Chosen Channel Name", "Image", "Picture"]
    assert summary["views"] == ["RenderView", "RenderView", "SpreadSheetView", "XYBarChartView"]
    assert summary["chosen_after_loading"] == summary["explicit_after_loading"] != ""
    level = summary["chosen"].split(":")[0]
    assert summary["chosen"] == summary["explicit"] == f"{level}:5" and level.startswith("_blocks.")
    assert (summary["set_levels"], summary["set_channels"]) == ([level], [5])
    assert summary["statistics_runs"] == 1


ARTIFACTS = pvcheck.ARTIFACTS
ARTIFACTS.mkdir(parents=True, exist_ok=True)


def reload_state(state: Path, level: int, channel: int, picture: Path = None) -> dict:
    """Load ``state`` in a fresh pvpython (tests/paraview/reload_statistics_state.py), choose the
    channel there; its JSON summary."""
    script = Path(__file__).resolve().parent / "reload_statistics_state.py"
    env = dict(os.environ, PV_PLUGIN_PATH=str(pvcheck.ROOT / "plugin"))
    executable = sys.executable if sys.executable.endswith("pvpython") else "pvpython"
    result = subprocess.run([executable, str(script), str(state), str(picture or FOLDER / "reloaded.png"), str(level),
                             str(channel)], capture_output=True, text=True, env=env, timeout=600,
                            cwd=str(FOLDER))  # not the project folder: relative paths are found anyway
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# MPI.

def test_one_process_has_no_communicator():
    from cnn_paraview.statistics_source import mpi_communicator

    assert mpi_communicator() is None


pvcheck.run(globals())
