"""Perturbations of the fitted network-input picture: severities in natural units, identities
that change nothing, deterministic results, and clear messages for bad severities and names.
All on the cat photograph fitted to the 224-pixel short side (224 x 337 pixels)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import cnn_engine
from cnn_engine import CnnEngineError
from cnn_engine.images import load_image
from cnn_engine.perturbations import DEFAULT_FILL, PERTURBATIONS, check_severities, perturbation
from cnn_engine.preprocess import Preprocessing, fit_image

WITH_IDENTITY = [name for name, p in PERTURBATIONS.items() if p.identity is not None]


@pytest.fixture(scope="module")
def cat_rgb(cat_path) -> np.ndarray:
    """The cat as the network sees it: (224, 337, 3) uint8, row 0 = top."""
    return np.asarray(fit_image(load_image(cat_path).image, Preprocessing(size=224)))


def strongest(name: str) -> float:
    """The strongest default severity (for jpeg the lowest quality)."""
    values = PERTURBATIONS[name].default_values
    return values[0] if name == "jpeg" else values[-1]


def high_frequency_energy(rgb: np.ndarray) -> float:
    """Sum of squared differences between neighbouring pixels, across and down."""
    x = rgb.astype(np.float64)
    return float((np.diff(x, axis=0) ** 2).sum() + (np.diff(x, axis=1) ** 2).sum())


def test_the_perturbations_are_the_documented_ones_in_order():
    assert list(PERTURBATIONS) == ["brightness", "contrast", "gamma", "saturation", "hue", "blur", "noise",
                                   "jpeg", "rotation", "scale", "translation", "occlusion"]


def test_the_package_exports_the_table():
    assert cnn_engine.PERTURBATIONS is PERTURBATIONS


def test_every_default_sweep_is_ascending_within_range_and_holds_the_identity():
    for p in PERTURBATIONS.values():
        assert list(p.default_values) == sorted(p.default_values), p.name
        assert check_severities(p, p.default_values) == p.default_values, p.name
        assert p.identity is None or p.identity in p.default_values, p.name


@pytest.mark.parametrize("name", WITH_IDENTITY)
def test_the_identity_severity_returns_the_same_bytes(cat_rgb, name):
    p = PERTURBATIONS[name]
    out = p.apply(cat_rgb, p.identity)
    assert out.dtype == np.uint8 and out.shape == cat_rgb.shape
    assert out.tobytes() == cat_rgb.tobytes()


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_the_same_call_twice_gives_the_same_bytes(cat_rgb, name):
    p = PERTURBATIONS[name]
    first = p.apply(cat_rgb, strongest(name), seed=3)
    second = p.apply(cat_rgb, strongest(name), seed=3)
    assert first.tobytes() == second.tobytes()
    assert first.tobytes() != cat_rgb.tobytes()


def test_noise_depends_on_the_seed(cat_rgb):
    noise = perturbation("noise")
    assert noise.apply(cat_rgb, 0.1, seed=0).tobytes() != noise.apply(cat_rgb, 0.1, seed=1).tobytes()


def test_noise_leaves_the_global_random_state_as_it_was(cat_rgb):
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    perturbation("noise").apply(cat_rgb, 0.1, seed=0)
    assert torch.equal(torch.rand(4), expected)


def test_stronger_blur_never_raises_high_frequency_energy(cat_rgb):
    blur = perturbation("blur")
    energies = [high_frequency_energy(blur.apply(cat_rgb, sigma)) for sigma in (0, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16)]
    assert all(later <= earlier for earlier, later in zip(energies, energies[1:]))
    assert energies[-1] < energies[0] / 100


def test_brightness_zero_is_black(cat_rgb):
    assert not perturbation("brightness").apply(cat_rgb, 0).any()


def test_a_hue_shift_of_180_degrees_twice_returns_the_original_within_one_level(cat_rgb):
    hue = perturbation("hue")
    once = hue.apply(cat_rgb, 180)
    twice = hue.apply(once, 180)
    assert np.abs(once.astype(int) - cat_rgb).max() > 50
    assert np.abs(twice.astype(int) - cat_rgb).max() <= 1


@pytest.mark.parametrize("occluder", ["mean", "blur", "noise"])
def test_occlusion_changes_only_the_pixels_of_the_patch(cat_rgb, occluder):
    # A 32-pixel patch centred at x=100, y=80: columns 84-115, rows 64-95.
    out = perturbation("occlusion").apply(cat_rgb, 32, position=(100, 80), occluder=occluder)
    changed = (out != cat_rgb).any(axis=2)
    inside = np.zeros_like(changed)
    inside[64:96, 84:116] = True
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.9


def test_the_mean_occluder_paints_the_imagenet_mean_colour(cat_rgb):
    out = perturbation("occlusion").apply(cat_rgb, 32, position=(100, 80), occluder="mean")
    assert (out[64:96, 84:116] == np.array([124, 116, 104], np.uint8)).all()


def test_occlusion_is_centred_on_the_picture_by_default(cat_rgb):
    # 224 x 337 pixels: centre (168.5, 112); a 20-pixel patch covers columns 158-177, rows 102-121.
    changed = (perturbation("occlusion").apply(cat_rgb, 20) != cat_rgb).any(axis=2)
    rows, cols = np.nonzero(changed)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (102, 121, 158, 177)


def test_an_occlusion_centred_outside_the_picture_is_refused(cat_rgb):
    with pytest.raises(CnnEngineError, match=r"^occlusion position \(5000, 80\) is outside the 337 x 224 network input: "
                                             r"give a centre inside it, x from 0 to 336 and y from 0 to 223 "
                                             r"\(input pixels\)$"):
        perturbation("occlusion").apply(cat_rgb, 32, position=(5000, 80))


@pytest.mark.parametrize("quality", [1, 30, 90])
def test_jpeg_at_a_quality_equals_a_pillow_encode_and_decode_at_that_quality(cat_rgb, quality):
    buffer = io.BytesIO()
    Image.fromarray(cat_rgb).save(buffer, format="JPEG", quality=quality)
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert perturbation("jpeg").apply(cat_rgb, quality).tobytes() == expected.tobytes()


def test_translation_moves_the_picture_right_and_fills_the_strip_with_the_mean_colour(cat_rgb):
    out = perturbation("translation").apply(cat_rgb, 16)
    assert out[:, 16:].tobytes() == cat_rgb[:, :-16].tobytes()
    assert (out[:, :16] == np.array(DEFAULT_FILL, np.uint8)).all()


def test_rotation_fills_the_corners_that_come_into_view(cat_rgb):
    out = perturbation("rotation").apply(cat_rgb, 45, fill=(0, 255, 0))
    assert out[0, 0].tolist() == [0, 255, 0] and out[-1, -1].tolist() == [0, 255, 0]


def test_labels_name_the_parameter_and_unit():
    assert perturbation("blur").label(2.5) == "blur sigma 2.5"
    assert perturbation("jpeg").label(30) == "jpeg quality 30"
    assert perturbation("rotation").label(15) == "rotation 15 deg"
    assert perturbation("occlusion").label(32) == "occlusion patch 32 px"


def test_an_out_of_range_severity_says_the_range_and_unit(cat_rgb):
    with pytest.raises(CnnEngineError, match=r"^blur sigma 40 is out of range: use 0 to 32 \(input pixels\)$"):
        perturbation("blur").apply(cat_rgb, 40)
    with pytest.raises(CnnEngineError, match=r"^jpeg quality 0 is out of range: use 1 to 100 \(JPEG quality \(1-100\)\)$"):
        check_severities(perturbation("jpeg"), [50, 0])


def test_a_severity_that_is_not_finite_is_refused():
    with pytest.raises(CnnEngineError, match=r"^noise sigma nan is not a finite number: use 0 to 1 \(fraction of full scale\)$"):
        check_severities(perturbation("noise"), [float("nan")])


def test_an_unknown_perturbation_lists_the_known_ones():
    with pytest.raises(CnnEngineError, match=r"^unknown perturbation 'fog': use one of brightness, contrast, gamma, "
                                             r"saturation, hue, blur, noise, jpeg, rotation, scale, translation, occlusion$"):
        perturbation("fog")


def test_an_unknown_option_is_refused(cat_rgb):
    with pytest.raises(CnnEngineError, match=r"^blur got unknown option\(s\) fill: it takes none$"):
        perturbation("blur").apply(cat_rgb, 2, fill=(0, 0, 0))
