"""Grad-CAM with gradients recorded from the layer on, and occlusion in channels-last batches:
the same maps as the plain way of computing them."""

from __future__ import annotations

import pytest
import torch

import cnn_engine
from cnn_engine.evidence.gradcam import grad_cam, grad_cam_map, grad_cam_pass
from cnn_engine.evidence.occlusion import occlusion_map
from cnn_engine.gradients import gradient_pass
from cnn_engine.images import load_image
from cnn_engine.preprocess import Preprocessing, network_input


def network_in(model, cat_path, size: int = 224) -> torch.Tensor:
    return network_input(load_image(cat_path).image, Preprocessing(size=size), model.mean, model.std).tensor


def grad_cam_with_gradients_throughout(model, x, layer: str, target: int) -> torch.Tensor:
    """Grad-CAM the usual way (torch-cam, Captum): the whole forward pass recorded by autograd."""
    found = {}

    def keep(outputs, logits, index):
        found["map"] = grad_cam(outputs[0], logits[0, index])

    gradient_pass(model.instrumented(model.levels([layer])), model.module, x, 1, lambda logits: target,
                  effect=False, layercam=False, extra=keep)
    return found["map"]


@pytest.mark.parametrize("layer", ["layer4.2", "layer3.5", "layer1.0.bn1"])  # layer1.0.bn1: an in-place ReLU follows
def test_grad_cam_map_equals_grad_cam_with_gradients_throughout(resnet50_random, cat_path, layer):
    x = network_in(resnet50_random, cat_path)
    ours = grad_cam_map(resnet50_random, x, layer, 281)
    reference = grad_cam_with_gradients_throughout(resnet50_random, x, layer, 281)
    assert ours.shape == reference.shape and reference.max() > 0
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-7)


def test_grad_cam_pass_leaves_gradient_mode_and_in_place_activations_as_they_were(resnet50_random, cat_path):
    in_place = [m for m in resnet50_random.module.modules() if getattr(m, "inplace", False) is True]
    assert in_place  # ResNet-50's ReLUs work in place
    with torch.no_grad():
        grad_cam_map(resnet50_random, network_in(resnet50_random, cat_path, 64), "layer1.0.bn1", 281)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert all(m.inplace is True for m in in_place)


def test_a_layer_changed_in_place_by_a_function_runs_with_gradients_throughout(cat_path):
    # DenseNet applies F.relu(features, inplace=True) to its last block's output.
    model = cnn_engine.load_model("densenet121", weights="random", device="cpu")
    x = network_in(model, cat_path, 96)
    seen = []
    passed = grad_cam_pass(model.instrumented(model.levels(["features.denseblock4", "features.norm5"])), model.module,
                           x, 1, lambda logits: 7, sink=lambda i, value: seen.append((i, tuple(value.shape))))
    reference = grad_cam_with_gradients_throughout(model, x, "features.norm5", 7)
    torch.testing.assert_close(passed.map, reference, rtol=1e-5, atol=1e-9)
    assert passed.target == 7 and passed.logits.shape == (1, 1000)
    assert seen[-1] == (0, (1, 1024, 3, 4))  # the other level, given again by the second run


def test_occlusion_drop_is_each_occluded_image_run_alone(lite0, cat_path):
    x = network_in(lite0, cat_path, 64)[:, :, :, :64]  # 64 x 64: four 32-pixel patches, no overlap
    with torch.inference_mode():
        base = torch.softmax(lite0.module(x), dim=1)[0, 281]
        alone = []
        for top, left in [(0, 0), (0, 32), (32, 0), (32, 32)]:
            hidden = x.clone()
            hidden[:, :, top:top + 32, left:left + 32] = 0  # the "mean" occluder in normalised space
            alone.append(float(base - torch.softmax(lite0.module(hidden), dim=1)[0, 281]))
    drop, images = occlusion_map(lite0.module, x, 281, float(base), patch=32, stride=32, occluder="mean", batch_size=4)
    assert images == 4
    quadrants = [drop[0, 0], drop[0, 32], drop[32, 0], drop[32, 32]]
    assert [float(q) for q in quadrants] == pytest.approx(alone, rel=1e-5, abs=1e-6)  # to float32 rounding
