"""`cnnvis export` of image sets: real files in an ImageFolder layout (class folders named by
ImageNet WordNet IDs), one channel choice and one scale across the set.

The command runs in this process, through cnnvis's own entry point (``cnn_engine.cli.main``, what
the ``cnnvis`` script calls), so that no case pays for starting Python and importing torch;
tests/test_cli.py runs ``cnnvis`` as a separate process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cnn_engine
from cli_runs import Result
from cnn_engine.set_netcdf import read_set_netcdf

# A small random network on small inputs: what is checked here is the export, not the classifier.
FAST = ("--model", "resnet18", "--weights", "random", "--input-size", "64", "--top-k", "2")
# ImageFolder layout: tabby cat (n02123045), espresso (n07920052), missile (n03773504).
LAYOUT = (("n02123045", "cat.jpg"), ("n07920052", "coffee.jpg"), ("n03773504", "rocket.jpg"))




def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "cnnvis: error: " in line]


@pytest.fixture()
def image_set(tmp_path: Path, samples: Path) -> Path:
    """Three photographs in class folders named by their WordNet IDs."""
    for wnid, name in LAYOUT:
        (tmp_path / "set" / wnid).mkdir(parents=True)
        shutil.copy(samples / name, tmp_path / "set" / wnid / name)
    return tmp_path / "set"


def volumes(folder: Path) -> dict[str, cnn_engine.ActivationVolume]:
    return {path.name: cnn_engine.read_netcdf(path) for path in sorted(folder.iterdir())}


def test_channels_set_gives_every_file_the_same_channels_on_each_level(image_set, tmp_path, cnnvis):
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST, "--channels", "set")
    assert result.returncode == 0, result.stderr
    written = volumes(tmp_path / "out")
    assert sorted(written) == ["cat.nc", "coffee.nc", "rocket.nc"]
    channels = {name: [level.channels for level in vol.levels] for name, vol in written.items()}
    assert channels["cat.nc"] == channels["coffee.nc"] == channels["rocket.nc"]
    assert all(len(level) == 2 and min(level) >= 0 for level in channels["cat.nc"])


def test_per_image_channels_differ_between_files(image_set, tmp_path, cnnvis):
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST)
    assert result.returncode == 0, result.stderr
    channels = [[level.channels for level in vol.levels] for vol in volumes(tmp_path / "out").values()]
    assert not channels[0] == channels[1] == channels[2]  # what --channels set makes equal


def test_normalization_set_scales_each_level_by_its_range_over_the_whole_set(image_set, tmp_path, cnnvis):
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST, "--normalization", "set")
    assert result.returncode == 0, result.stderr
    written = list(volumes(tmp_path / "out").values())
    assert {vol.normalization for vol in written} == {"set"}
    # Per file and level: the highest drawn value over its rank arrays, shape (files, levels).
    highest = np.array([np.nanmax(np.stack([vol.arrays[f"rank{k}"] for k in range(2)]), axis=(0, 2, 3))
                        for vol in written])
    lowest = np.array([np.nanmin(np.stack([vol.arrays[f"rank{k}"] for k in range(2)]), axis=(0, 2, 3))
                       for vol in written])
    np.testing.assert_allclose(highest.max(axis=0), 1.0, atol=1e-6)  # the set's maximum, per level
    np.testing.assert_allclose(lowest.min(axis=0), 0.0, atol=1e-6)
    assert (highest < 0.999).any()  # a common range: not every file reaches 1 on every level


def test_set_choices_show_a_scanning_then_a_computing_progress_bar(image_set, tmp_path, cnnvis):
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST, "--layers", "input,layer1",
                    "--channels", "set")
    assert result.returncode == 0, result.stderr
    assert "scanning:" in result.stderr and "computing: 100%" in result.stderr
    assert "6/6" in result.stderr  # both passes on one scale
    assert result.stderr.index("scanning:") < result.stderr.index("computing:")


def test_single_file_writes_the_set_as_one_netcdf_with_one_time_step_per_image(image_set, tmp_path, cnnvis):
    target = tmp_path / "set.nc"
    result = cnnvis("export", str(image_set), "-o", str(target), "--single-file", *FAST)
    assert result.returncode == 0, result.stderr
    assert f"wrote 3 of 3 volumes to {target}, one time step each (netcdf4)" in result.stdout
    steps = read_set_netcdf(target)
    assert len(steps) == 3 and steps.names == ("cat.jpg", "rocket.jpg", "coffee.jpg")  # set order: by folder
    shapes = {vol.shape for vol in steps}
    assert shapes == {(len(steps[0].levels), 64, 64)}  # center-crop: one grid for every time step
    assert [vol.provenance.true_label for vol in steps] == [281, 657, 967]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "set.nc"]  # nothing else, no temporary


def test_single_file_in_netcdf3_is_written_in_that_format(image_set, tmp_path, cnnvis):
    target = tmp_path / "set.nc"
    result = cnnvis("export", str(image_set), "-o", str(target), "--single-file", "--format", "netcdf3", *FAST)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes()[:3] == b"CDF"
    assert len(read_set_netcdf(target)) == 3


def test_a_bad_image_among_good_ones_is_reported_once_and_the_rest_written(image_set, tmp_path, cnnvis):
    (image_set / "n02123045" / "broken.jpg").write_text("not a picture")
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST, "--channels", "set")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert "not an image file Pillow can read" in line and "broken.jpg" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat.nc", "coffee.nc", "rocket.nc"]
    assert f"wrote 3 of 4 volumes to {tmp_path / 'out'}" in result.stdout
    assert "failed 1: broken.jpg" in result.stdout


def test_explicit_channel_list_gives_those_levels_and_channels(image_set, tmp_path, cnnvis):
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST, "--channels", "explicit",
                    "--channel-list", "layer4.1:3,5;layer1.0:7")
    assert result.returncode == 0, result.stderr
    for vol in volumes(tmp_path / "out").values():
        assert vol.level_names == ["layer1.0", "layer4.1"]  # network order
        assert [level.channels for level in vol.levels] == [(7, -1), (3, 5)]
        assert np.isnan(vol.arrays["rank1"][0]).all()  # the shorter list: a NaN rank


def test_summary_gives_accuracy_and_the_top1_class_per_true_label(tmp_path, samples, cnnvis):
    for wnid, name in (("n02124075", "cat.jpg"), ("n07920052", "coffee.jpg")):  # Egyptian cat, espresso
        (tmp_path / "set" / wnid).mkdir(parents=True)
        shutil.copy(samples / name, tmp_path / "set" / wnid / name)
    result = cnnvis("export", str(tmp_path / "set"), "-o", str(tmp_path / "out"), "--model", "efficientnet_lite0",
                    "--top-k", "1", "--layers", "input")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-5:] == [
        "2 images, 2 with a known class",
        "top-1 accuracy 100.0% (2/2), top-5 accuracy 100.0% (2/2)",
        "top-1 class by true label:",
        "  n02124075: Egyptian cat 1",
        "  n07920052: espresso 1",
    ]


def test_images_with_one_file_name_in_two_class_folders_get_distinct_files(tmp_path, samples, cnnvis):
    for wnid in ("n02123045", "n02124075"):
        (tmp_path / "set" / wnid).mkdir(parents=True)
        shutil.copy(samples / "cat.jpg", tmp_path / "set" / wnid / "img1.jpg")
    result = cnnvis("export", str(tmp_path / "set"), "-o", str(tmp_path / "out"), *FAST, "--layers", "input")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["n02123045__img1.nc", "n02124075__img1.nc"]


def test_a_label_matching_no_class_is_one_note_and_its_image_is_exported(image_set, tmp_path, cnnvis):
    (image_set / "n03773504").rename(image_set / "misc")
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "out"), *FAST, "--layers", "input")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("cnnvis: note: ")]
    assert len(notes) == 1 and "label 'misc'" in notes[0] and "matches no class" in notes[0]
    assert (tmp_path / "out" / "rocket.nc").is_file()
    assert "3 images, 2 with a known class" in result.stdout


@pytest.mark.parametrize("setup, options, message", [
    ("empty", [], "cnnvis: error: no images in folder "),
    ("only_bad", [], "cnnvis: error: none of the 2 images could be read: nothing was written"),
    ("only_bad", ["--normalization", "set"], "cnnvis: error: no image of the set could be read (2 tried)"),
    ("good", ["--channels", "explicit"], "cnnvis: error: --channels explicit needs the channels: add --channel-list"),
    ("good", ["--channel-list", "layer1.0:1"], "cnnvis: error: --channel-list gives the channels of --channels "
                                                "explicit, not of --channels per-image: add --channels explicit"),
    ("good", ["--channels", "explicit", "--channel-list", "layer1.0"], "cnnvis: error: channel list entry 'layer1.0' "
                                                                       "is not LEVEL:CHANNEL"),
    ("good", ["--single-file", "-o", "out"], "cnnvis: error: --single-file writes the whole set into one netCDF "
                                             "file: give -o a file name ending in .nc, not out"),
    ("good", ["-o", "all.nc"], "cnnvis: error: 3 images cannot go into one file all.nc: give a folder as -o, or "
                               "add --single-file"),
    ("good", ["--batch-size", "0"], "cnnvis: error: --batch-size must be at least 1, not 0"),
], ids=["empty_folder", "only_bad_images", "only_bad_images_set_scale", "explicit_without_list",
        "list_without_explicit", "bad_channel_list", "single_file_to_a_folder", "set_into_one_file", "batch_size_0"])
def test_bad_set_input_is_one_clear_error_and_nothing_is_written(setup, options, message, image_set, tmp_path,
                                                                 monkeypatch, cnnvis):
    folder = tmp_path / "input"
    folder.mkdir()
    if setup == "good":
        folder = image_set
    elif setup == "only_bad":
        (folder / "a.jpg").write_text("not a picture")
        (folder / "b.png").write_bytes(b"")
    output = [] if "-o" in options else ["-o", "out"]
    monkeypatch.chdir(tmp_path)
    result = cnnvis("export", str(folder), *output, *options, *FAST)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in error_lines(result)[-1]
    assert not list(tmp_path.glob("**/*.nc")) and not list(tmp_path.glob("**/*.part"))


def test_a_listed_image_that_is_gone_is_reported_and_the_rest_written(image_set, tmp_path, cnnvis):
    # A list file names its images; one of them is gone by the time it is read.
    listing = tmp_path / "list.csv"
    listing.write_text("path,label\nset/n02123045/cat.jpg,n02123045\nset/gone.jpg,n02123045\n"
                       "set/n07920052/coffee.jpg,espresso\n")
    result = cnnvis("export", str(listing), "-o", str(tmp_path / "out"), *FAST)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert "gone.jpg" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat.nc", "coffee.nc"]
    assert f"wrote 2 of 3 volumes to {tmp_path / 'out'}" in result.stdout and "failed 1: gone.jpg" in result.stdout
    assert "2 images, 2 with a known class" in result.stdout


def test_an_export_refused_once_the_model_is_loaded_leaves_no_folder_behind(image_set, tmp_path, cnnvis):
    result = cnnvis("export", str(image_set), "-o", str(tmp_path / "new" / "out"), *FAST, "--layers", "input",
                    "--top-k", "16")
    assert (result.returncode, result.stdout) == (2, "")
    assert error_lines(result) == ["cnnvis: error: top_k 16 is more than the 3 channels of the widest chosen layer "
                                   "(input): use a top_k of at most 3 (--top-k 3), or choose wider layers"]
    assert not (tmp_path / "new").exists()
