"""ParaView's own NetCDF reader opens an export, with default settings, as image data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

PVPYTHON = shutil.which("pvpython") or "/usr/bin/pvpython"
SCRIPT = Path(__file__).parent / "paraview" / "open_export.py"


@pytest.fixture(scope="module")
def reader_report(cat_volume, tmp_path_factory):
    path = cat_volume.normalized().to_netcdf(tmp_path_factory.mktemp("pv") / "cat.nc")
    result = subprocess.run([PVPYTHON, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


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
