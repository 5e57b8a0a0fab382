"""ParaView's own NetCDF reader opens an export, with default settings, as image data."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import cnn_engine

PVPYTHON = shutil.which("pvpython") or "/usr/bin/pvpython"
SCRIPT = Path(__file__).parent / "paraview" / "open_export.py"


def _open_with_stock_reader(path) -> dict:
    result = subprocess.run([PVPYTHON, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reader_report(cat_volume, tmp_path_factory):
    return _open_with_stock_reader(cat_volume.normalized().to_netcdf(tmp_path_factory.mktemp("pv") / "cat.nc"))


def test_stock_reader_gives_image_data(reader_report):
    assert reader_report["class"] == "vtkImageData"


def test_extent_and_spacing_match_the_volume(reader_report, cat_volume):
    levels, height, width = cat_volume.shape
    assert reader_report["extent"] == [0, width - 1, 0, height - 1, 0, levels - 1]
    assert reader_report["spacing"] == pytest.approx([1.0, 1.0, cat_volume.level_spacing], rel=1e-6)


def test_point_arrays_are_the_ranks_and_the_picture(reader_report):
    assert reader_report["point_arrays"] == ["image_luminance", "rank0", "rank1", "rank2", "rank3"]


def test_values_arrive_upright_and_normalised(reader_report, cat_volume):
    expected = cat_volume.normalized().arrays["rank0"][5]
    levels, height, width = cat_volume.shape
    # The script samples rank0 at level 5, image row 0 (the top), column 0: y = height - 1.
    assert reader_report["rank0_level5_top_left"] == pytest.approx(float(expected[0, 0]))
    assert reader_report["rank0_range"][0] >= 0.0 and reader_report["rank0_range"][1] == 1.0


def test_evidence_map_and_accented_text_change_nothing_for_the_reader(resnet50_random, cat_path, tmp_path):
    """target_evidence (y, x), UTF-8 char variables and the coordinates attributes stay out of its way."""
    volume = cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=2, evidence="cam")
    levels = list(volume.levels)
    levels[3] = dataclasses.replace(levels[3], name="couche_é.0")
    volume = dataclasses.replace(volume, levels=levels).normalized()
    report = _open_with_stock_reader(volume.to_netcdf(tmp_path / "évidence.nc"))
    levels_count, height, width = volume.shape
    assert report["class"] == "vtkImageData" and report["point_arrays"] == ["image_luminance", "rank0", "rank1"]
    assert report["extent"] == [0, width - 1, 0, height - 1, 0, levels_count - 1]
    assert report["rank0_level5_top_left"] == pytest.approx(float(volume.arrays["rank0"][5][0, 0]))


def test_layercam_arrives_beside_the_ranks(resnet50_random, cat_path, tmp_path):
    """layercam (level, y, x) sorts after image_luminance: the reader loads it with the ranks, upright."""
    volume = cnn_engine.compute_volume(resnet50_random, cat_path, layers="blocks", top_k=2, evidence="layercam")
    volume = volume.normalized()
    report = _open_with_stock_reader(volume.to_netcdf(tmp_path / "layercam.nc"))
    levels, height, width = volume.shape
    assert report["class"] == "vtkImageData"
    assert report["point_arrays"] == ["image_luminance", "layercam", "rank0", "rank1"]
    assert report["extent"] == [0, width - 1, 0, height - 1, 0, levels - 1]
    assert report["layercam_level5_top_left"] == pytest.approx(float(volume.arrays["layercam"][5][0, 0]))
