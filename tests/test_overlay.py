"""The cnnvis explain picture: title, the map over a grey picture, and a colour bar."""

from __future__ import annotations

import numpy as np
import pytest

import cnn_engine
from cnn_engine.images import load_image
from cnn_engine.overlay import desaturated, evidence_figure, explain_figure, overlay


@pytest.fixture(scope="module")
def cam_volume(lite0, cat_path):
    return cnn_engine.compute_volume(lite0, cat_path, top_k=1, evidence="cam", target="tabby")


@pytest.fixture(scope="module")
def cat_rgb(cat_path):
    return np.asarray(load_image(cat_path).image.resize((337, 224)))


def _half_map(shape: tuple[int, int]) -> np.ndarray:
    """No evidence on the left half, evidence rising to 1 across the right half."""
    values = np.zeros(shape, dtype=np.float32)
    values[:, shape[1] // 2:] = np.linspace(0.1, 1.0, shape[1] - shape[1] // 2, dtype=np.float32)
    return values


def test_figure_is_the_picture_with_a_title_above_and_a_colour_bar_below(cam_volume):
    figure = explain_figure(cam_volume)
    top, left, bottom, right = figure.picture_box
    assert (bottom - top, right - left) == (224, 337) and left == 0
    assert top > 20 and figure.rgb.shape[0] - bottom > 20 and figure.rgb.shape[1] == 337


def test_title_text_is_drawn(cam_volume):
    figure = explain_figure(cam_volume)
    strip = figure.rgb[: figure.picture_box[0]]
    rows_with_ink = int((strip.min(axis=(1, 2)) < 100).sum())
    assert rows_with_ink >= 20  # three lines of dark text on white, not a uniform strip


def test_picture_is_grey_where_there_is_no_evidence(cat_rgb):
    values = _half_map(cat_rgb.shape[:2])
    figure = evidence_figure(cat_rgb, values, ["title"], "caption")
    top, left, bottom, right = figure.picture_box
    picture = figure.rgb[top:bottom, left:right]
    none = values == 0
    assert np.array_equal(picture[none], desaturated(cat_rgb)[none])
    assert np.all(picture[none][:, 0] == picture[none][:, 2])  # grey: red = blue, whatever the cat's colour


def test_picture_is_coloured_where_the_evidence_is_highest(cat_rgb):
    values = _half_map(cat_rgb.shape[:2])
    figure = evidence_figure(cat_rgb, values, ["title"], "caption")
    top, left, bottom, right = figure.picture_box
    strongest = figure.rgb[top:bottom, left:right][values == values.max()]
    assert np.all(strongest[:, 0].astype(int) - strongest[:, 2].astype(int) > 40)  # inferno's yellow end


def test_colour_bar_runs_from_grey_to_the_brightest_colour(cat_rgb):
    figure = evidence_figure(cat_rgb, _half_map(cat_rgb.shape[:2]), ["title"], "caption")
    below = figure.rgb[figure.picture_box[2]:]
    bar_rows = [row for row in below if len({tuple(p) for p in row}) > 100]  # the gradient, not text
    assert bar_rows, "no colour bar below the picture"
    row = bar_rows[len(bar_rows) // 2]
    inside = row[(row != 255).any(axis=1)][2:-2]  # within the bar's outline
    assert inside[0, 0] == inside[0, 1] == inside[0, 2]  # left end: no colour
    assert int(inside[-1, 0]) - int(inside[-1, 2]) > 40  # right end: the map's top colour


def test_negative_evidence_counts_as_none(cat_rgb):
    values = _half_map(cat_rgb.shape[:2])
    values[:, : values.shape[1] // 2] = -5.0
    figure = evidence_figure(cat_rgb, values, ["title"], "caption")
    top, left, bottom, right = figure.picture_box
    assert np.array_equal(figure.rgb[top:bottom, left:right][values < 0], desaturated(cat_rgb)[values < 0])


def test_overlay_still_blends_over_the_picture_as_it_is(cat_rgb):
    values = _half_map(cat_rgb.shape[:2])
    blended = overlay(cat_rgb, values)
    assert blended.shape == cat_rgb.shape and blended.dtype == np.uint8
    assert np.array_equal(blended[values == 0], cat_rgb[values == 0])
