"""Rank By effect/ablation and Evidence LayerCAM through the source; Channels LayerCAM in the filter."""

import numpy as np
from paraview import servermanager
from paraview.simple import Delete
from vtkmodules.util.numpy_support import vtk_to_numpy

import pvcheck

pvcheck.load_plugin(globals())
CAT = str(pvcheck.SAMPLES / "cat.jpg")
LEVELS = 19  # efficientnet_lite0, layer set blocks, on the 337x224 cat


def fetch(proxy, port=0):
    return servermanager.Fetch(proxy, idx=port)


def strings(field, name):
    array = field.GetAbstractArray(name)
    return [array.GetValue(i) for i in range(array.GetNumberOfValues())]


def effect_layercam_source(**settings):
    """The trained offline model, channels ranked by effect, LayerCAM at every level."""
    options = dict(FileName=CAT, Model="efficientnet_lite0", Weights="default", LayerSet="blocks", TopK=2,
                   RankBy="effect", Evidence="LayerCAM")
    options.update(settings)
    source = CNNActivationVolume(**options)
    source.UpdatePipeline()
    return source


def test_new_choices_are_appended_so_saved_states_keep_their_meaning():
    source = CNNActivationVolume(FileName=CAT, Weights="random")
    assert source.GetProperty("RankBy").Available == ["mean", "max", "l2", "effect", "ablation"]
    assert source.GetProperty("Evidence").Available == ["None", "CAM", "GradCAM", "Occlusion", "LayerCAM"]
    normalize = CNNLayerNormalize(Input=source)
    assert normalize.GetProperty("Channels").Available == ["Top1", "Rank", "MeanTopK", "MaxTopK", "LayerCAM"]
    Delete(normalize)
    Delete(source)


def test_effect_ranking_and_layercam_give_the_layercam_array_and_level_geometry():
    source = effect_layercam_source()
    assert source.GetClientSideObject().last_error is None, source.GetClientSideObject().last_error
    assert tuple(source.GetDataInformation(0).GetExtent()) == (0, 336, 0, 223, 0, LEVELS)  # + the evidence map
    assert sorted(source.PointData.keys()) == ["image_luminance", "image_rgb", "layercam", "rank0", "rank1"]
    data = fetch(source)
    layercam = vtk_to_numpy(data.GetPointData().GetArray("layercam")).reshape(LEVELS + 1, 224, 337)
    assert np.isfinite(layercam).all() and layercam.min() >= 0.0 and layercam[LEVELS - 1].max() > 0.0
    field = data.GetFieldData()
    receptive_field = vtk_to_numpy(field.GetArray("receptive_field"))
    offset = vtk_to_numpy(field.GetArray("offset"))
    assert receptive_field.shape == offset.shape == (LEVELS + 1, 2)
    assert receptive_field[0].tolist() == [1.0, 1.0] and offset[0].tolist() == [0.0, 0.0]  # the input itself
    assert np.all(np.diff(receptive_field[:LEVELS, 0]) >= 0)  # deeper levels see more
    assert strings(field, "geometry")[:LEVELS] == ["exact"] * LEVELS
    top = fetch(source, 1).GetColumnByName("class_index").GetValue(0)
    assert strings(field, "rank_by") == [f"effect, target class {top}"]
    Delete(source)


def test_filter_channels_layercam_shows_each_level_scaled_to_unit_range():
    from cnn_engine.normalize import normalize as engine_normalize

    source = effect_layercam_source()
    normalize = CNNLayerNormalize(Input=source, Normalization="PerLevelMinMax", Channels="LayerCAM")
    normalize.UpdatePipeline()
    assert normalize.GetClientSideObject().last_error is None, normalize.GetClientSideObject().last_error
    data = fetch(normalize)
    activation = vtk_to_numpy(data.GetPointData().GetArray("activation")).reshape(LEVELS + 1, 224, 337)
    layercam = vtk_to_numpy(data.GetPointData().GetArray("layercam")).reshape(LEVELS + 1, 224, 337)
    assert np.array_equal(activation, engine_normalize(layercam, "per-level-minmax"), equal_nan=True)
    assert activation[LEVELS - 1].min() == 0.0 and activation[LEVELS - 1].max() == 1.0
    Delete(normalize)
    Delete(source)


def test_filter_channels_layercam_without_layercam_is_one_clear_message():
    source = CNNActivationVolume(FileName=CAT, Weights="random", TopK=1)
    normalize = CNNLayerNormalize(Input=source, Channels="LayerCAM")
    normalize.UpdatePipeline()
    algorithm = normalize.GetClientSideObject()
    assert algorithm.last_error.startswith("the volume has no layercam array: make it with evidence LayerCAM"), \
        algorithm.last_error
    assert normalize.GetDataInformation().GetNumberOfPoints() == 0
    normalize.Channels = "Top1"
    normalize.UpdatePipeline()
    assert algorithm.last_error is None
    assert normalize.GetDataInformation().GetNumberOfPoints() == 337 * 224 * 19
    Delete(normalize)
    Delete(source)


def test_target_class_reruns_an_effect_ranking_for_that_class():
    source = effect_layercam_source(Evidence="None")
    algorithm = source.GetClientSideObject()
    runs = algorithm.forward_passes
    source.TargetClass = "tabby"
    source.UpdatePipeline()
    assert algorithm.forward_passes == runs + 1
    assert strings(fetch(source).GetFieldData(), "rank_by") == ["effect, target class 281"]
    Delete(source)


def test_ablation_ranking_runs_with_progress_and_says_so():
    # Ablation runs the network once per channel: a small model at a small size keeps this short.
    source = CNNActivationVolume(FileName=CAT, Model="resnet18", Weights="random", TopK=1, InputSize=32,
                                 RankBy="ablation")
    seen = []
    source.GetClientSideObject().AddObserver("ProgressEvent", lambda obj, event: seen.append(obj.GetProgress()))
    source.UpdatePipeline()
    assert source.GetClientSideObject().last_error is None, source.GetClientSideObject().last_error
    assert len(seen) > 11 and seen[-1] == 1.0, seen
    field = fetch(source).GetFieldData()
    assert strings(field, "rank_by")[0].startswith("ablation, target class ")
    assert vtk_to_numpy(field.GetArray("channel_index"))[5] >= 0  # TopK 1: one column
    Delete(source)


pvcheck.run(globals())
