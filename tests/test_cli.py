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


def test_layers_lists_index_name_shape_stride_receptive_field_and_centre():
    result = run("layers", "--model", "resnet50", "--layers", "blocks")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("resnet50, layer set 'blocks': 19 levels at 224x224 px, for a square input "
                        "(--image IMAGE shows the grid of an image)")
    assert lines[3].split() == ["0", "input", "input", "3x224x224", "1", "1", "0"]
    # ResNet-50's layer4.2: stride 32, receptive field 427, cell (0, 0) centred on pixel (0, 0).
    assert lines[-1].split() == ["18", "layer4.2", "Bottleneck", "2048x7x7", "32", "427", "0"]


SUBSTITUTION = ("efficientnet_lite0 (trained, offline) runs instead of resnet50: the ImageNet weights of resnet50 "
                "are not in the torch cache and cannot be downloaded here")


def test_demo_falls_back_to_the_offline_model_and_says_so_once(tmp_path):
    result = run("demo", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"cnnvis: note: {SUBSTITUTION}\n"
    assert f"model efficientnet_lite0, weights packaged  [{SUBSTITUTION}]" in result.stdout
    assert "top-5 predictions:" in result.stdout
    vol = cnn_engine.read_netcdf(tmp_path / "cat.nc")
    assert vol.extra["substitution"] == SUBSTITUTION
    assert vol.predictions[0].index in range(281, 286)


def test_export_with_default_model_falls_back_offline_and_records_it(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", str(tmp_path / "cat.nc"), "--top-k", "1")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"cnnvis: note: {SUBSTITUTION}\n"
    vol = cnn_engine.read_netcdf(tmp_path / "cat.nc")
    assert (vol.provenance.model, vol.provenance.weights, vol.provenance.trained) == ("efficientnet_lite0", "packaged", True)
    assert vol.extra["substitution"] == SUBSTITUTION


def test_explain_with_default_model_falls_back_offline(cat_path, tmp_path):
    result = run("explain", str(cat_path), "--method", "cam", "-o", str(tmp_path / "cam.png"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"cnnvis: note: {SUBSTITUTION}\n"
    assert (tmp_path / "cam.png").is_file()


def test_explicit_model_without_its_weights_is_one_error_naming_the_offline_model(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", str(tmp_path / "cat.nc"), "--model", "resnet50")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cnnvis: error: cannot download the resnet50 ")
    assert "use the trained model efficientnet_lite0, whose ImageNet weights are installed with cnnvis" in result.stderr
    assert not (tmp_path / "cat.nc").exists()


def test_explicit_weights_with_the_default_model_do_not_fall_back(cat_path, tmp_path):
    result = run("export", str(cat_path), "-o", str(tmp_path / "cat.nc"), "--weights", "IMAGENET1K_V2")
    assert result.returncode == 2
    assert "cannot download the resnet50 IMAGENET1K_V2 weights" in result.stderr


def test_layers_with_an_image_shows_the_grid_export_gives_it(cat_path, cat_volume):
    result = run("layers", "--model", "resnet50", "--layers", "blocks", "--image", str(cat_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"resnet50, layer set 'blocks': 19 levels at 337x224 px (width x height), the input grid of "
                        f"{cat_path} (short-side, input size 224)")
    # ResNet-50 halves 337 columns five times, rounding up: 169, 85, 43, 22, 11; the cells stay
    # 32 pixels apart (the last one centred on column 320), not stretched to the width.
    assert lines[-1].split() == ["18", "layer4.2", "Bottleneck", "2048x7x11", "32", "427", "0"]
    printed = [line.split()[3] for line in lines[3:]]
    assert printed == ["x".join(map(str, level.native_shape)) for level in cat_volume.levels]


def _volume_marks(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in stdout.splitlines() if not line.startswith("#")}


def test_models_lists_names_with_their_notes():
    result = run("models")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "resnet50             full      (default)" in lines
    assert "efficientnet_lite0   full      (trained weights available offline)" in lines
    assert len(lines) == 1 + len(cnn_engine.available_models())


def test_models_marks_transformers_as_not_giving_full_volumes():
    result = run("models")
    legend = result.stdout.splitlines()[0]
    assert legend.startswith("# model, volume: full = a CNN") and "no = a transformer" in legend
    marks = _volume_marks(result.stdout)
    assert marks["resnet50"] == marks["vgg16"] == marks["efficientnet_lite0"] == "full"
    assert {marks[name] for name in marks if name.startswith(("vit_", "swin_"))} == {"no"}
    assert marks["convnext_tiny"] == marks["maxvit_t"] == "partial"


def test_explain_draws_the_map_over_the_image(cat_path, tmp_path):
    from PIL import Image

    result = run("explain", str(cat_path), "--model", "efficientnet_lite0", "--method", "cam", "--target", "tabby",
                 "-o", str(tmp_path / "cat_cam.png"), "--nc", str(tmp_path / "cat.nc"))
    assert result.returncode == 0, result.stderr
    assert "evidence: cam on _swish_1 for tabby (class 281" in result.stdout
    picture = Image.open(tmp_path / "cat_cam.png")
    assert picture.mode == "RGB" and picture.size[0] == 337 and picture.size[1] > 224  # with title and colour bar
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


def _export_at_epoch(epoch: str, image: Path, output: Path, *options: str) -> subprocess.CompletedProcess:
    """``cnnvis export`` in its own process with SOURCE_DATE_EPOCH set to ``epoch``."""
    import os

    return subprocess.run([CNNVIS, "export", str(image), "-o", str(output), *options], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "SOURCE_DATE_EPOCH": epoch})


def test_two_exports_with_source_date_epoch_are_byte_identical(cat_path, tmp_path):
    from cnn_engine.netcdf import VolumeFile

    # The default model (offline: the stand-in, recorded in the file) with an evidence map: every
    # part of the file that could vary between runs is in it.
    options = ("--top-k", "2", "--evidence", "gradcam")
    first = _export_at_epoch("1700000000", cat_path, tmp_path / "first.nc", *options)
    second = _export_at_epoch("1700000000", cat_path, tmp_path / "second.nc", *options)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "first.nc").read_bytes() == (tmp_path / "second.nc").read_bytes()
    assert cnn_engine.read_netcdf(tmp_path / "first.nc").provenance.created == "2023-11-14T22:13:20+00:00"
    with VolumeFile(tmp_path / "first.nc") as nc:  # either netCDF format
        assert nc.attribute("history").startswith("2023-11-14T22:13:20+00:00 created by cnn_engine")


def test_a_source_date_epoch_that_is_not_whole_seconds_is_one_error(cat_path, tmp_path):
    result = _export_at_epoch("2023-11-14", cat_path, tmp_path / "cat.nc", "--weights", "random")
    assert result.returncode == 2
    assert result.stderr == ("cnnvis: error: SOURCE_DATE_EPOCH='2023-11-14' is not a whole number of seconds since "
                             "1970-01-01 UTC: set it like `date +%s` prints (e.g. 1700000000), or unset it\n")
    assert not list(tmp_path.iterdir())


def test_torchscript_weights_are_refused_without_trust_torchscript(cat_path, tmp_path):
    import torch

    weights = tmp_path / "scripted.pt"
    torch.jit.script(cnn_engine.load_model("resnet18", weights="random", device="cpu").module).save(str(weights))
    refused = run("export", str(cat_path), "-o", str(tmp_path / "refused.nc"), "--model", "resnet18",
                  "--weights", str(weights), "--top-k", "1")
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"cnnvis: error: refusing to load {weights}: it is a TorchScript archive")
    assert "--trust-torchscript" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not (tmp_path / "refused.nc").exists()
    trusted = run("export", str(cat_path), "-o", str(tmp_path / "trusted.nc"), "--model", "resnet18",
                  "--weights", str(weights), "--top-k", "1", "--trust-torchscript")
    assert trusted.returncode == 0, trusted.stderr
    assert cnn_engine.read_netcdf(tmp_path / "trusted.nc").provenance.weights == f"file:{weights.resolve()}"


def test_explain_score_prints_the_scores_in_plain_words_and_draws_the_curves(cat_path, tmp_path):
    from PIL import Image

    result = run("explain", str(cat_path), "--model", "efficientnet_lite0", "--method", "cam", "--input-size", "112",
                 "-o", str(tmp_path / "cat_cam.png"), "--score", "--steps", "4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert ("faithfulness (RISE deletion/insertion, 4 steps, blur baseline) for Egyptian cat (class 285, "
            "probability 0.96") in result.stdout
    assert any(line.startswith("  deletion AUC ") and "(lower is better; random map " in line for line in lines)
    assert any(line.startswith("  insertion AUC ") and "(higher is better; random map " in line for line in lines)
    assert any(line.startswith("  against a random map: ") for line in lines)
    assert any(line.startswith("  against the centred prior: ") for line in lines)
    assert lines[-1] == f"wrote {tmp_path / 'cat_cam_scores.png'}"
    assert Image.open(tmp_path / "cat_cam_scores.png").size == (1100, 420)


def test_explain_sanity_says_whether_the_map_passed(cat_path, tmp_path):
    result = run("explain", str(cat_path), "--model", "efficientnet_lite0", "--method", "cam", "--input-size", "112",
                 "-o", str(tmp_path / "cat_cam.png"), "--sanity")
    assert result.returncode == 0, result.stderr
    assert ("sanity check (model randomisation, Adebayo et al. 2018) of cam for Egyptian cat (class 285): Spearman "
            "rho between the model's map and those of 3 copies with all weights re-initialised: flat, ") in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        "  passed: the map changed substantially when the weights were randomised (mean |rho| 0.")
    assert not (tmp_path / "cat_cam_scores.png").exists()  # no --score, no curves


@pytest.mark.parametrize("options, message", [
    (["--curves", "curves.png"], "cnnvis: error: --curves is where --score draws its curves: add --score, or leave "
                                 "--curves out"),
    (["--score", "--curves", "curves.jpg"], "cnnvis: error: cannot write the score curves to curves.jpg: they are a "
                                            "PNG picture; give a name ending in .png"),
    (["--score", "--steps", "0"], "cnnvis: error: --steps must be at least 1, not 0"),
])
def test_explain_score_options_are_checked_before_anything_runs(options, message, cat_path, tmp_path):
    result = run("explain", str(cat_path), "--method", "cam", "-o", "cat.png", *options, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == message + "\n"
    assert not list(tmp_path.iterdir())
