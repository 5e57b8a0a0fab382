"""The CNN Perturbation Sweep source in pvpython: the severities as time steps, each step's
volume, picture and predictions against cnn_engine.sweep's, the table over all steps, the cache,
bad input, and the example state."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from paraview import servermanager
from paraview.simple import CNNCaption, Delete
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())
from paraview.simple import CNNPerturbationSweep  # noqa: E402  (registered by the plugin)

import cnn_engine  # noqa: E402  (the plugin put the project and its environment on sys.path)

FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-sweep-"))
CAT = str(pvcheck.SAMPLES / "cat.jpg")
LAYERS = "_blocks.0,_blocks.8,_blocks.15"
# The offline trained model, three blur steps and three levels: the sweep the source makes below.
SETTINGS = dict(FileName=CAT, Model="efficientnet_lite0", Perturbation="blur", From=0.0, To=4.0, Steps=3,
                Layers=LAYERS, TargetClass="tabby")
TIMES = [0.0, 2.0, 4.0]
SOURCE = CNNPerturbationSweep(**SETTINGS)
SW = cnn_engine.sweep(cnn_engine.load_model("efficientnet_lite0"), CAT, "blur", TIMES, layers=LAYERS, target="tabby",
                      volumes=False)
# Small and fast where the numbers do not matter: resnet18, random weights, 64 pixels.
FAST = dict(FileName=CAT, Model="resnet18", Weights="random", InputSize=64, Layers="layer1.0,layer4.1")


def fetch(proxy, time: float, port: int = 0):
    proxy.UpdatePipeline(time=time)
    return servermanager.Fetch(proxy, idx=port)


def information(proxy, name: str):
    proxy.UpdatePropertyInformation()
    return proxy.GetPropertyValue(name)


def column(table, name: str) -> list:
    array = table.GetColumnByName(name)
    return [array.GetValue(i) for i in range(array.GetNumberOfValues())]


def columns(table) -> list:
    return [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]


# Time steps.

def test_the_time_steps_are_the_default_severities_of_the_perturbation():
    source = CNNPerturbationSweep(FileName=CAT, Model="efficientnet_lite0", Perturbation="rotation")
    source.UpdatePipelineInformation()
    assert list(source.TimestepValues) == [-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0], list(source.TimestepValues)
    Delete(source)


def test_the_time_widget_is_labelled_with_the_perturbation_and_its_parameter():
    SOURCE.UpdatePipelineInformation()
    assert information(SOURCE, "TimeLabelAnnotation") == "blur sigma"


def test_from_to_and_steps_give_evenly_spaced_time_steps():
    SOURCE.UpdatePipelineInformation()
    assert list(SOURCE.TimestepValues) == TIMES


def test_a_decreasing_request_is_swept_in_its_order_and_shown_in_increasing_time():
    source = CNNPerturbationSweep(**dict(FAST, From=4.0, To=0.0, Steps=3))
    source.UpdatePipelineInformation()
    assert list(source.TimestepValues) == [0.0, 2.0, 4.0]
    table = fetch(source, 4.0, port=3)
    assert source.GetClientSideObject().result.values == (4.0, 2.0, 0.0)
    assert column(table, "severity") == [0.0, 2.0, 4.0]
    picture = fetch(source, 4.0, port=1)
    assert picture.GetFieldData().GetAbstractArray("step_label").GetValue(0) == "blur sigma 4"
    Delete(source)


# Each step against cnn_engine.sweep.

def test_each_steps_predictions_are_the_sweeps():
    for i, time in enumerate(TIMES):
        table = fetch(SOURCE, time, port=2)
        expected = SW.steps[i].predictions
        assert column(table, "rank") == [p.rank for p in expected]
        assert column(table, "class_index") == [p.index for p in expected]
        assert column(table, "label") == [p.label for p in expected]
        np.testing.assert_array_equal(column(table, "probability"),
                                      np.float32([p.probability for p in expected]))  # a float column


def test_each_steps_picture_is_the_perturbed_picture_upright():
    for i, time in enumerate(TIMES):
        image = fetch(SOURCE, time, port=1)
        width, height, _ = image.GetDimensions()
        pixels = vtk_to_numpy(image.GetPointData().GetArray("image_rgb")).reshape(height, width, 3)[::-1]
        np.testing.assert_array_equal(pixels, SW.images[i])


def test_every_step_shows_the_clean_pictures_channels():
    for time in TIMES:
        data = fetch(SOURCE, time)
        array = data.GetFieldData().GetAbstractArray("channel_index")
        shown = vtk_to_numpy(array).reshape(3, 4)
        assert [tuple(row) for row in shown] == [SW.channels[name] for name in SW.levels], shown


def test_the_table_over_all_steps_is_the_sweeps_rows():
    table = fetch(SOURCE, 2.0, port=3)
    rows = SW.rows()
    assert columns(table) == list(rows[0]) + [f"relative_l2 {name}" for name in SW.levels] + ["shown_step"]
    for name in rows[0]:
        expected = [row[name] for row in rows]
        if name in ("label", "top1_label"):
            assert column(table, name) == expected, name
        else:  # numbers; target_probability has no None here (Target Class tabby)
            np.testing.assert_array_equal(column(table, name), expected, err_msg=name)
    for level, name in enumerate(SW.levels):
        assert column(table, f"relative_l2 {name}") == [step.relative_l2[level] for step in SW.steps]


def test_the_tables_marker_column_follows_the_time_step():
    table = fetch(SOURCE, 2.0, port=3)
    marker = column(table, "shown_step")
    assert np.isnan(marker[0]) and marker[1] == SW.steps[1].clean_probability and np.isnan(marker[2]), marker


def test_the_drift_picture_is_level_by_step():
    image = fetch(SOURCE, 0.0, port=4)
    assert image.GetDimensions() == (4, 4, 1)  # points around 3 steps x 3 levels of cells
    drift = vtk_to_numpy(image.GetCellData().GetArray("drift")).reshape(3, 3)
    np.testing.assert_array_equal(drift, SW.drift_table())


def test_the_step_caption_names_the_severity_the_step_and_the_top1():
    caption = CNNCaption(Input=SOURCE, Content="Image")
    text = fetch(caption, 2.0).GetColumn(0).GetValue(0)
    top = SW.steps[1].predictions[0]
    assert text == f"blur sigma 2  2/3 cat.jpg  top-1: {top.label} {top.probability * 100:.0f}%", text
    Delete(caption)


# The cache.

def test_stepping_back_to_a_computed_step_runs_no_network():
    for time in TIMES:
        fetch(SOURCE, time)
    passes, sweeps = information(SOURCE, "ForwardPasses"), information(SOURCE, "SweepRuns")
    for time in reversed(TIMES):
        fetch(SOURCE, time)
    assert (information(SOURCE, "ForwardPasses"), information(SOURCE, "SweepRuns")) == (passes, sweeps) == (3, 1)


def test_the_sweep_shows_in_the_progress_bar():
    source = CNNPerturbationSweep(**dict(FAST, Steps=3, From=0.0, To=2.0))
    seen = []
    source.GetClientSideObject().AddObserver("ProgressEvent",
                                             lambda obj, event: seen.append(round(obj.GetProgress(), 3)))
    source.UpdatePipeline(time=0.0)
    # The sweep's pictures (one batch here) to 0.8, then the step's volume.
    assert [value for value in seen if 0 < value < 1] == [0.8] and seen[-1] == 1.0, seen
    Delete(source)


def test_level_spacing_changes_no_computed_step():
    SOURCE.LevelSpacing = 7.0
    assert fetch(SOURCE, 0.0).GetSpacing() == (1.0, 1.0, 7.0)
    assert (information(SOURCE, "ForwardPasses"), information(SOURCE, "SweepRuns")) == (3, 1)
    SOURCE.LevelSpacing = 0.0


# Bad input: one message each, empty outputs, ParaView goes on.

def failure(source, time: float = 0.0) -> str:
    with pvcheck.captured() as output:
        source.UpdatePipeline(time=time)
    error = information(source, "LastError")
    assert output.text.count(f"CNN Perturbation Sweep: {error}") == 1 and "Traceback" not in output.text, output.text
    assert source.GetDataInformation(0).GetNumberOfPoints() == 0
    return error


def test_a_single_step_is_one_message():
    source = CNNPerturbationSweep(**dict(FAST, Steps=1))
    assert failure(source) == ("Steps 1 is a single severity: a sweep needs at least two; set Steps to 2 or more "
                               "(From to To), or to 0 for blur's default severities (0, 0.5, 1, 1.5, 2, 3, 4, 6, 8 "
                               "input pixels)")
    assert list(source.TimestepValues) == []
    Delete(source)


def test_severities_out_of_range_say_the_range():
    source = CNNPerturbationSweep(**dict(FAST, From=0.0, To=40.0, Steps=3))
    assert failure(source) == "blur sigma 40 is out of range: use 0 to 32 (input pixels)"
    Delete(source)


def test_equal_ends_are_one_message():
    source = CNNPerturbationSweep(**dict(FAST, From=2.0, To=2.0, Steps=3))
    assert failure(source) == ("From and To are both 2: a sweep needs different severities; set them apart (blur "
                               "sigma: 0 to 32 input pixels), or Steps to 0 for blur's default severities "
                               "(0, 0.5, 1, 1.5, 2, 3, 4, 6, 8)")
    Delete(source)


def test_an_image_that_fails_to_load_is_one_message_and_the_next_image_works():
    broken = FOLDER / "broken.jpg"
    broken.write_bytes(b"not a picture")
    source = CNNPerturbationSweep(**dict(FAST, FileName=str(broken), Steps=2))
    assert failure(source).startswith(f"not an image file Pillow can read: {broken}")
    source.FileName = CAT
    assert fetch(source, 0.0).GetNumberOfPoints() > 0 and information(source, "LastError") == ""
    Delete(source)


def test_an_unknown_target_class_is_one_message_however_often_the_view_asks():
    from paraview import simple

    source = CNNPerturbationSweep(**dict(FAST, Steps=2, From=0.0, To=2.0, TargetClass="no such class"))
    view = simple.CreateView("RenderView")
    with pvcheck.captured() as output:
        simple.Show(source, view)
        for time in (0.0, 0.0, 2.0, 0.0):
            view.ViewTime = time
            simple.Render(view)
    assert information(source, "LastError") == "unknown target class 'no such class' (give a label or a class index)"
    assert output.text.count("CNN Perturbation Sweep:") == 1 and "Traceback" not in output.text, output.text
    simple.Delete(view)
    Delete(source)


def test_a_perturbation_out_of_the_list_is_refused():
    source = CNNPerturbationSweep(**FAST)
    source.Perturbation = 12
    assert information(source, "LastError") == (
        "Perturbation = 12 refused: it must be 0 (brightness), 1 (contrast), 2 (gamma), 3 (saturation), 4 (hue), "
        "5 (blur), 6 (noise), 7 (jpeg), 8 (rotation), 9 (scale), 10 (translation) or 11 (occlusion); "
        "Perturbation stays 'blur'")
    Delete(source)


# The example state.

RELOAD = """
import json, os, sys
from paraview import servermanager, simple
simple.LoadState(sys.argv[1])
source = simple.FindSource("CNN Perturbation Sweep")
found = {name: simple.FindSource(name) is not None for name in ("CNN Perturbation Sweep", "Step", "Input Picture")}
views = sorted(simple.GetViewsInLayout(simple.GetLayoutByName("CNN Perturbation Sweep")), key=id)
scene = simple.GetAnimationScene()
keeper = simple.GetTimeKeeper()
times = list(keeper.TimestepValues)
scene.AnimationTime = times[4]
caption = servermanager.Fetch(simple.FindSource("Step")).GetColumn(0).GetValue(0)
print(json.dumps({"found": found, "views": len(views), "times": times, "caption": caption,
                  "label": keeper.GetPropertyValue("TimeLabel")}))
sys.stdout.flush()
os._exit(0)
"""


def test_the_example_state_steps_through_the_blur_severities():
    script = FOLDER / "reload.py"
    script.write_text(RELOAD)
    env = dict(os.environ, PV_PLUGIN_PATH=str(pvcheck.ROOT / "plugin"))
    executable = sys.executable if sys.executable.endswith("pvpython") else "pvpython"
    state = pvcheck.ROOT / "examples" / "perturbation_sweep.pvsm"
    result = subprocess.run([executable, str(script), str(state)], capture_output=True, text=True, env=env,
                            timeout=600, cwd=str(FOLDER))  # not the project folder: the state's image is found anyway
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["found"] == {"CNN Perturbation Sweep": True, "Step": True, "Input Picture": True}, summary
    assert summary["views"] == 4 and summary["label"] == "blur sigma", summary
    assert summary["times"] == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0], summary
    assert summary["caption"].startswith("blur sigma 2  5/9 cat.jpg  top-1: "), summary


pvcheck.run(globals())
