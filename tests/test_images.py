"""Images of every kind load as upright 8-bit RGB; broken ones give a clear error."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from cnn_engine import ImageError
from cnn_engine.images import load_image


def test_photograph_loads_as_rgb_with_hash(cat_path):
    loaded = load_image(cat_path)
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == (451, 300)
    assert loaded.path == str(cat_path.resolve())
    assert len(loaded.sha256) == 64


def test_greyscale_becomes_three_equal_channels(samples):
    rgb = np.asarray(load_image(samples / "camera.png").image)
    assert rgb.shape == (512, 512, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])


def test_sixteen_bit_png_is_scaled_over_full_range(tmp_path):
    values = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16).repeat(8, 0).repeat(8, 1)
    Image.fromarray(values).save(tmp_path / "deep.png")
    rgb = np.asarray(load_image(tmp_path / "deep.png").image)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 8].tolist() == [100, 100, 100]
    assert rgb[8, 0].tolist() == [200, 200, 200]
    assert rgb[8, 8].tolist() == [255, 255, 255]


def test_palette_image_keeps_its_colours(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:8] = (200, 30, 40)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "palette.png")
    loaded = np.asarray(load_image(tmp_path / "palette.png").image)
    assert loaded[0, 0].tolist() == [200, 30, 40]
    assert loaded[15, 15].tolist() == [0, 0, 0]


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    red = np.asarray(load_image(tmp_path / "cmyk.jpg").image)[8, 8]
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_transparent_pixels_are_shown_over_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (10, 20, 30, 255)  # left half opaque, right half fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    rgb = np.asarray(load_image(tmp_path / "alpha.png").image)
    assert rgb[0, 0].tolist() == [10, 20, 30]
    assert rgb[0, 15].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied(tmp_path):
    # Stored 40 wide x 20 high with a red top-left corner; orientation 6 means "rotate 90
    # degrees clockwise to display", so the displayed image is 20 x 40, red at the top right.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=100)
    shown = np.asarray(load_image(tmp_path / "rotated.jpg").image)
    assert shown.shape == (40, 20, 3)
    assert shown[1, 18, 0] > 200 and shown[1, 1, 0] < 50


def test_numpy_array_and_pil_image_are_accepted():
    array = np.full((32, 48, 3), 7, np.uint8)
    from_array = load_image(array)
    from_pil = load_image(Image.fromarray(array))
    assert from_array.path is None and from_array.image.size == (48, 32)
    assert from_array.sha256 == from_pil.sha256


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageError, match=r"image not found: .*nothere\.jpg"):
        load_image(tmp_path / "nothere.jpg")


def test_empty_file_is_named(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"image file is empty \(0 bytes\)"):
        load_image(tmp_path / "empty.jpg")


def test_text_file_named_jpg_is_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are notes, not a picture\n")
    with pytest.raises(ImageError, match=r"not an image file Pillow can read: .*notes\.jpg"):
        load_image(tmp_path / "notes.jpg")


def test_truncated_jpeg_is_reported_as_corrupt(cat_path, tmp_path):
    data = cat_path.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match=r"truncated or corrupt: .*cut\.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_one_pixel_image_is_too_small(tmp_path):
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "dot.png")
    with pytest.raises(ImageError, match=r"is 1x1 pixels: too small"):
        load_image(tmp_path / "dot.png")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_array_of_wrong_shape_is_refused():
    with pytest.raises(ImageError, match=r"shape \(4, 4, 2\)"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_size_from_the_header_matches_the_loaded_image(samples, tmp_path):
    from cnn_engine.images import image_size

    stored = np.zeros((20, 40, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    for path in [tmp_path / "rotated.jpg", *sorted(samples.glob("*.jpg")), samples / "camera.png"]:
        assert image_size(path) == load_image(path).image.size, path
    assert image_size(tmp_path / "rotated.jpg") == (20, 40)
