"""`cnnvis study`, `cnnvis atlas` and `cnnvis probe`: which channel responds to which class, what
its exemplars look like, and which orientation and colour it prefers.

The main `cnnvis study` run is a separate process (what a user starts: the progress bar, the
printed table, the files), made once for the module on a real labelled set (crops of the cat and
coffee photographs in class folders named by ImageNet class names) with the trained offline
model. The other cases run in this process through cnnvis's own entry point
(``cnn_engine.cli.main``), as tests/test_cli_sets.py does, so that they do not pay for starting
Python and importing torch again.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_engine.atlas import CAPTION_HEIGHT, GAP
from labelled import labelled_set
from cnn_engine.probes import read_channel_probes
from cnn_engine.statistics import read_channel_statistics

CNNVIS = str(Path(sys.executable).parent / "cnnvis")
MODEL = ("--model", "efficientnet_lite0")
SMALL = ("--input-size", "96", "--top-n", "4")
# Windows of one size (3:2) in each photograph: every image gets the same network input grid.



@pytest.fixture(scope="module")
def studied(tmp_path_factory, samples):
    """`cnnvis study SET -o study.nc --csv study.csv --show 4` as a user runs it."""
    folder = tmp_path_factory.mktemp("study")
    labelled_set(folder / "set", samples)
    result = subprocess.run([CNNVIS, "study", str(folder / "set"), "-o", str(folder / "study.nc"), "--csv",
                             str(folder / "study.csv"), *MODEL, *SMALL, "--show", "4"],
                            capture_output=True, text=True, timeout=600)
    return folder, result



def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("cnnvis: error: ")]


def printed_tables(stdout: str) -> dict[str, list[tuple[int, str, str, str]]]:
    """Per level name, the rows of its printed table: channel, preferred class, selectivity, AUROC."""
    tables: dict[str, list] = {}
    level = None
    for line in stdout.splitlines():
        heading = re.match(r"level \d+ (\S+): ", line)
        row = re.match(r"\s+(\d+)\s{2}(.+?)\s+(\S+)\s+(\S+)$", line)
        if heading:
            level = heading[1]
            tables[level] = []
        elif row and level is not None:
            tables[level].append((int(row[1]), row[2], row[3], row[4]))
    return tables


# --- cnnvis study ----------------------------------------------------------------------------------


def test_study_writes_a_file_that_reads_back_and_a_csv_table(studied):
    folder, result = studied
    assert result.returncode == 0, result.stderr
    stats = read_channel_statistics(folder / "study.nc")
    assert stats.model_name == "efficientnet_lite0" and stats.images == 12
    assert stats.classes == (281, 967) and list(stats.class_counts) == [6, 6]
    with open(folder / "study.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(stats.channel_counts)
    assert rows[0]["level"] == "input" and rows[0]["preferred_class_name"] in ("tabby", "espresso")
    assert f"wrote {folder / 'study.nc'}" in result.stdout and f"wrote {folder / 'study.csv'}" in result.stdout


def test_study_prints_per_level_the_engines_most_selective_channels_with_class_name_and_index(studied):
    folder, result = studied
    stats = read_channel_statistics(folder / "study.nc")
    tables = printed_tables(result.stdout)
    assert list(tables) == list(stats.levels)
    for level in stats.levels:
        expected = [(row.channel, f"{row.preferred_class_name} ({row.preferred_class})",
                     f"{row.selectivity:.3f}" if row.selectivity == row.selectivity else "n/a", f"{row.auroc:.3f}")
                    for row in stats.most_selective(level, 4)]
        assert tables[level] == expected, level


def test_study_shows_one_progress_bar_with_the_time_left(studied):
    _, result = studied
    assert "12/12" in result.stderr
    assert re.search(r"computing: +\d+%.*\[\d\d:\d\d<\d\d:\d\d", result.stderr)  # elapsed < time left


def test_a_level_with_fewer_channels_than_show_shows_all_and_says_so(studied):
    _, result = studied
    assert "level 0 input: 3 channels, all 3, fewer than --show 4" in result.stdout
    assert "level 1 _swish: 32 channels, the 4 most selective" in result.stdout
    assert len(printed_tables(result.stdout)["input"]) == 3


def test_a_set_of_one_class_writes_the_file_and_says_selectivity_is_undefined(tmp_path, samples, cnnvis):
    labelled_set(tmp_path / "set", samples, classes=(("tabby", "cat.jpg"),))
    result = cnnvis("study", str(tmp_path / "set"), "-o", str(tmp_path / "one.nc"), *MODEL, *SMALL)
    assert result.returncode == 0, result.stderr
    assert read_channel_statistics(tmp_path / "one.nc").classes == (281,)
    assert ("no channel ranking: the set has one class only (tabby), so selectivity and AUROC are undefined"
            in result.stdout)
    assert "cnnvis: note: the set has one class only (tabby): selectivity and AUROC compare a class" in result.stderr


def test_labels_that_match_no_class_are_refused_before_anything_is_computed(tmp_path, samples, cnnvis):
    labelled_set(tmp_path / "set", samples, classes=(("kitten", "cat.jpg"), ("coffee cup", "coffee.jpg")))
    result = cnnvis("study", str(tmp_path / "set"), "-o", str(tmp_path / "s.nc"), *MODEL, *SMALL)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "cnnvis: error: none of the set's labels (coffee cup, kitten) is a class of efficientnet_lite0: name the "
        "folders (or the list file's labels) by class name, WordNet ID or class index, e.g. tabby, n02123045 or 281"]
    assert "cnnvis: note: label 'kitten' (from " in result.stderr  # why each label failed
    assert not (tmp_path / "s.nc").exists()


def test_an_unreadable_image_is_one_error_line_and_the_rest_is_studied(tmp_path, samples, cnnvis):
    labelled_set(tmp_path / "set", samples)
    (tmp_path / "set" / "tabby" / "broken.png").write_bytes(b"not a picture")
    result = cnnvis("study", str(tmp_path / "set"), "-o", str(tmp_path / "s.nc"), *MODEL, *SMALL)
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert "broken.png" in line
    assert "failed 1: broken.png" in result.stdout
    assert read_channel_statistics(tmp_path / "s.nc").images == 12


def test_an_output_that_is_not_a_nc_file_is_refused_before_the_model_loads(tmp_path, samples, cnnvis):
    result = cnnvis("study", str(samples), "-o", str(tmp_path / "study.txt"), *MODEL)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"cnnvis: error: the netCDF file {tmp_path / 'study.txt'} should end in .nc: give a name such as study.nc"]


def test_show_below_one_is_refused(tmp_path, samples, cnnvis):
    result = cnnvis("study", str(samples), "-o", str(tmp_path / "s.nc"), "--show", "0")
    assert error_lines(result.stderr) == ["cnnvis: error: --show must be at least 1, not 0"]


# --- cnnvis atlas ----------------------------------------------------------------------------------


def test_atlas_writes_a_png_of_the_grid_of_tiles(studied, tmp_path, cnnvis):
    folder, _ = studied
    out = tmp_path / "atlas.png"
    result = cnnvis("atlas", str(folder / "study.nc"), "--level", "_blocks.1", "-o", str(out), "--channels", "3,7,12",
                    "--tile", "16")
    assert result.returncode == 0, result.stderr
    side, columns, rows = 2, 2, 2  # 4 exemplars a channel: 2 x 2 tiles; 3 channels: 2 x 2 blocks
    width, height = columns * side * 16 + (columns + 1) * GAP, rows * (CAPTION_HEIGHT + side * 16) + (rows + 1) * GAP
    assert Image.open(out).size == (width, height)
    assert "level 3 _blocks.1: channels 3, 7, 12" in result.stdout
    assert f"wrote {out} ({width}x{height} px: 2 x 2 channels, 2 x 2 exemplars of 16 px each)" in result.stdout


def test_atlas_takes_the_level_by_index_and_shows_the_most_selective_by_default(studied, tmp_path, cnnvis):
    folder, _ = studied
    result = cnnvis("atlas", str(folder / "study.nc"), "--level", "3", "-o", str(tmp_path / "a.png"), "--tile", "8")
    assert result.returncode == 0, result.stderr
    channels = [row.channel for row in read_channel_statistics(folder / "study.nc").most_selective(3, 16)]
    assert f"level 3 _blocks.1: channels {', '.join(map(str, channels))}" in result.stdout


def test_atlas_of_a_level_the_study_does_not_have_names_the_levels(studied, tmp_path, cnnvis):
    folder, _ = studied
    result = cnnvis("atlas", str(folder / "study.nc"), "--level", "layer4", "-o", str(tmp_path / "a.png"))
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert line.startswith("cnnvis: error: level 'layer4' is not in this table: use one of input, _swish, _blocks.0")


def test_atlas_channels_that_are_not_numbers_are_refused(studied, tmp_path, cnnvis):
    folder, _ = studied
    result = cnnvis("atlas", str(folder / "study.nc"), "--level", "3", "-o", str(tmp_path / "a.png"),
                    "--channels", "3,seven")
    assert error_lines(result.stderr) == [
        "cnnvis: error: --channels takes channel indices separated by commas, such as 3,7,12, not '3,seven'"]


def test_atlas_of_a_study_whose_images_moved_names_the_image(tmp_path, samples, cnnvis):
    labelled_set(tmp_path / "set", samples, classes=(("tabby", "cat.jpg"),))
    assert cnnvis("study", str(tmp_path / "set"), "-o", str(tmp_path / "s.nc"), *MODEL, *SMALL).returncode == 0
    (tmp_path / "set").rename(tmp_path / "moved")
    result = cnnvis("atlas", str(tmp_path / "s.nc"), "--level", "3", "-o", str(tmp_path / "a.png"))
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert re.fullmatch(rf"cnnvis: error: an exemplar image cannot be read any more: image not found: "
                        rf"{re.escape(str(tmp_path / 'set' / 'tabby'))}/tabby_\S+\.png; the atlas cuts its tiles from "
                        r"the images the statistics saw: put it back, or compute the statistics again", line)
    assert not (tmp_path / "a.png").exists()


# --- cnnvis probe ----------------------------------------------------------------------------------


def test_probe_prints_the_most_orientation_and_hue_selective_channels_with_labels(tmp_path, cnnvis):
    result = cnnvis("probe", *MODEL, "--layers", "_swish", "--input-size", "32", "-o", str(tmp_path / "probes.nc"),
                    "--csv", str(tmp_path / "probes.csv"), "--show", "2", "--plots", str(tmp_path / "plots"))
    assert result.returncode == 0, result.stderr
    probes = read_channel_probes(tmp_path / "probes.nc")
    assert probes.levels == ("_swish",)
    printed = [int(m[1]) for m in re.finditer(r"^ {14}\s*(\d+) ", result.stdout, flags=re.MULTILINE)]
    by_osi = [int(c) for c in np.lexsort((np.arange(32), -np.nan_to_num(probes.osi[0], nan=-np.inf)))[:2]]
    by_hsi = [int(c) for c in np.lexsort((np.arange(32), -np.nan_to_num(probes.hsi[0], nan=-np.inf)))[:2]]
    assert printed == by_osi + by_hsi
    for channel in by_osi + by_hsi:
        assert re.search(rf"^ +{channel} .* {re.escape(str(probes.label[0][channel]))}$", result.stdout, re.MULTILINE)
        assert (tmp_path / "plots" / f"_swish_ch{channel}.png").is_file()
    assert len(list((tmp_path / "plots").iterdir())) == len(set(by_osi + by_hsi))
    assert (tmp_path / "probes.csv").read_text().count("\n") == 33  # a header and 32 channels


def test_probe_refuses_an_output_that_is_not_netcdf_before_loading_the_model(tmp_path, cnnvis):
    result = cnnvis("probe", *MODEL, "-o", str(tmp_path / "probes.txt"))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"cnnvis: error: the netCDF file {tmp_path / 'probes.txt'} should end in .nc: give a name such as probes.nc"]
