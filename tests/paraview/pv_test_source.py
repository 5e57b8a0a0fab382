"""The CNN Activation Volume source and the CNN Layer Normalize filter in pvpython."""

import numpy as np
from paraview import servermanager
from paraview.simple import Delete, GetSources
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())
CAT = str(pvcheck.SAMPLES / "cat.jpg")


def fetch(proxy, port=0):
    return servermanager.Fetch(proxy, idx=port)


def cat_source(**settings):
    options = dict(FileName=CAT, Model="resnet50", Weights="random", LayerSet="blocks", TopK=4)
    options.update(settings)
    source = CNNActivationVolume(**options)
    source.UpdatePipeline()
    return source


def test_resnet50_blocks_volume_has_the_expected_grid_and_arrays():
    source = cat_source()
    info = source.GetDataInformation(0)
    assert info.GetDataSetTypeAsString() == "vtkImageData"
    assert tuple(info.GetExtent()) == (0, 336, 0, 223, 0, 18), info.GetExtent()  # 337x224 px, 19 levels
    assert sorted(source.PointData.keys()) == ["image_luminance", "image_rgb", "rank0", "rank1", "rank2", "rank3"]
    names = fetch(source).GetFieldData().GetAbstractArray("level_name")
    assert names.GetNumberOfValues() == 19 and names.GetValue(3) == "layer1.0" and names.GetValue(18) == "layer4.2"
    Delete(source)


def test_predictions_table_on_port_1():
    source = cat_source()
    table = fetch(source, 1)
    assert table.GetClassName() == "vtkTable" and table.GetNumberOfRows() == 5
    columns = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    assert columns == ["rank", "class_index", "label", "probability"], columns
    probabilities = vtk_to_numpy(table.GetColumnByName("probability"))
    assert np.all(np.diff(probabilities) <= 0)
    Delete(source)


def test_trained_offline_model_sees_a_cat():
    source = cat_source(Model="efficientnet_lite0", Weights="default")
    table = fetch(source, 1)
    assert table.GetColumnByName("class_index").GetValue(0) in range(281, 286)
    Delete(source)


def test_filter_gives_activation_in_unit_range_on_every_level():
    source = cat_source()
    normalize = CNNLayerNormalize(Input=source, Normalization="PerLevelMinMax", Channels="Top1")
    normalize.UpdatePipeline()
    data = fetch(normalize)
    values = vtk_to_numpy(data.GetPointData().GetArray("activation")).reshape(19, 224, 337)
    for level in range(19):
        finite = values[level][np.isfinite(values[level])]
        assert finite.min() == 0.0 and finite.max() == 1.0, (level, finite.min(), finite.max())
    Delete(normalize)
    Delete(source)


def test_changing_the_filter_or_spacing_does_not_rerun_the_network():
    source = cat_source()
    normalize = CNNLayerNormalize(Input=source)
    normalize.UpdatePipeline()
    algorithm = source.GetClientSideObject()
    runs = algorithm.forward_passes
    for prop, value in [("Normalization", "PerLevelZScore"), ("Channels", "MeanTopK"), ("Channels", "Rank"),
                        ("Rank", 2), ("FirstLevel", 3), ("LastLevel", 10), ("Normalization", "PerLevelPercentile")]:
        setattr(normalize, prop, value)
        normalize.UpdatePipeline()
    source.LevelSpacing = 5.0
    normalize.UpdatePipeline()
    assert algorithm.forward_passes == runs, (algorithm.forward_passes, runs)
    assert tuple(normalize.GetDataInformation().GetExtent()) == (0, 336, 0, 223, 3, 10)
    source.FileName = str(pvcheck.SAMPLES / "coffee.jpg")
    normalize.UpdatePipeline()
    assert algorithm.forward_passes == runs + 1
    assert algorithm.session.model_builds == 1
    Delete(normalize)
    Delete(source)


def test_evidence_is_the_top_level_and_its_own_output():
    source = cat_source(Model="efficientnet_lite0", Weights="default", Evidence="GradCAM", TargetClass="tabby")
    assert tuple(source.GetDataInformation(0).GetExtent()) == (0, 336, 0, 223, 0, 19)
    names = fetch(source).GetFieldData().GetAbstractArray("level_name")
    assert names.GetValue(19) == "gradcam: tabby (281)", names.GetValue(19)
    flat = fetch(source, 2)
    assert flat.GetDimensions() == (337, 224, 1)
    evidence = vtk_to_numpy(flat.GetPointData().GetArray("evidence"))
    assert evidence.max() > 0 and np.isfinite(evidence).all()
    source.Evidence = "None"
    source.UpdatePipeline()
    assert tuple(source.GetDataInformation(0).GetExtent()) == (0, 336, 0, 223, 0, 18)
    Delete(source)


def test_progress_is_reported():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    seen = []
    source.GetClientSideObject().AddObserver("ProgressEvent", lambda obj, event: seen.append(obj.GetProgress()))
    source.UpdatePipeline()
    assert len(seen) >= 19 and seen[-1] == 1.0, seen
    Delete(source)


