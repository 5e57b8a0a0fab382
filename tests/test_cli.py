"""The cnnvis command line as a user runs it: real processes, real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnn_engine

CNNVIS = str(Path(sys.executable).parent / "cnnvis")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CNNVIS, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_export_one_image_writes_the_file_and_prints_levels_and_predictions(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", str(tmp_path / "cat.nc"), "--weights", "random", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    assert "19 levels, top 2 channels each by mean" in result.stdout
    assert "layer4.2" in result.stdout and "top-5 predictions:" in result.stdout
    assert "[UNTRAINED: random weights]" in result.stdout
    vol = cnn_engine.read_netcdf(tmp_path / "cat.nc")
    assert vol.top_k == 2 and vol.normalization == "per-level-minmax"
    assert np.nanmax(vol.arrays["rank0"]) == 1.0


def test_export_a_folder_writes_one_file_per_image_with_progress(samples, tmp_path):
    result = run("export", str(samples), "-o", str(tmp_path / "out"), "--model", "resnet18", "--weights", "random",
                 "--top-k", "1", "--layers", "convs")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    images = sorted(p.stem + ".nc" for p in samples.iterdir() if p.suffix in (".jpg", ".png"))
    assert written == images and len(written) >= 6
    assert "6/6" in result.stderr  # the progress bar
    assert f"wrote 6 of 6 volumes to {tmp_path / 'out'}" in result.stdout


def test_export_options_reach_the_file(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", str(tmp_path / "c.nc"), "--model", "resnet18", "--weights", "random",
                 "--layers", "input,layer2", "--rank-by", "max", "--normalization", "none", "--fit", "center-crop",
                 "--input-size", "160", "--interpolation", "bilinear", "--level-spacing", "5")
    assert result.returncode == 0, result.stderr
    vol = cnn_engine.read_netcdf(tmp_path / "c.nc")
    prov = vol.provenance
    assert vol.shape == (2, 160, 160) and vol.level_spacing == 5.0 and vol.normalization == "none"
    assert (prov.rank_by, prov.interpolation, prov.preprocessing["fit"]) == ("max", "bilinear", "center-crop")
    assert vol.level_names == ["input", "layer2"]


def test_bad_image_in_a_folder_is_reported_and_the_rest_exported(samples, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes((samples / "cat.jpg").read_bytes())
    (folder / "broken.jpg").write_text("not a picture")
    result = run("export", str(folder), "-o", str(tmp_path / "out"), "--model", "resnet18", "--weights", "random")
    assert result.returncode == 2
    assert "cnnvis: error: not an image file Pillow can read" in result.stderr and "broken.jpg" in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cat.nc"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "nothere.jpg", "-o", "x.nc"], "cnnvis: error: image not found: nothere.jpg"),
        (["export", "CAT", "-o", "x.nc", "--model", "resnet5000"], "cnnvis: error: unknown model 'resnet5000'"),
        (["export", "CAT", "-o", "x.nc", "--weights", "IMAGENET1K_V1"], "cannot download the resnet50 IMAGENET1K_V1 weights"),
        (["export", "CAT", "-o", "no/such/folder/x.nc"], "cnnvis: error: cannot write no/such/folder/x.nc: the folder"),
        (["layers", "--layers", "layer9"], "cnnvis: error: unknown layer 'layer9' in resnet50"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(args, message, cat_path, tmp_path):
    result = run(*[str(cat_path) if a == "CAT" else a for a in args], cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("**/*.nc")) and not list(tmp_path.glob("**/*.part"))


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "layers", "--model", "resnet5000", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_layers_lists_index_name_shape_and_stride():
    result = run("layers", "--model", "resnet50", "--layers", "blocks")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "resnet50, layer set 'blocks': 19 levels at 224x224 px"
    assert lines[2].split() == ["0", "input", "input", "3x224x224", "1"]
    assert lines[-1].split() == ["18", "layer4.2", "Bottleneck", "2048x7x7", "32"]


def test_demo_falls_back_to_the_offline_model_and_says_so(tmp_path):
    result = run("demo", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "running the offline trained model efficientnet_lite0 instead" in result.stderr
    assert "model efficientnet_lite0, weights packaged  [offline fallback:" in result.stdout
    assert "top-5 predictions:" in result.stdout
    vol = cnn_engine.read_netcdf(tmp_path / "cat.nc")
    assert vol.extra["note"].startswith("offline fallback")
    assert vol.predictions[0].index in range(281, 286)


def test_models_lists_names():
    result = run("models")
    assert "resnet50  (default)" in result.stdout.splitlines()
    assert "efficientnet_lite0  (trained weights available offline)" in result.stdout.splitlines()


def test_explain_draws_the_map_over_the_image(cat_path, tmp_path):
    from PIL import Image

    result = run("explain", str(cat_path), "--model", "efficientnet_lite0", "--method", "cam", "--target", "tabby",
                 "-o", str(tmp_path / "cat_cam.png"), "--nc", str(tmp_path / "cat.nc"))
    assert result.returncode == 0, result.stderr
    assert "evidence: cam on _swish_1 for tabby (class 281" in result.stdout
    picture = Image.open(tmp_path / "cat_cam.png")
    assert picture.size == (337, 224) and picture.mode == "RGB"
    vol = cnn_engine.read_netcdf(tmp_path / "cat.nc")
    assert vol.evidence_info.method == "cam" and vol.evidence.shape == (224, 337)


def test_explain_cam_on_vgg_points_to_gradcam(cat_path, tmp_path):
    result = run("explain", str(cat_path), "--model", "vgg16", "--weights", "random", "--method", "cam",
                 "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "use evidence='gradcam'" in result.stderr
    assert not list(tmp_path.iterdir())


def test_export_accepts_evidence_options(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", str(tmp_path / "c.nc"), "--model", "efficientnet_lite0",
                 "--evidence", "gradcam", "--target", "282", "--top-k", "1")
    assert result.returncode == 0, result.stderr
    assert "evidence: gradcam on _swish_1 for tiger cat (class 282" in result.stdout
    assert cnn_engine.read_netcdf(tmp_path / "c.nc").evidence_info.target_index == 282
