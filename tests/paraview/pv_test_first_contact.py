"""What a new user meets in pvpython and File > Open: the offline stand-in, one clear message per
failure, SaveData that raises, captions, and the readers ParaView picks (TORCH_HOME is empty, as
offline in CI: the ImageNet ResNet-50 weights cannot be had)."""

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from paraview import servermanager
from paraview.simple import Delete, OpenDataFile, SaveData, Show

import pvcheck

os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="cnnvis-empty-torch-")
pvcheck.load_plugin(globals())
CAT = str(pvcheck.SAMPLES / "cat.jpg")
FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-first-contact-"))
SUBSTITUTION = ("efficientnet_lite0 (trained, offline) runs instead of resnet50: the ImageNet weights of resnet50 "
                "are not in the torch cache and cannot be downloaded here")


def test_default_model_offline_runs_the_stand_in_and_says_which():
    source = CNNActivationVolume(FileName=CAT, TopK=1)
    source.UpdatePipeline()
    source.UpdatePropertyInformation()
    assert source.GetPropertyValue("ModelInUse") == f"efficientnet_lite0, weights packaged ({SUBSTITUTION})"
    table = servermanager.Fetch(source, idx=1)
    assert table.GetColumnByName("class_index").GetValue(0) in range(281, 286)
    Delete(source)


def test_explicit_resnet50_weights_offline_fail_with_one_message_naming_the_stand_in():
    source = CNNActivationVolume(FileName=CAT, Weights="IMAGENET1K_V1", TopK=1)
    source.UpdatePipeline()
    error = source.GetClientSideObject().last_error
    assert error.startswith("cannot download the resnet50 IMAGENET1K_V1 weights"), error
    assert "use the trained model efficientnet_lite0" in error
    assert source.GetDataInformation(0).GetNumberOfPoints() == 0
    Delete(source)


def test_a_failed_source_prints_its_message_once_and_no_pipeline_noise():
    # A separate pvpython, as a user's script: source, filter, captions, a shown slice.
    script = FOLDER / "failing.py"
    script.write_text(textwrap.dedent(f"""
        import os
        from paraview.simple import *
        LoadPlugin({str(pvcheck.PLUGIN)!r}, ns=globals())
        src = CNNActivationVolume(FileName="missing.jpg", Weights="random")
        norm = CNNLayerNormalize(Input=src)
        caption = CNNCaption(Input=src, Content="Predictions")
        Show(norm)
        Show(caption)
        Render()
        norm.UpdatePipeline()
        os._exit(0)
    """))
    env = dict(os.environ)
    env.pop("PV_PLUGIN_PATH", None)
    result = subprocess.run(["pvpython", str(script)], capture_output=True, text=True, timeout=300, env=env,
                            cwd=str(FOLDER))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("image not found: missing.jpg") == 1, output
    assert "returned failure for request" not in output and "Traceback" not in output, output


def test_savedata_of_a_failed_source_raises_and_writes_nothing():
    source = CNNActivationVolume(FileName=str(pvcheck.SAMPLES / "missing.jpg"), Weights="random")
    target = FOLDER / "never.nc"
    try:
        SaveData(str(target), proxy=source)
    except RuntimeError as error:
        assert str(error) == (f"CNN NetCDF Writer: nothing written to {target}: its input failed: image not "
                              f"found: {pvcheck.SAMPLES / 'missing.jpg'}"), str(error)
    else:
        raise AssertionError("SaveData did not raise")
    assert not target.exists() and list(FOLDER.glob(".never.nc*")) == []
    Delete(source)


def test_savedata_of_a_good_source_still_writes():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    SaveData(str(FOLDER / "cat.nc"), proxy=source)
    assert (FOLDER / "cat.nc").stat().st_size > 0
    Delete(source)


def test_captions_follow_the_source():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    caption = CNNCaption(Input=source, Content="Level", Level=18)
    text = servermanager.Fetch(caption).GetColumnByName("Text").GetValue(0)
    assert text.startswith("level 18: layer4.2\nchannel ") and text.endswith(" of 2048\n11 x 7 cells"), text
    caption.Level = 0
    assert servermanager.Fetch(caption).GetColumnByName("Text").GetValue(0) == "level 0: input\n337 x 224 pixels"
    predictions = CNNCaption(Input=source, Content="Predictions")
    text = servermanager.Fetch(predictions).GetColumnByName("Text").GetValue(0)
    assert text.split("\n")[:2] == ["resnet50, weights random (seed 0)  (UNTRAINED: random weights)",
                                    "top-5 predictions:"], text
    for proxy in (predictions, caption, source):
        Delete(proxy)


def test_an_opened_image_shows_as_a_slice_not_an_outline():
    reader = OpenDataFile(CAT)
    reader.Weights = "random"
    reader.TopK = 1
    display = Show(reader)
    assert display.Representation == "Slice", display.Representation
    Delete(reader)


def readers_for(path):
    factory = servermanager.vtkSMProxyManager.GetProxyManager().GetReaderFactory()
    factory.UpdateAvailableReaders()
    found = factory.GetReaders(str(path), servermanager.ActiveConnection.Session)
    return [found.GetString(i) for i in range(1, found.GetNumberOfStrings(), 3)]


def test_file_open_of_an_export_offers_the_plugins_reader_first():
    # ParaView's reader dialog pre-selects the first reader of this list.
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    SaveData(str(FOLDER / "export.nc"), proxy=source)
    readers = readers_for(FOLDER / "export.nc")
    assert readers[0] == "CNNActivationNetCDFReader", readers
    reader = OpenDataFile(str(FOLDER / "export.nc"))
    reader.UpdatePipeline()
    info = reader.GetDataInformation()
    assert info.GetDataSetTypeAsString() == "vtkImageData" and tuple(info.GetExtent()) == (0, 336, 0, 223, 0, 18)
    assert sorted(reader.PointData.keys()) == ["image_luminance", "image_rgb", "rank0"]
    for proxy in (reader, source):
        Delete(proxy)


def test_other_netcdf_files_are_not_offered_to_the_plugins_reader():
    from scipy.io import netcdf_file

    with netcdf_file(str(FOLDER / "other.nc"), "w") as nc:
        nc.createDimension("x", 3)
        nc.createVariable("a", "f4", ("x",))[:] = [1, 2, 3]
    assert "CNNActivationNetCDFReader" not in readers_for(FOLDER / "other.nc")


pvcheck.run(globals())