def test_bad_image_reports_an_error_and_the_next_good_one_works():
    source = CNNActivationVolume(FileName=str(pvcheck.SAMPLES / "missing.jpg"), Weights="random")
    source.UpdatePipeline()
    algorithm = source.GetClientSideObject()
    assert algorithm.last_error and "image not found" in algorithm.last_error, algorithm.last_error
    assert source.GetDataInformation(0).GetNumberOfPoints() == 0
    source.FileName = CAT
    source.UpdatePipeline()
    assert algorithm.last_error is None
    assert source.GetDataInformation(0).GetNumberOfPoints() == 337 * 224 * 19
    Delete(source)


def test_bad_weights_report_an_error():
    source = CNNActivationVolume(FileName=CAT, Weights="IMAGENET9K")
    source.UpdatePipeline()
    assert "unknown weights 'IMAGENET9K' for resnet50" in source.GetClientSideObject().last_error
    Delete(source)


def test_relative_image_path_is_found_from_the_project_folder():
    import os

    os.chdir("/")
    source = CNNActivationVolume(FileName="sample_images/cat.jpg", Weights="random", TopK=1)
    source.UpdatePipeline()
    assert source.GetClientSideObject().last_error is None
    assert source.GetDataInformation(0).GetNumberOfPoints() == 337 * 224 * 19
    Delete(source)


def test_file_open_offers_the_reader_for_images():
    from paraview import servermanager as sm

    factory = sm.vtkSMProxyManager.GetProxyManager().GetReaderFactory()
    factory.UpdateAvailableReaders()  # filled lazily; File > Open and OpenDataFile do this too
    for name in ("cat.jpg", "camera.png"):
        found = factory.GetReaders(str(pvcheck.SAMPLES / name), sm.ActiveConnection.Session)
        labels = [found.GetString(i) for i in range(2, found.GetNumberOfStrings(), 3)]
        assert "CNN Activation Volume Reader" in labels, labels


def test_image_files_open_with_the_reader():
    from paraview.simple import OpenDataFile

    reader = OpenDataFile(CAT)
    assert reader.GetXMLName() == "CNNActivationVolumeReader", reader.GetXMLName()
    reader.Weights = "random"
    reader.UpdatePipeline()
    assert reader.GetDataInformation(0).GetNumberOfPoints() == 337 * 224 * 19
    Delete(reader)


def test_settings_that_cannot_change_the_result_never_rerun_the_network():
    source = cat_source(TopK=2)
    normalize = CNNLayerNormalize(Input=source)
    normalize.UpdatePipeline()
    algorithm = source.GetClientSideObject()
    # Each of these updates the pipeline (the output is made again) without a forward pass.
    for proxy, prop, value in [
        (source, "TargetClass", "tabby"), (source, "TargetClass", "281"),  # Evidence is None
        (source, "LevelSpacing", 5.0), (source, "TrustTorchScript", 1),  # weights random, not a file
        (normalize, "Normalization", "PerLevelPercentile"), (normalize, "PercentileRange", [5.0, 95.0]),
        (normalize, "Channels", "Rank"), (normalize, "Rank", 1), (normalize, "FirstLevel", 2),
        (normalize, "LastLevel", 9),
    ]:
        runs = algorithm.forward_passes
        made = proxy.GetClientSideObject().GetOutputDataObject(0).GetMTime()
        setattr(proxy, prop, value)
        normalize.UpdatePipeline()
        assert proxy.GetClientSideObject().GetOutputDataObject(0).GetMTime() > made, f"{prop} did not update"
        assert algorithm.forward_passes == runs, f"{prop} = {value!r} ran the network"
    runs = algorithm.forward_passes
    source.TopK = 3  # a setting that shapes the result: exactly one new run
    normalize.UpdatePipeline()
    assert algorithm.forward_passes == runs + 1
    assert "rank2" in source.PointData.keys()
    Delete(normalize)
    Delete(source)


def test_torchscript_weights_are_refused_until_trust_torchscript_is_on():
    import tempfile
    from pathlib import Path

    import torch
    import torchvision

    path = Path(tempfile.mkdtemp(prefix="cnnvis-pv-")) / "scripted.pt"
    torch.jit.script(torchvision.models.resnet18().eval()).save(str(path))
    source = CNNActivationVolume(FileName=CAT, Model="resnet18", Weights=str(path), TopK=1)
    source.UpdatePipeline()
    algorithm = source.GetClientSideObject()
    assert algorithm.last_error.startswith(f"refusing to load {path}: it is a TorchScript archive"), algorithm.last_error
    assert "TrustTorchScript" in algorithm.last_error
    assert source.GetDataInformation(0).GetNumberOfPoints() == 0
    source.TrustTorchScript = 1
    source.UpdatePipeline()
    assert algorithm.last_error is None, algorithm.last_error
    assert source.GetDataInformation(0).GetNumberOfPoints() == 337 * 224 * 11
    Delete(source)


pvcheck.run(globals())
