"""compute_volume against an independent capture of the same layers by torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor

import cnn_engine
from cnn_engine.preprocess import Preprocessing, network_input
from cnn_engine.images import load_image


@pytest.fixture(scope="module")
def reference_features(resnet50_random, cat_path):
    """layer1.0 and layer4.2 outputs on the cat, captured by torchvision's feature extractor."""
    extractor = create_feature_extractor(resnet50_random.module, {"layer1.0": "layer1.0", "layer4.2": "layer4.2"})
    net_in = network_input(load_image(cat_path).image, Preprocessing(), resnet50_random.mean, resnet50_random.std)
    with torch.inference_mode():
        return {name: out[0] for name, out in extractor(net_in.tensor).items()}


def test_volume_shape_and_arrays(cat_volume):
    assert cat_volume.shape == (19, 224, 337)  # the 451x300 cat, short side to 224
    assert list(cat_volume.arrays) == ["rank0", "rank1", "rank2", "rank3"]
    assert all(a.shape == (19, 224, 337) and a.dtype == np.float32 for a in cat_volume.arrays.values())


def test_top_channel_matches_independent_capture(cat_volume, reference_features):
    feature = reference_features["layer4.2"]  # (2048, 7, 11)
    expected_order = torch.sort(feature.mean(dim=(1, 2)), descending=True, stable=True).indices[:4].tolist()
    level = cat_volume.levels[18]
    assert level.name == "layer4.2"
    assert list(level.channels) == expected_order
    assert level.native_shape == (2048, 7, 11)


def test_nearest_level_shows_at_each_pixel_the_cell_centred_nearest(cat_volume, reference_features):
    feature = reference_features["layer1.0"]  # (256, 56, 85) on a 224x337 input
    level = cat_volume.levels[3]
    # ResNet-50's padded stride-4 cells (field 11 after maxpool, + 2 x 4 by layer1.0.conv2 = 19):
    # cell r is centred on input pixel 4 r (offset 0), so pixel i shows cell floor(i / 4 + 1/2):
    # pixels 0-1 cell 0, 2-5 cell 1, ... and nothing is stretched to fill the 337 columns.
    assert (level.stride, level.offset, level.receptive_field) == ((4.0, 4.0), (0.0, 0.0), (19.0, 19.0))
    rows = np.minimum(np.floor(np.arange(224) / 4 + 0.5).astype(int), 55)
    cols = np.minimum(np.floor(np.arange(337) / 4 + 0.5).astype(int), 84)
    assert rows[:7].tolist() == [0, 0, 1, 1, 1, 1, 2] and cols[-3:].tolist() == [84, 84, 84]
    volume_map = cat_volume.arrays["rank0"][3]
    assert np.array_equal(volume_map, feature[level.channels[0]].numpy()[rows][:, cols])
    assert level.raw_max == pytest.approx(float(feature[list(level.channels)].max()))


def test_square_input_gives_exact_strides(resnet50_random, cat_path):
    vol = cnn_engine.compute_volume(resnet50_random, cat_path, fit="center-crop", top_k=1)
    assert vol.shape == (19, 224, 224)
    assert [lv.stride for lv in vol.levels][::6] == [(1.0, 1.0), (8.0, 8.0), (16.0, 16.0), (32.0, 32.0)]


def test_input_level_has_three_channels_and_nan_beyond(cat_volume):
    level = cat_volume.levels[0]
    assert level.native_shape == (3, 224, 337)
    assert level.channels[3] == -1 and np.isnan(level.scores[3])
    assert np.isnan(cat_volume.arrays["rank3"][0]).all()
    assert not np.isnan(cat_volume.arrays["rank3"][1:]).any()


def test_predictions_are_top5_probabilities(cat_volume):
    probabilities = [p.probability for p in cat_volume.predictions]
    assert [p.rank for p in cat_volume.predictions] == [1, 2, 3, 4, 5]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    assert all(isinstance(p.label, str) and p.label for p in cat_volume.predictions)


