"""Ranking by effect and LayerCAM at every level: checked against autograd run by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor

import cnn_engine
from cnn_engine.images import load_image
from cnn_engine.preprocess import Preprocessing, network_input

LEVEL = "_blocks.10"  # a middle block of efficientnet_lite0 (stride 16)


@pytest.fixture(scope="module")
def by_hand(lite0, cat_path):
    """The level's output and the gradients of the top-1 log-probability and logit, by autograd."""
    extractor = create_feature_extractor(lite0.module, {LEVEL: "feature", "_fc": "logits"})
    x = network_input(load_image(cat_path).image, Preprocessing(), lite0.mean, lite0.std).tensor
    with torch.enable_grad():
        out = extractor(x)
        feature, logits = out["feature"], out["logits"]
        target = int(logits[0].argmax())
        (log_p_grad,) = torch.autograd.grad(torch.log_softmax(logits[0], 0)[target], feature, retain_graph=True)
        (logit_grad,) = torch.autograd.grad(logits[0, target], feature)
    return {"feature": feature[0].detach(), "log_p_grad": log_p_grad[0], "logit_grad": logit_grad[0], "target": target}


@pytest.fixture(scope="module")
def effect_volume(lite0, cat_path):
    return cnn_engine.compute_volume(lite0, cat_path, layers=["input", LEVEL], top_k=4, rank_by="effect",
                                     evidence="layercam")


def test_effect_scores_are_gradient_of_log_probability_times_activation(effect_volume, by_hand):
    effect = (by_hand["log_p_grad"] * by_hand["feature"]).sum(dim=(1, 2))
    expected = torch.sort(effect, descending=True, stable=True)
    level = effect_volume.levels[1]
    assert list(level.channels) == expected.indices[:4].tolist()
    assert np.allclose(level.scores, expected.values[:4].numpy(), rtol=1e-4, atol=1e-6)


def test_effect_ranking_records_its_target_class(effect_volume, by_hand):
    assert effect_volume.provenance.rank_by == "effect"
    assert effect_volume.provenance.rank_target == by_hand["target"] == effect_volume.predictions[0].index


def test_effect_ranking_follows_an_asked_target(lite0, cat_path):
    vol = cnn_engine.compute_volume(lite0, cat_path, layers=[LEVEL], top_k=2, rank_by="effect", target="tiger cat")
    assert vol.provenance.rank_target == 282
    top1 = cnn_engine.compute_volume(lite0, cat_path, layers=[LEVEL], top_k=2, rank_by="effect")
    assert vol.levels[0].channels != top1.levels[0].channels


def test_layercam_is_every_levels_positive_gradient_times_activation(effect_volume, by_hand):
    native = torch.relu((torch.relu(by_hand["logit_grad"]) * by_hand["feature"]).sum(dim=0))
    level = effect_volume.levels[1]
    cells = effect_volume.arrays["layercam"][1]
    # Nearest drawing: the pixel on each cell's centre shows that cell's value.
    oy, ox = (int(v) for v in level.offset)
    sy, sx = (int(v) for v in level.stride)
    h, w = native.shape
    assert np.allclose(cells[oy::sy][:h, ox::sx][:, :w], native.numpy(), rtol=1e-4, atol=1e-7)


def test_layercam_array_stands_beside_the_ranks(effect_volume):
    assert list(effect_volume.arrays) == ["rank0", "rank1", "rank2", "rank3", "layercam"]
    assert effect_volume.top_k == 4
    assert effect_volume.arrays["layercam"].shape == effect_volume.shape
    assert (effect_volume.arrays["layercam"] >= 0).all()


def test_layercam_evidence_map_is_the_deepest_level_drawn_bilinearly(effect_volume):
    info = effect_volume.evidence_info
    assert (info.method, info.layer) == ("layercam", "_blocks.10.add")  # the operation behind the level
    assert effect_volume.evidence.shape == effect_volume.shape[1:]
    assert effect_volume.evidence.max() == pytest.approx(float(effect_volume.arrays["layercam"][-1].max()), rel=1e-5)


def test_gradients_leave_in_place_activations_as_they_were(resnet50_random, cat_path):
    vol = cnn_engine.compute_volume(resnet50_random, cat_path, layers=["relu", "layer1.0"], top_k=1, rank_by="effect")
    assert vol.levels[0].name == "relu"
    assert all(m.inplace for m in resnet50_random.module.modules() if hasattr(m, "inplace"))


def test_a_class_index_is_a_target_for_a_plain_module_without_labels():
    from torchvision.models import resnet18

    module = resnet18(num_classes=10).eval()
    picture = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    vol = cnn_engine.compute_volume(module, picture, layers=["layer4"], top_k=1, input_size=64, rank_by="effect",
                                    evidence="gradcam", target=3)
    assert (vol.provenance.rank_target, vol.evidence_info.target_index, vol.evidence_info.target_label) == (3, 3, "class 3")
    with pytest.raises(cnn_engine.EvidenceError, match="out of range: the model has classes 0 to 9"):
        cnn_engine.compute_volume(module, picture, layers=["layer4"], top_k=1, input_size=64, evidence="cam", target=10)
