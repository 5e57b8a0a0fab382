"""Captions say what a level and a volume's predictions are, from the volume's metadata alone."""

from __future__ import annotations

from dataclasses import replace

from cnn_engine.captions import image_caption, level_caption, predictions_caption


def test_input_level_caption_gives_the_input_size(cat_volume):
    assert level_caption(cat_volume.metadata(), 0) == "level 0: input\n337 x 224 pixels"


def test_level_caption_names_layer_channel_and_grid(cat_volume):
    level = cat_volume.levels[9]
    channels, rows, columns = level.native_shape
    assert level_caption(cat_volume.metadata(), 9) == (
        f"level 9: {level.name}\nchannel {level.channels[0]} of {channels}\n{columns} x {rows} cells")


def test_negative_level_counts_from_the_end(cat_volume):
    metadata = cat_volume.metadata()
    assert level_caption(metadata, -1) == level_caption(metadata, 18)
    assert level_caption(metadata, -1).startswith("level 18: layer4.2\n")


def test_predictions_caption_marks_random_weights_and_lists_the_top5(cat_volume):
    lines = predictions_caption(cat_volume.metadata()).split("\n")
    assert lines[0] == "resnet50, weights random (seed 0)  (UNTRAINED: random weights)"
    assert lines[1] == "top-5 predictions:"
    first = cat_volume.predictions[0]
    assert lines[2] == f"  1. {first.label}  {first.probability:.2f}" and len(lines) == 7


def test_predictions_caption_carries_the_offline_substitution(cat_volume):
    metadata = cat_volume.metadata()
    metadata["extra"] = {"substitution": "efficientnet_lite0 (trained, offline) runs instead of resnet50: the "
                                         "ImageNet weights of resnet50 are not in the torch cache"}
    lines = predictions_caption(metadata).split("\n")
    assert lines[1:3] == ["efficientnet_lite0 (trained, offline) runs instead of resnet50: the",
                          "ImageNet weights of resnet50 are not in the torch cache"]


def test_empty_metadata_gives_empty_captions():
    assert level_caption({}, 3) == "" and predictions_caption({}) == ""


def _in_a_set(volume, index, name=None):
    provenance = replace(volume.provenance, image_path="/photos/tabby/cat_1.jpg", set_index=index,
                         true_label=281 if name else None, true_label_name=name)
    return replace(volume, provenance=provenance).metadata()


def test_image_caption_gives_position_from_1_file_true_class_and_top1(cat_volume):
    top = cat_volume.predictions[0]
    assert image_caption(_in_a_set(cat_volume, 2, "tabby"), 25) == \
        f"3/25 cat_1.jpg  true: tabby  top-1: {top.label} {top.probability * 100:.0f}%"


def test_image_caption_prefers_the_class_name_the_caller_knows(cat_volume):
    caption = image_caption(_in_a_set(cat_volume, 0, "n02123045"), 5, true_label="tabby")
    assert caption.startswith("1/5 cat_1.jpg  true: tabby  top-1: ")


def test_image_caption_leaves_out_an_unknown_true_class_and_count(cat_volume):
    assert image_caption(_in_a_set(cat_volume, 4)).startswith("5 cat_1.jpg  top-1: ")


def test_image_caption_of_empty_metadata_is_empty():
    assert image_caption({}, 3) == ""