def test_provenance_records_image_model_and_settings(cat_volume, cat_path):
    prov = cat_volume.provenance
    assert prov.image_path == str(cat_path.resolve())
    assert (prov.model, prov.weights, prov.trained) == ("resnet50", "random (seed 0)", False)
    assert prov.preprocessing == {"fit": "short-side", "size": 224, "max_side": 1024}
    assert (prov.layers, prov.top_k, prov.rank_by, prov.interpolation) == ("blocks", 4, "mean", "nearest")
    assert prov.engine_version == cnn_engine.__version__


def test_default_level_spacing_makes_the_volume_as_deep_as_the_short_side(cat_volume):
    assert cat_volume.level_spacing == pytest.approx(224 / 19)


def test_same_input_gives_identical_arrays(resnet50_random, cat_path, cat_volume):
    again = cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=4)
    assert all(np.array_equal(again.arrays[k], cat_volume.arrays[k], equal_nan=True) for k in again.arrays)


def test_pil_image_and_array_give_the_same_volume_as_the_file(resnet50_random, cat_path, cat_volume):
    array = np.asarray(load_image(cat_path).image)
    vol = cnn_engine.compute_volume(resnet50_random, array, layers="blocks", top_k=4)
    assert np.array_equal(vol.arrays["rank0"], cat_volume.arrays["rank0"], equal_nan=True)
    assert vol.provenance.image_path is None


def test_bilinear_differs_from_nearest_but_keeps_the_same_channels(resnet50_random, cat_path, cat_volume):
    vol = cnn_engine.compute_volume(resnet50_random, cat_path, top_k=4, interpolation="bilinear")
    assert [lv.channels for lv in vol.levels] == [lv.channels for lv in cat_volume.levels]
    assert not np.array_equal(vol.arrays["rank0"][18], cat_volume.arrays["rank0"][18])


def test_progress_reports_every_level(resnet50_random, cat_path):
    seen = []
    cnn_engine.compute_volume(resnet50_random, cat_path, top_k=1, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 19) for i in range(1, 20)]


def test_plain_torch_module_is_accepted(cat_path):
    import torchvision

    module = torchvision.models.resnet18(weights=None)
    vol = cnn_engine.compute_volume(module, cat_path, layers="blocks", top_k=1)
    assert len(vol.levels) == 11 and vol.provenance.model == "resnet"


def test_native_size_is_capped_with_a_notice(resnet50_random, samples):
    with pytest.warns(UserWarning, match=r"scaled down to 256x300"):
        vol = cnn_engine.compute_volume(resnet50_random, samples / "grace_hopper.jpg", fit="native", max_side=300, top_k=1)
    assert vol.shape[1:] == (300, 256)


def test_bad_settings_are_named(resnet50_random, cat_path):
    with pytest.raises(cnn_engine.CnnEngineError, match="top_k must be at least 1"):
        cnn_engine.compute_volume(resnet50_random, cat_path, top_k=0)
    with pytest.raises(cnn_engine.CnnEngineError, match="unknown ranking 'median'"):
        cnn_engine.compute_volume(resnet50_random, cat_path, rank_by="median")
    with pytest.raises(cnn_engine.CnnEngineError, match="unknown fit 'stretch'"):
        cnn_engine.compute_volume(resnet50_random, cat_path, fit="stretch")


def test_a_volume_still_held_is_never_overwritten(resnet50_random, cat_path, samples):
    first = cnn_engine.compute_volume(resnet50_random, cat_path, fit="center-crop", top_k=1)
    kept = first.arrays["rank0"].copy()
    cnn_engine.compute_volume(resnet50_random, samples / "coffee.jpg", fit="center-crop", top_k=1)
    assert np.array_equal(first.arrays["rank0"], kept, equal_nan=True)


