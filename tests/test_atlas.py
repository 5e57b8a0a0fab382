"""The exemplar atlas (cnn_engine.atlas): a level's channels, each a mosaic of its top exemplars'
receptive fields, cut from the photographs as the network saw them.

The statistics come from a real labelled set (crops of the cat and coffee photographs in class
folders) through the trained offline model, computed once for the module.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnn_engine
from cnn_engine.atlas import CAPTION_HEIGHT, GAP, exemplar_atlas, field_square, save_atlas
from cnn_engine.errors import CnnEngineError, ImageError, LayerError, OutputError
from cnn_engine.images import load_image
from cnn_engine.preprocess import Preprocessing, network_input
from labelled import labelled_set

# The crops of labelled.WINDOWS are of one size (3:2): every image gets the same network input grid.
INPUT_SIZE = 96
TOP_N = 4


@pytest.fixture(scope="module")
def study(tmp_path_factory, samples, lite0):
    folder = labelled_set(tmp_path_factory.mktemp("atlas") / "set", samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cnn_engine.channel_statistics(lite0, folder, top_n=TOP_N, input_size=INPUT_SIZE)


def fitted(path: str, stats) -> np.ndarray:
    """The picture the network saw, decoded and fitted again, independently of the atlas."""
    return network_input(load_image(path).image, Preprocessing(**stats.preprocessing), (0, 0, 0), (1, 1, 1)).rgb


def test_the_picture_is_the_grid_of_blocks_of_tiles_with_captions(study, lite0):
    atlas = exemplar_atlas(study, "_blocks.1", tile=16)
    side = math.ceil(math.sqrt(TOP_N))  # 2 x 2 exemplars a block
    assert (atlas.side, atlas.columns, atlas.rows) == (side, 4, 4)  # 16 channels by default
    width = 4 * side * 16 + 5 * GAP
    height = 4 * (CAPTION_HEIGHT + side * 16) + 5 * GAP
    assert atlas.rgb.shape == (height, width, 3) and atlas.rgb.dtype == np.uint8
    assert atlas.blocks[5] == (GAP + (side * 16 + GAP), GAP + (CAPTION_HEIGHT + side * 16 + GAP),
                               GAP + 2 * (side * 16) + GAP, GAP + 2 * (CAPTION_HEIGHT + side * 16) + GAP)


def test_by_default_the_levels_16_most_selective_channels_are_shown_in_that_order(study, lite0):
    atlas = exemplar_atlas(study, "_blocks.1", tile=8)
    assert atlas.channels == tuple(row.channel for row in study.most_selective("_blocks.1", 16))


def test_a_caption_names_channel_selectivity_and_preferred_class(study, lite0):
    atlas = exemplar_atlas(study, 3, channels=[7], tile=96)
    cls = int(study.preferred_class[3][7])
    assert atlas.captions == (f"7 SI {study.selectivity[3][7]:.2f} {study.class_name(cls)} ({cls})",)
    caption_strip = atlas.rgb[atlas.blocks[0][1]:atlas.blocks[0][1] + CAPTION_HEIGHT]
    assert (caption_strip < 128).any()  # the text is drawn


def test_a_caption_wider_than_its_block_shortens_the_class_name(study, lite0):
    # A block of 2 x 64 pixels holds 21 characters of Pillow's default font (6 pixels each).
    atlas = exemplar_atlas(study, 3, channels=[7], tile=64)
    cls = int(study.preferred_class[3][7])
    assert len(f"7 SI {study.selectivity[3][7]:.2f} {study.class_name(cls)} ({cls})") > 21
    assert atlas.captions == (f"7 SI {study.selectivity[3][7]:.2f} {study.class_name(cls)[:3]}.. ({cls})",)


def test_a_tile_is_the_receptive_field_cut_from_the_re_decoded_picture(study, lite0):
    level = "_blocks.1"  # a field of a few pixels: well inside the picture at the maxima
    channel = study.most_selective(level, 1)[0].channel
    exemplars = study.exemplars(level, channel)
    atlas = exemplar_atlas(study, level, channels=[channel], tile=32)
    for k, exemplar in enumerate(exemplars):
        x0, y0, x1, y1 = exemplar.box
        height, width = study.image_sizes[exemplar.position]
        if x0 == 0 or y0 == 0 or x1 == width or y1 == height:
            continue  # clipped: see the next test
        crop = fitted(exemplar.image, study)[y0:y1, x0:x1]
        expected = np.asarray(Image.fromarray(crop).resize((32, 32), Image.BILINEAR))
        left, top, right, bottom = atlas.tile_box(0, k)
        np.testing.assert_array_equal(atlas.rgb[top:bottom, left:right], expected)
        break
    else:
        pytest.fail("no exemplar with an unclipped field")


def test_a_field_wider_than_the_picture_shows_the_picture_on_black_where_the_field_lies(study, lite0):
    level = "_swish_1"  # the last level: its field (hundreds of pixels) is wider than the 144 x 96 input
    exemplar = study.exemplars(level, 0)[0]
    picture = fitted(exemplar.image, study)
    node = {spec.name: spec.node for spec in lite0.levels("blocks")}[level]
    cells = lite0.geometry(picture.shape[:2])[node]
    top, left, _, _ = cells.box(exemplar.row, exemplar.col)
    square = field_square(study, exemplar)
    assert square.shape == (int(cells.receptive_field[0]), int(cells.receptive_field[1]), 3)
    y, x = -math.ceil(top + 0.5), -math.ceil(left + 0.5)  # where input pixel (0, 0) lies in the field
    np.testing.assert_array_equal(square[y:y + picture.shape[0], x:x + picture.shape[1]], picture)
    outside = square.copy()
    outside[y:y + picture.shape[0], x:x + picture.shape[1]] = 0
    assert not outside.any()


def test_channels_named_are_shown_in_the_order_given(study, lite0):
    atlas = exemplar_atlas(study, "_blocks.1", channels=[12, 3, 7], tile=8)
    assert atlas.channels == (12, 3, 7) and (atlas.columns, atlas.rows) == (2, 2)


def test_a_channel_the_level_does_not_have_is_refused_with_its_range(study, lite0):
    with pytest.raises(LayerError, match=r"channel 24 does not exist on level '_blocks.1', which has channels 0 to 23"):
        exemplar_atlas(study, "_blocks.1", channels=[3, 24])


def test_an_exemplar_image_that_moved_is_named(study, lite0, tmp_path):
    moved = str(tmp_path / "gone" / "tabby_0.png")
    stats = dataclasses.replace(study, image_paths=tuple(moved for _ in study.image_paths))
    with pytest.raises(ImageError, match=rf"an exemplar image cannot be read any more: image not found: {moved}; "
                                         r"the atlas cuts its tiles from the images the statistics saw: put it back"):
        exemplar_atlas(stats, "_blocks.1", channels=[0])


def test_an_exemplar_image_that_changed_is_named(study, lite0, tmp_path, samples):
    changed = tmp_path / "square.png"
    Image.open(samples / "cat.jpg").convert("RGB").crop((0, 0, 300, 300)).save(changed)
    stats = dataclasses.replace(study, image_paths=tuple(str(changed) for _ in study.image_paths))
    with pytest.raises(ImageError, match=rf"exemplar image {changed} has changed since the statistics were computed "
                                         r"\(network input 96x96 px now, 144x96 px then\)"):
        exemplar_atlas(stats, "_blocks.1", channels=[0])


def test_a_study_file_gives_the_same_atlas(study, tmp_path):
    path = study.to_netcdf(tmp_path / "study.nc")
    from_file = exemplar_atlas(path, "_blocks.2", channels=[1, 5], tile=16)
    np.testing.assert_array_equal(from_file.rgb, exemplar_atlas(study, "_blocks.2", channels=[1, 5], tile=16).rgb)


def test_save_atlas_writes_the_picture_as_png(study, lite0, tmp_path):
    atlas = exemplar_atlas(study, "_blocks.1", channels=[0, 1], tile=8)
    path = save_atlas(atlas, tmp_path / "atlas.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), atlas.rgb)
    with pytest.raises(OutputError, match="an atlas is written as PNG: give a file name ending in .png, not atlas.jpg"):
        save_atlas(atlas, tmp_path / "atlas.jpg")


def test_a_tile_size_out_of_range_is_refused(study, lite0):
    with pytest.raises(CnnEngineError, match="tile must be a whole number of pixels from 8 to 512, not 4"):
        exemplar_atlas(study, "_blocks.1", tile=4)
