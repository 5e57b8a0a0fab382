"""`cnnvis sweep`: perturbation sweeps of the cat photograph with the offline trained model, from
the command line: the files it writes, what it prints, and the refusals before anything runs.

The main run is a real ``cnnvis`` process (as a user starts it); the other cases call cnnvis's own
entry point (``cnn_engine.cli.main``) in this process, so that they do not pay for starting
Python and importing torch again.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_runs import Result
from cnn_engine.sweep import sweep
from cnn_engine.sweep_files import read_sweep_table
from cnn_engine.sweep_plot import COLUMN_WIDTH, CURVES_HEIGHT, HEATMAP_HEIGHT, LEVEL_HEIGHT

CNNVIS = str(Path(sys.executable).parent / "cnnvis")
LEVELS = "_swish,_blocks.2,_blocks.8,_swish_1"
MODEL = ("--model", "efficientnet_lite0", "--layers", LEVELS)
FIGURE_HEIGHT = CURVES_HEIGHT + HEATMAP_HEIGHT + LEVEL_HEIGHT * 4



@pytest.fixture(scope="module")
def noise_and_blur(tmp_path_factory, cat_path) -> tuple[Result, Path]:
    """``cnnvis sweep cat.jpg --perturbation noise,blur --values 0,0.1,0.3``: noise changes the
    top-1 class at 0.1, blur that weak changes nothing."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    done = subprocess.run([CNNVIS, "sweep", str(cat_path), "--perturbation", "noise,blur", "--values", "0,0.1,0.3",
                           "--target", "tiger cat", *MODEL, "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    return Result(done.returncode, done.stdout, done.stderr), out



def printed(result: Result, perturbation: str, what: str) -> str:
    """The value after "flip severity:" / "half severity:" in the block of ``perturbation``."""
    block = result.stdout.split(f"{perturbation} ", 1)[1]
    return re.search(rf"^  {what} severity: (\S+)", block, flags=re.MULTILINE).group(1)


def test_the_sweep_writes_a_netcdf_and_a_csv_per_perturbation_and_one_figure(noise_and_blur):
    result, out = noise_and_blur
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == [
        "cat_blur.csv", "cat_blur.nc", "cat_noise.csv", "cat_noise.nc", "cat_sweep.png"]
    assert [line for line in result.stdout.splitlines() if line.startswith("wrote ")] == [
        f"wrote {out / name}" for name in ("cat_noise.nc", "cat_noise.csv", "cat_blur.nc", "cat_blur.csv",
                                           "cat_sweep.png")]


def test_the_netcdf_reads_back_with_the_asked_severities(noise_and_blur):
    _, out = noise_and_blur
    table = read_sweep_table(out / "cat_noise.nc")
    assert table["severity"].tolist() == [0.0, 0.1, 0.3]
    assert table["label"] == ["noise sigma 0", "noise sigma 0.1", "noise sigma 0.3"]
    assert (table["perturbation"], table["levels"]) == ("noise", LEVELS.split(","))
    assert table["drift"].shape == (3, 4) and table["drift"][0].tolist() == [0.0] * 4
    assert table["clean_probability"].shape == (3,)  # one per step; the clean step's is the clean picture's
    assert table["clean_probability"][0] == table["clean_picture_probability"]
    assert (table["clean_class"], table["target"]) == (285, 282)  # Egyptian cat, tiger cat
    assert len(table["volumes"]) == 3


