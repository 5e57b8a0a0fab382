"""Layer sets resolve to the documented levels, with their native shapes."""

from __future__ import annotations

import pytest

from cnn_engine import LayerError
from cnn_engine.layers import probe_shapes

RESNET50_BLOCKS = (
    ["input", "relu", "maxpool"]
    + [f"layer1.{i}" for i in range(3)]
    + [f"layer2.{i}" for i in range(4)]
    + [f"layer3.{i}" for i in range(6)]
    + [f"layer4.{i}" for i in range(3)]
)


def test_resnet50_blocks_are_the_19_documented_levels(resnet50_random):
    assert [level.name for level in resnet50_random.levels("blocks")] == RESNET50_BLOCKS


def test_resnet50_blocks_native_shapes_at_224(resnet50_random):
    levels = resnet50_random.levels("blocks")
    shapes = probe_shapes(resnet50_random.module, [lv.node for lv in levels], 224)
    sides = [shapes[lv.node][2] for lv in levels]
    channels = [shapes[lv.node][1] for lv in levels]
    assert sides == [224, 112, 56, 56, 56, 56, 28, 28, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7, 7]
    assert channels == [3, 64, 64] + [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


def test_resnet50_block_types(resnet50_random):
    types = [level.layer_type for level in resnet50_random.levels("blocks")]
    assert types[:4] == ["input", "ReLU", "MaxPool2d", "Bottleneck"]


def test_resnet50_convs_is_input_plus_53_convolutions(resnet50_random):
    levels = resnet50_random.levels("convs")
    assert len(levels) == 54
    assert [lv.name for lv in levels[:6]] == [
        "input", "conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3", "layer1.0.downsample.0",
    ]
    assert {lv.layer_type for lv in levels[1:]} == {"Conv2d"}


def test_resnet50_all_is_input_plus_172_spatial_operations(resnet50_random):
    levels = resnet50_random.levels("all")
    names = [lv.name for lv in levels]
    assert len(levels) == 173
    assert names[:6] == ["input", "conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert "layer1.0.relu_2" in names and "layer1.0.add" in names
    assert names[-1] == "layer4.2.relu_2"
    assert "avgpool" not in names and "fc" not in names  # 1x1 and flat outputs are not levels


def test_explicit_names_take_operations_and_modules(resnet50_random):
    levels = resnet50_random.levels(["layer2.0.add", "layer3", "input"])
    assert [(lv.name, lv.node, lv.layer_type) for lv in levels] == [
        ("layer2.0.add", "layer2.0.add", "add"),
        ("layer3", "layer3.5.relu_2", "Sequential"),
        ("input", "input", "input"),
    ]


def test_comma_separated_string_is_a_list_of_names(resnet50_random):
    assert [lv.name for lv in resnet50_random.levels("relu, layer1.0")] == ["relu", "layer1.0"]


def test_unknown_layer_lists_close_matches(resnet50_random):
    with pytest.raises(LayerError, match=r"unknown layer 'layer1\.9' in resnet50; close matches: .*layer1\.0"):
        resnet50_random.levels(["layer1.9"])


def test_layer_without_spatial_output_is_refused(resnet50_random):
    with pytest.raises(LayerError, match=r"layer 'fc' of resnet50 has no spatial output"):
        resnet50_random.levels(["fc"])


def test_efficientnet_lite0_blocks(lite0):
    names = [lv.name for lv in lite0.levels("blocks")]
    assert names == ["input", "_swish"] + [f"_blocks.{i}" for i in range(16)] + ["_swish_1"]


def test_vgg16_blocks_end_each_convolution_stage():
    import cnn_engine

    vgg = cnn_engine.load_model("vgg16", weights="random", device="cpu")
    names = [lv.name for lv in vgg.levels("blocks")]
    assert names == ["input", "features.3", "features.8", "features.15", "features.22", "features.29", "avgpool"]
    assert len(vgg.levels("convs")) == 14
