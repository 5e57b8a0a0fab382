"""Class evidence maps: they point at the object, pass the randomisation sanity check, and CAM
equals Grad-CAM where theory says so. All with the trained offline model, EfficientNet-Lite0."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

import cnn_engine
from cnn_engine.evidence import EvidenceError, EvidenceSettings
from cnn_engine.images import load_image
from cnn_engine.preprocess import Preprocessing, fit_image

SIDE = 224
MEAN_COLOUR = (124, 116, 104)  # the ImageNet mean: what the "mean" occluder paints


def composite(cat_path, side: str, background: str) -> np.ndarray:
    """The cat photograph in the left or right half of a 2:1 canvas."""
    cat = np.asarray(fit_image(load_image(cat_path).image, Preprocessing(fit="center-crop", size=SIDE)))
    if background == "plain":
        canvas = np.empty((SIDE, 2 * SIDE, 3), np.uint8)
        canvas[:] = MEAN_COLOUR
    else:
        noise = np.random.default_rng(0).normal(128, 50, (SIDE, 2 * SIDE, 1))
        canvas = np.clip(noise, 0, 255).astype(np.uint8).repeat(3, axis=2)
    left = 0 if side == "left" else SIDE
    canvas[:, left:left + SIDE] = cat
    return canvas


def centre_x(evidence: np.ndarray) -> float:
    weights = np.clip(evidence, 0, None)
    return float((weights.sum(axis=0) * np.arange(evidence.shape[1])).sum() / weights.sum())


def evidence_of(model, picture, method, **options):
    vol = cnn_engine.compute_volume(model, picture, layers=["input"], top_k=1,
                                    evidence=EvidenceSettings(method, **options))
    assert vol.evidence.shape == vol.shape[1:]
    return vol


@pytest.mark.parametrize("method", ["cam", "gradcam", "occlusion"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_evidence_falls_on_the_cat_on_a_plain_background(lite0, cat_path, method, side):
    vol = evidence_of(lite0, composite(cat_path, side, "plain"), method)
    x = centre_x(vol.evidence)
    assert (x < SIDE) if side == "left" else (x > SIDE), (method, side, x)
    assert vol.evidence_info.target_index in range(281, 286)  # it explains the cat class it predicts


@pytest.mark.parametrize("method", ["cam", "gradcam"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_evidence_falls_on_the_cat_beside_noise(lite0, cat_path, method, side):
    vol = evidence_of(lite0, composite(cat_path, side, "noise"), method)
    x = centre_x(vol.evidence)
    assert (x < SIDE) if side == "left" else (x > SIDE), (method, side, x)


def test_cam_equals_gradcam_on_a_pooled_linear_head(lite0, cat_path):
    cam = evidence_of(lite0, composite(cat_path, "left", "plain"), "cam")
    grad = evidence_of(lite0, composite(cat_path, "left", "plain"), "gradcam")
    assert cam.evidence_info.layer == grad.evidence_info.layer == "_swish_1"
    correlation = np.corrcoef(cam.evidence.ravel(), grad.evidence.ravel())[0, 1]
    assert correlation > 0.999, correlation


def test_cam_equals_gradcam_on_resnet50(resnet50_random, cat_path):
    cam = cnn_engine.compute_volume(resnet50_random, cat_path, layers=["input"], top_k=1, evidence="cam", target=281)
    grad = cnn_engine.compute_volume(resnet50_random, cat_path, layers=["input"], top_k=1, evidence="gradcam", target=281)
    assert cam.evidence_info.layer == grad.evidence_info.layer == "layer4.2.relu_2"
    assert np.corrcoef(cam.evidence.ravel(), grad.evidence.ravel())[0, 1] > 0.999


def test_randomised_weights_change_the_gradcam_map(lite0, cat_path):
    # Adebayo et al. 2018: a map that survives randomising the weights explains nothing.
    random = cnn_engine.load_model("efficientnet_lite0", weights="random", device="cpu")
    trained = evidence_of(lite0, np.asarray(load_image(cat_path).image), "gradcam", target=281)
    untrained = evidence_of(random, np.asarray(load_image(cat_path).image), "gradcam", target=281)
    rho = spearmanr(trained.evidence.ravel(), untrained.evidence.ravel()).correlation
    print(f"Spearman rank correlation, trained vs randomised Grad-CAM: {rho:.3f}")
    assert abs(rho) < 0.5, rho


def test_target_by_label_and_index_agree(lite0, cat_path):
    by_label = cnn_engine.compute_volume(lite0, cat_path, layers=["input"], top_k=1, evidence="cam", target="Tabby")
    by_index = cnn_engine.compute_volume(lite0, cat_path, layers=["input"], top_k=1, evidence="cam", target=281)
    assert by_label.evidence_info.target_label == "tabby"
    assert np.array_equal(by_label.evidence, by_index.evidence)
    assert by_label.evidence_info.level_name == "cam: tabby (281)"


def test_cam_on_a_model_without_a_pooled_linear_head_points_to_gradcam(cat_path):
    vgg = cnn_engine.load_model("vgg16", weights="random", device="cpu")
    with pytest.raises(EvidenceError, match="vgg16 has 3 linear layers: use evidence='gradcam'"):
        cnn_engine.compute_volume(vgg, cat_path, layers=["input"], top_k=1, evidence="cam")
    vol = cnn_engine.compute_volume(vgg, cat_path, layers=["input"], top_k=1, evidence="gradcam")
    assert vol.evidence_info.layer == "avgpool" and vol.evidence.shape == (224, 337)


def test_unknown_target_lists_close_labels(lite0, cat_path):
    with pytest.raises(EvidenceError, match=r"unknown target class 'taby'; close labels: tabby"):
        cnn_engine.compute_volume(lite0, cat_path, layers=["input"], top_k=1, evidence="cam", target="taby")
    with pytest.raises(EvidenceError, match="target class 1000 is out of range"):
        cnn_engine.compute_volume(lite0, cat_path, layers=["input"], top_k=1, evidence="cam", target=1000)


def test_occlusion_options_are_recorded(lite0, cat_path):
    vol = evidence_of(lite0, np.asarray(load_image(cat_path).image), "occlusion", patch=64, stride=64, occluder="blur")
    assert vol.evidence_info.details == {"patch": 64, "stride": 64, "occluder": "blur", "images": 4 * 6}


def test_evidence_travels_through_netcdf_and_vtk(lite0, cat_path, tmp_path):
    vol = cnn_engine.compute_volume(lite0, cat_path, top_k=2, evidence="gradcam")
    back = cnn_engine.read_netcdf(vol.to_netcdf(tmp_path / "e.nc"))
    assert np.array_equal(back.evidence, vol.evidence) and back.evidence_info == vol.evidence_info
    image = vol.to_vtk()
    assert image.GetDimensions() == (337, 224, 20)  # 19 levels and the evidence on top
    names = image.GetFieldData().GetAbstractArray("level_name")
    assert names.GetValue(19) == f"gradcam: {vol.evidence_info.target_label} ({vol.evidence_info.target_index})"
