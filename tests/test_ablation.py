"""Ablation by running only the rest of the network: checked against the whole model run with
the channels zeroed the plain way (a forward hook on the real module, or a zeroed input)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnn_engine
from cnn_engine.ablation import AblationError, ablated_probabilities, ablation_scores
from cnn_engine.images import load_image
from cnn_engine.models import as_cnn_model
from cnn_engine.preprocess import Preprocessing, network_input

# Batched suffix passes and single-image full passes take different convolution paths: they
# agree to float32 rounding, well below the changes the ablations make (checked in each test).
TOLERANCE = dict(rtol=1e-4, atol=1e-7)
SETS = [[0], [1, 2], [5], [2, 3, 4, 7], [6]]


@pytest.fixture(scope="module")
def resnet18() -> cnn_engine.CnnModel:
    return cnn_engine.load_model("resnet18", weights="random", device="cpu")


def cat_input(model: cnn_engine.CnnModel, cat_path) -> torch.Tensor:
    """The cat as the network sees it: (1, 3, 224, 337), normalised with the model's mean/std."""
    return network_input(load_image(cat_path).image, Preprocessing(), model.mean, model.std).tensor


def probabilities(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.softmax(module(x)[0].float(), dim=0)


def hooked_probabilities(model, x, module_name: str, call: int, sets, target: int) -> torch.Tensor:
    """The whole model, once per set, with a forward hook zeroing the set's channels in the
    output of ``module_name``'s ``call``-th call (0 = first)."""
    module = model.module.get_submodule(module_name)
    found = []
    for channels in sets:
        calls = [0]

        def zero(_module, _inputs, output, channels=channels):
            calls[0] += 1
            if calls[0] - 1 != call:
                return None
            output = output.clone()
            output[:, channels] = 0
            return output

        handle = module.register_forward_hook(zero)
        try:
            found.append(float(probabilities(model.module, x)[target]))
        finally:
            handle.remove()
    return torch.tensor(found)


def top1(model, x) -> tuple[int, float]:
    p = probabilities(model.module, x)
    return int(p.argmax()), float(p.max())


@pytest.mark.parametrize(
    "node, module_name, call",
    [
        ("layer1.0.relu", "layer1.0.relu", 0),  # the first of two calls of one in-place ReLU
        ("layer3.1.conv2", "layer3.1.conv2", 0),  # inside a residual block: the identity crosses the cut
        ("layer2.0.relu_1", "layer2.0", 0),  # a block output (the blocks level layer2.0)
        ("layer4.1.relu_1", "layer4.1", 0),  # the last block
    ],
)
def test_resnet18_suffix_matches_a_forward_hook(resnet18, cat_path, node, module_name, call):
    x = cat_input(resnet18, cat_path)
    target, clean = top1(resnet18, x)
    expected = hooked_probabilities(resnet18, x, module_name, call, SETS, target)
    got = ablated_probabilities(resnet18, x, node, SETS, target, batch_size=2)
    assert (expected - clean).abs().max() > 1e-5  # the ablations change the probability
    torch.testing.assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize(
    "node, module_name, call",
    [
        ("_swish", "_swish", 0),  # the stem
        ("_blocks.4._bn1", "_blocks.4._bn1", 0),  # inside a residual block
        ("_blocks.4._swish_1", "_blocks.4._swish", 1),  # the second call of a block's ReLU6
        ("_blocks.4.add", "_blocks.4", 0),  # the residual sum, the blocks level _blocks.4
        ("_swish_1", "_swish", 1),  # the last feature map (same ReLU6 module as the stem)
    ],
)
def test_efficientnet_lite0_suffix_matches_a_forward_hook(lite0, cat_path, node, module_name, call):
    x = cat_input(lite0, cat_path)
    target, clean = top1(lite0, x)
    expected = hooked_probabilities(lite0, x, module_name, call, SETS, target)
    got = ablated_probabilities(lite0, x, node, SETS, target, batch_size=2)
    assert (expected - clean).abs().max() > 1e-4
    torch.testing.assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize("name", ["resnet18", "lite0"])
def test_input_level_zeroes_a_colour_channel_of_the_normalised_input(name, request, cat_path):
    model = request.getfixturevalue(name)
    x = cat_input(model, cat_path)
    target, _ = top1(model, x)
    sets = [[0], [1], [2], [0, 2]]
    expected = []
    for channels in sets:
        zeroed = x.clone()
        zeroed[:, channels] = 0
        expected.append(float(probabilities(model.module, zeroed)[target]))
    got = ablated_probabilities(model, x, "input", sets, target, batch_size=3)
    torch.testing.assert_close(got, torch.tensor(expected), **TOLERANCE)


def test_an_empty_set_gives_the_clean_probability(lite0, cat_path):
    x = cat_input(lite0, cat_path)
    target, clean = top1(lite0, x)
    got = ablated_probabilities(lite0, x, "_blocks.9.add", [[]], target)
    torch.testing.assert_close(got, torch.tensor([clean]), **TOLERANCE)


def test_batch_size_does_not_change_the_probabilities(lite0, cat_path):
    # efficientnet_lite0 reads its batch size from the input (x.size(0)) before the cut and uses it
    # in its final view: that must be read again from each batch.
    x = cat_input(lite0, cat_path)
    target, _ = top1(lite0, x)
    sets = [[c] for c in range(7)]
    one = ablated_probabilities(lite0, x, "_blocks.9.add", sets, target, batch_size=1)
    three = ablated_probabilities(lite0, x, "_blocks.9.add", sets, target, batch_size=3)
    all_at_once = ablated_probabilities(lite0, x, "_blocks.9.add", sets, target, batch_size=32)
    torch.testing.assert_close(three, one, **TOLERANCE)
    torch.testing.assert_close(all_at_once, one, **TOLERANCE)


class CrossingResidual(nn.Module):
    """A small CNN whose ReLU writes in place into a value that crosses a later cut: ``a`` is
    made before ``conv2`` and overwritten by the ReLU after it."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=inplace)
        self.conv3 = nn.Conv2d(8, 6, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(x)
        b = self.conv2(a)
        c = self.relu(a)
        d = self.relu(self.conv3(c + b))
        return self.fc(torch.flatten(self.pool(d), 1))


@pytest.fixture(scope="module")
def crossing_input() -> torch.Tensor:
    return torch.randn(1, 3, 20, 24, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("node", ["conv1", "conv2", "relu", "add"])
def test_in_place_relu_gives_the_same_as_not_in_place(crossing_input, node):
    in_place = as_cnn_model(CrossingResidual(inplace=True))
    plain = as_cnn_model(CrossingResidual(inplace=False))
    sets = [[c] for c in range(6)] + [[0, 1, 2]]
    got = ablated_probabilities(in_place, crossing_input, node, sets, target=2, batch_size=4)
    expected = ablated_probabilities(plain, crossing_input, node, sets, target=2, batch_size=4)
    torch.testing.assert_close(got, expected, **TOLERANCE)
    torch.testing.assert_close(ablated_probabilities(in_place, crossing_input, node, sets, target=2, batch_size=4),
                               got, rtol=0, atol=0)  # nothing stored was overwritten by the first run


def test_in_place_relu_model_matches_a_forward_hook(crossing_input):
    model = as_cnn_model(CrossingResidual(inplace=True))
    sets = [[c] for c in range(8)]
    expected = hooked_probabilities(model, crossing_input, "conv2", 0, sets, target=2)
    got = ablated_probabilities(model, crossing_input, "conv2", sets, target=2, batch_size=3)
    torch.testing.assert_close(got, expected, **TOLERANCE)


def test_ablation_scores_are_the_drop_from_the_clean_probability(crossing_input):
    model = as_cnn_model(CrossingResidual(inplace=True))
    levels = model.levels(["conv2", "relu_1"])
    clean = float(probabilities(model.module, crossing_input)[2])
    scores = ablation_scores(model, crossing_input, levels, target=2, batch_size=3)
    assert [s.shape for s in scores] == [torch.Size([8]), torch.Size([6])]
    assert all(s.dtype == torch.float32 for s in scores)
    for level, score in zip(levels, scores):
        sets = [[c] for c in range(score.numel())]
        measured = ablated_probabilities(model, crossing_input, level.node, sets, target=2)
        torch.testing.assert_close(score, clean - measured, **TOLERANCE)


def test_progress_counts_channels_over_all_levels(crossing_input):
    model = as_cnn_model(CrossingResidual(inplace=True))
    calls = []
    ablation_scores(model, crossing_input, model.levels(["conv2", "relu_1"]), target=2, batch_size=3,
                    progress=lambda done, total: calls.append((done, total)))
    # conv2: 8 channels in batches of 3, 3, 2; relu_1 (conv3's output): 6 in 3, 3.
    assert calls == [(3, 14), (6, 14), (8, 14), (11, 14), (14, 14)]


def test_unknown_node_is_a_layer_error_with_close_names(resnet18, cat_path):
    with pytest.raises(cnn_engine.LayerError, match=r"unknown operation 'layer3\.1\.conv9'.*layer3\.1\.conv2"):
        ablated_probabilities(resnet18, cat_input(resnet18, cat_path), "layer3.1.conv9", [[0]], target=0)


def test_channel_out_of_range_is_a_layer_error_naming_the_channel_count(resnet18, cat_path):
    with pytest.raises(cnn_engine.LayerError, match=r"channel 64 is out of range for operation 'layer1\.0\.relu', "
                                                    r"which has 64 channels: use indices 0 to 63"):
        ablated_probabilities(resnet18, cat_input(resnet18, cat_path), "layer1.0.relu", [[0], [64]], target=0)


def test_target_out_of_range_is_an_engine_error(resnet18, cat_path):
    with pytest.raises(AblationError, match="target class 1000 is out of range: the model has 1000 classes"):
        ablated_probabilities(resnet18, cat_input(resnet18, cat_path), "layer4.1.relu_1", [[0]], target=1000)
    assert issubclass(AblationError, cnn_engine.CnnEngineError)