def test_the_csv_has_one_row_per_step(noise_and_blur):
    _, out = noise_and_blur
    with open(out / "cat_blur.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["severity"]) for row in rows] == [0.0, 0.1, 0.3]
    assert [row["label"] for row in rows] == ["blur sigma 0", "blur sigma 0.1", "blur sigma 0.3"]
    assert all(row["top1_label"] == "Egyptian cat" for row in rows)


def test_several_perturbations_give_one_figure_with_a_column_each(noise_and_blur):
    _, out = noise_and_blur
    with Image.open(out / "cat_sweep.png") as figure:
        assert figure.size == (2 * COLUMN_WIDTH, FIGURE_HEIGHT)
        assert len(set(figure.convert("RGB").getdata())) > 200  # curves, a colour map, text: not blank


def test_the_printed_flip_and_half_severities_are_the_engines(noise_and_blur, lite0, cat_path):
    result, out = noise_and_blur
    engine = sweep(lite0, cat_path, "noise", [0, 0.1, 0.3], layers=LEVELS, target="tiger cat", volumes=False)
    assert engine.flip_severity == 0.1 and float(printed(result, "noise", "flip")) == engine.flip_severity
    assert float(printed(result, "noise", "half")) == engine.half_severity
    assert read_sweep_table(out / "cat_noise.nc")["flip_severity"] == engine.flip_severity
    assert read_sweep_table(out / "cat_blur.nc")["flip_severity"] is None
    assert printed(result, "blur", "flip") == printed(result, "blur", "half") == "none"
    assert "  flip severity: none (the top-1 class stays Egyptian cat at every step)" in result.stdout


def test_each_perturbation_prints_a_table_of_its_steps(noise_and_blur):
    result, _ = noise_and_blur
    lines = result.stdout.splitlines()
    start = lines.index("noise sigma (fraction of full scale): 3 steps; clean top-1 Egyptian cat (285), p 0.392; "
                        "target tiger cat (282)")
    assert lines[start + 3].split() == ["severity", "top-1", "(p)", "p", "clean", "p", "target", "drift", "_swish",
                                        "drift", "_swish_1"]
    assert [line.split()[0] for line in lines[start + 4:start + 7]] == ["0", "0.1", "0.3"]
    assert lines[start + 4].split()[-2:] == ["0.000", "0.000"]  # the clean step: no drift


def test_one_progress_bar_counts_every_picture_and_shows_the_time_left(noise_and_blur):
    result, _ = noise_and_blur
    # Three pictures a perturbation (the clean one, 0.1, 0.3): one bar of 6, elapsed<left.
    assert re.search(r"computing: 100%\|\S+\| 6/6 \[\d\d:\d\d<\d\d:\d\d", result.stderr), result.stderr
    assert not re.search(r"/[0-57-9]\b \[", result.stderr)  # no second bar of another size


def test_from_to_steps_give_evenly_spaced_severities_and_a_figure_named_by_the_perturbation(cnnvis, cat_path,
                                                                                            tmp_path):
    result = cnnvis("sweep", str(cat_path), "--perturbation", "blur", "--from", "0", "--to", "4", "--steps", "3",
                    *MODEL, "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["cat_blur.csv", "cat_blur.nc", "cat_blur.png"]
    assert read_sweep_table(tmp_path / "out" / "cat_blur.nc")["severity"].tolist() == [0.0, 2.0, 4.0]
    with Image.open(tmp_path / "out" / "cat_blur.png") as figure:
        assert figure.size == (COLUMN_WIDTH, FIGURE_HEIGHT)


def test_position_and_occluder_reach_the_occlusion(cnnvis, lite0, cat_path, tmp_path):
    result = cnnvis("sweep", str(cat_path), "--perturbation", "occlusion", "--values", "0,128", "--position", "100,90",
                    "--occluder", "blur", *MODEL, "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "cat_occlusion.csv", newline="", encoding="utf-8") as handle:
        probabilities = [float(row["clean_probability"]) for row in csv.DictReader(handle)]
    engine = sweep(lite0, cat_path, "occlusion", [0, 128], layers=LEVELS, position=(100, 90), occluder="blur",
                   volumes=False)
    centred = sweep(lite0, cat_path, "occlusion", [0, 128], layers=LEVELS, volumes=False)
    assert probabilities == pytest.approx([step.clean_probability for step in engine.steps], rel=1e-6)
    assert probabilities[1] != pytest.approx(centred.steps[1].clean_probability, rel=1e-3)


@pytest.mark.parametrize("options, message", [
    (["--perturbation", "fog"], "unknown perturbation 'fog': use one of brightness, contrast, gamma, saturation, hue, "
                                "blur, noise, jpeg, rotation, scale, translation, occlusion"),
    (["--perturbation", "blur", "--from", "0", "--to", "40"],
     "blur sigma 40 is out of range: use 0 to 32 (input pixels)"),
    (["--perturbation", "blur,noise", "--values", "0,0.5,2"],
     "noise sigma 2 is out of range: use 0 to 1 (fraction of full scale)"),
    (["--perturbation", "blur", "--values", "2"],
     "--values gives one severity (2): a sweep needs at least two, e.g. --values 0,32 (blur sigma: 0 to 32 input "
     "pixels)"),
    (["--perturbation", "blur", "--from", "4", "--to", "4", "--steps", "3"],
     "--from and --to are both 4: a sweep needs different severities; set them apart (blur sigma: 0 to 32 input "
     "pixels)"),
    (["--perturbation", "blur", "--values", "2,2"],
     "--values gives one severity (2): a sweep needs at least two, e.g. --values 0,32 (blur sigma: 0 to 32 input "
     "pixels)"),
    (["--perturbation", "blur", "--steps", "1"], "--steps must be at least 2, not 1: a sweep compares severities"),
    (["--perturbation", "blur", "--values", "0,1", "--steps", "3"],
     "give the severities either as --values or as --from/--to/--steps, not both"),
    (["--perturbation", "blur", "--position", "100,90"],
     "--position places or fills the occlusion patch: add --perturbation occlusion, or leave --position out"),
])
def test_bad_sweeps_are_one_error_line_before_anything_is_written(options, message, cnnvis, cat_path, tmp_path):
    result = cnnvis("sweep", str(cat_path), *options, "-o", str(tmp_path / "out"))
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"cnnvis: error: {message}\n")
    assert not (tmp_path / "out").exists()


def test_an_image_that_fails_to_load_is_one_error_line(cnnvis, tmp_path):
    (tmp_path / "cat.jpg").write_bytes(b"not a picture")
    result = cnnvis("sweep", str(tmp_path / "cat.jpg"), "--perturbation", "blur", "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"cnnvis: error: not an image file Pillow can read: {tmp_path / 'cat.jpg'}")
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_written_is_refused_before_computing(cnnvis, cat_path, tmp_path):
    (tmp_path / "cat_blur.png").mkdir()  # where the figure goes
    result = cnnvis("sweep", str(cat_path), "--perturbation", "blur", "-o", str(tmp_path))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"cnnvis: error: output path {tmp_path / 'cat_blur.png'} is a folder; give a picture name "
                             "ending in .png\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cat_blur.png"]  # no netCDF, no CSV


def test_an_output_folder_that_cannot_be_created_is_one_error_line(cnnvis, cat_path, tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = cnnvis("sweep", str(cat_path), "--perturbation", "blur", "-o", str(tmp_path / "taken"))
    assert (result.returncode, result.stderr) == (
        2, f"cnnvis: error: output {tmp_path / 'taken'} is a regular file, not a folder: give a folder for the "
           "sweep's files\n")
    result = cnnvis("sweep", str(cat_path), "--perturbation", "blur", "-o", "/proc/cnnvis-sweep")
    assert result.returncode == 2 and result.stderr.startswith("cnnvis: error: cannot create output folder "
                                                               "/proc/cnnvis-sweep: ")


@pytest.mark.parametrize("options, message", [
    (["--perturbation", "blur", "--layers", "_swish", "--top-k", "40"],
     "top_k 40 is more than the 32 channels of the widest chosen layer (_swish): use a top_k of at most 32 "
     "(--top-k 32), or choose wider layers"),
    (["--perturbation", "occlusion", "--position", "5000,5000"],
     "occlusion position (5000, 5000) is outside the 337 x 224 network input: give a centre inside it, x from 0 "
     "to 336 and y from 0 to 223 (input pixels)"),
    (["--perturbation", "blur", "--target", "tigercat"], "unknown target class 'tigercat'; close labels: tiger cat, "
                                                         "tiger, triceratops, tiger shark (give a label or a class "
                                                         "index)"),
])
def test_a_sweep_refused_once_the_model_is_loaded_leaves_no_folder_behind(options, message, cnnvis, cat_path,
                                                                          tmp_path):
    result = cnnvis("sweep", str(cat_path), *MODEL, *options, "-o", str(tmp_path / "new" / "out"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"cnnvis: error: {message}\n"
    assert not (tmp_path / "new").exists()