def test_a_released_volume_buffer_is_reused(resnet50_random, cat_path, samples):
    first = cnn_engine.compute_volume(resnet50_random, cat_path, fit="center-crop", top_k=1)
    address = first.arrays["rank0"].__array_interface__["data"][0]
    del first
    second = cnn_engine.compute_volume(resnet50_random, samples / "coffee.jpg", fit="center-crop", top_k=1)
    assert second.arrays["rank0"].__array_interface__["data"][0] == address
    fresh = cnn_engine.compute_volume(resnet50_random, samples / "coffee.jpg", fit="center-crop", top_k=1)
    assert fresh.arrays["rank0"].__array_interface__["data"][0] != address  # second is still held
    assert np.array_equal(fresh.arrays["rank0"], second.arrays["rank0"], equal_nan=True)


def _ten_class_module() -> torch.nn.Module:
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return torchvision.models.resnet18(weights=None, num_classes=10)


def test_plain_module_with_10_outputs_has_unknown_labels_and_training(cat_path):
    vol = cnn_engine.compute_volume(_ten_class_module(), cat_path, layers="blocks", top_k=1)
    assert vol.provenance.trained is None
    assert vol.provenance.labels == "unknown (not ImageNet-shaped)"
    assert [p.label for p in vol.predictions] == [f"class {p.index}" for p in vol.predictions]
    assert vol.metadata()["provenance"]["labels"] == "unknown (not ImageNet-shaped)"


def test_plain_module_with_1000_outputs_gets_imagenet_labels_as_an_assumption(cat_path):
    import torchvision

    vol = cnn_engine.compute_volume(torchvision.models.resnet18(weights=None), cat_path, layers="blocks", top_k=1)
    assert vol.provenance.trained is None
    assert vol.provenance.labels == "ImageNet (assumed: 1000 outputs)"
    top = vol.predictions[0]
    assert top.label == cnn_engine.models.imagenet_categories()[top.index]


def test_plain_module_labels_are_used(cat_path):
    names = [f"kind {i}" for i in range(10)]
    vol = cnn_engine.compute_volume(_ten_class_module(), cat_path, layers="blocks", top_k=1, labels=names)
    assert vol.provenance.labels == "given (10 classes)"
    assert [p.label for p in vol.predictions] == [names[p.index] for p in vol.predictions]


def test_plain_module_mean_and_std_are_used(cat_path):
    module = _ten_class_module().eval()
    mean, std = (0.2, 0.3, 0.4), (0.5, 0.6, 0.7)
    vol = cnn_engine.compute_volume(module, cat_path, layers="blocks", top_k=1, mean=mean, std=std)
    net_in = network_input(load_image(cat_path).image, Preprocessing(), mean, std)
    with torch.inference_mode():
        expected = torch.softmax(module(net_in.tensor)[0], dim=0)
    assert [p.index for p in vol.predictions] == torch.topk(expected, 5).indices.tolist()
    assert [p.probability for p in vol.predictions] == pytest.approx(torch.topk(expected, 5).values.tolist(), abs=1e-6)
    default = cnn_engine.compute_volume(module, cat_path, layers="blocks", top_k=1)
    assert default.predictions[0].probability != pytest.approx(vol.predictions[0].probability, abs=1e-6)


def test_plain_module_labels_must_match_its_outputs(cat_path):
    with pytest.raises(cnn_engine.ModelError, match=r"2 labels were given for a model with 10 outputs"):
        cnn_engine.compute_volume(_ten_class_module(), cat_path, top_k=1, labels=["cat", "dog"])


def test_labels_and_normalisation_are_refused_for_a_loaded_model(resnet50_random, cat_path):
    with pytest.raises(cnn_engine.ModelError, match=r"for a plain torch.nn.Module"):
        cnn_engine.compute_volume(resnet50_random, cat_path, top_k=1, mean=(0.5, 0.5, 0.5))


def test_unknown_training_travels_through_netcdf_as_unknown(cat_path, tmp_path):
    from cnn_engine.netcdf import VolumeFile

    path = cnn_engine.compute_volume(_ten_class_module(), cat_path, top_k=1).to_netcdf(tmp_path / "plain.nc")
    back = cnn_engine.read_netcdf(path)
    assert (back.provenance.trained, back.provenance.labels) == (None, "unknown (not ImageNet-shaped)")
    with VolumeFile(path) as nc:  # either netCDF format
        assert int(nc.attribute("trained")) == -1
