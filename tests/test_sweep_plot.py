"""The figure of perturbation sweeps (cnn_engine.sweep_plot): real sweeps of the offline trained
model on the cat photograph, drawn to real PNG files and read back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnn_engine.errors import CnnEngineError, OutputError
from cnn_engine.sweep import sweep
from cnn_engine.sweep_plot import (
    COLUMN_WIDTH, CURVES_HEIGHT, HEATMAP_HEIGHT, LEVEL_HEIGHT, axis_label, figure_pixels, sweep_figure,
)

LEVELS = ["_swish", "_blocks.2", "_blocks.8", "_swish_1"]
#: The colours of the clean class's curve and of the target's (cnn_engine.sweep_plot).
CLEAN_RGB, TARGET_RGB = (0xC2, 0x18, 0x5B), (0x19, 0x76, 0xD2)


@pytest.fixture(scope="module")
def noise(lite0, cat_path):
    # volumes=False: the figure draws the table only.
    return sweep(lite0, cat_path, "noise", [0, 0.05, 0.1, 0.3], layers=LEVELS, target="tiger cat", volumes=False)


@pytest.fixture(scope="module")
def jpeg(lite0, cat_path):
    return sweep(lite0, cat_path, "jpeg", [5, 50, 100], layers=LEVELS, volumes=False)


def picture(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def pixels_of(rgb: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(rgb == colour, axis=2).sum())


def test_one_sweep_is_one_column_of_the_documented_size(noise, tmp_path):
    path = sweep_figure([noise], tmp_path / "noise.png")
    assert path == (tmp_path / "noise.png").resolve()
    expected = (COLUMN_WIDTH, CURVES_HEIGHT + HEATMAP_HEIGHT + LEVEL_HEIGHT * len(LEVELS))
    assert figure_pixels([noise]) == expected == (560, 594)
    assert Image.open(path).size == expected


def test_the_figure_draws_the_clean_class_and_the_target_curves_and_the_heatmap(noise, tmp_path):
    rgb = picture(sweep_figure([noise], tmp_path / "noise.png"))
    assert pixels_of(rgb, CLEAN_RGB) > 100 and pixels_of(rgb, TARGET_RGB) > 100
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200  # a colour map, text, lines: not blank


def test_without_a_target_only_the_clean_class_curve_is_drawn(jpeg, tmp_path):
    rgb = picture(sweep_figure([jpeg], tmp_path / "jpeg.png"))
    assert pixels_of(rgb, CLEAN_RGB) > 100 and pixels_of(rgb, TARGET_RGB) == 0


def test_several_sweeps_are_compared_one_column_each(noise, jpeg, tmp_path):
    path = sweep_figure([noise, jpeg], tmp_path / "both.png")
    assert Image.open(path).size == (2 * COLUMN_WIDTH, CURVES_HEIGHT + HEATMAP_HEIGHT + LEVEL_HEIGHT * len(LEVELS))


def test_the_severity_axis_names_the_parameter_its_unit_and_the_clean_value(noise, jpeg):
    assert axis_label(noise) == "noise sigma [fraction of full scale, clean at 0]"
    assert axis_label(jpeg) == "jpeg quality [JPEG quality (1-100)]"  # no severity leaves a JPEG clean


def test_a_name_not_ending_in_png_is_refused_and_nothing_is_written(noise, tmp_path):
    with pytest.raises(OutputError, match=r"cannot write the sweep figure to .*noise.jpg: it is a PNG picture; "
                                          r"give a name ending in \.png"):
        sweep_figure([noise], tmp_path / "noise.jpg")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_refused_and_nothing_is_written(noise, tmp_path):
    with pytest.raises(OutputError, match="the folder .*missing does not exist"):
        sweep_figure([noise], tmp_path / "missing" / "noise.png")
    assert list(tmp_path.iterdir()) == []


def test_no_sweep_is_an_error(tmp_path):
    with pytest.raises(CnnEngineError, match="no sweep to draw: give at least one sweep"):
        sweep_figure([], tmp_path / "none.png")
    assert list(tmp_path.iterdir()) == []
