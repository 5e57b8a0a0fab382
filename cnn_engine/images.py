"""Reading images into 8-bit RGB, whatever their file format or mode.

Photographs come in many shapes: greyscale, 16-bit, palette, CMYK, with alpha, rotated by an EXIF
tag. The network wants RGB, so everything is brought to an upright 8-bit RGB PIL image here, and
every way a file can be wrong becomes an :class:`ImageError` that says what is wrong with it.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import describe_file_type
from .errors import ImageError

#: Anything :func:`load_image` accepts: a path, a PIL image, or an (H, W, 3) uint8 array.
ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray]

#: Smallest accepted side in pixels: below this there is nothing spatial for a CNN to look at.
MIN_SIDE = 8

#: Largest image file read, in bytes (256 MiB): checked before reading, and no more is read. A
#: photograph is a few MiB; the engine scales every image to at most 1024 pixels a side anyway.
MAX_IMAGE_BYTES = 256 * 1024 * 1024

#: Most pixels (width x height) an image may declare: Pillow's own decompression-bomb limit
#: (2 x its warning limit, about 13400 x 13400; decoded as RGB, 537 MB). Checked from the header,
#: before decoding, whatever ``PIL.Image.MAX_IMAGE_PIXELS`` is set to.
MAX_IMAGE_PIXELS = 178_956_970

#: File name endings offered by file choosers (the plugin's, the command line's folder scan).
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "gif", "webp")

# Transparent pixels are shown over white, the usual background of a cut-out photograph.
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class LoadedImage:
    """An upright 8-bit RGB image and where it came from.

    ``path`` is ``None`` for in-memory images. ``sha256`` is the hash of the file's bytes, or of
    the pixel bytes for in-memory images. ``original_mode`` and ``original_size`` (width, height in
    pixels) describe the image before conversion.
    """

    image: Image.Image
    path: str | None
    sha256: str
    original_mode: str
    original_size: tuple[int, int]


def load_image(source: ImageSource) -> LoadedImage:
    """Load ``source`` as an upright 8-bit RGB image.

    Accepts a file path, a PIL image or a numpy array shaped (H, W, 3), (H, W, 4) or (H, W)
    (uint8, or uint16 scaled down). EXIF orientation is applied, alpha is composited over white,
    16-bit images are scaled to 8 bits over their full range. Raises :class:`ImageError`.
    """
    if isinstance(source, Image.Image):
        image = source.copy()
        return _finish(image, path=None, sha256=_pixel_hash(image))
    if isinstance(source, np.ndarray):
        image = _image_from_array(source)
        return _finish(image, path=None, sha256=_pixel_hash(image))
    if isinstance(source, (str, os.PathLike)):
        return _load_file(Path(source))
    raise ImageError(
        f"cannot read an image from a {type(source).__name__}: "
        "give a file path, a PIL image or an HxWx3 uint8 numpy array"
    )


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file as :func:`load_image` shows it, read from its header.

    EXIF orientations 5 to 8 turn the image by 90 degrees, so they swap the sides. Nothing is
    decoded. Files :func:`load_image` refuses before decoding (not a regular file, too many
    bytes or pixels) raise the same :class:`ImageError` here; a file whose header cannot be read
    goes through :func:`load_image`, which says what is wrong with it.
    """
    path = Path(path)
    try:
        with _open_image_file(path) as file, _header(file, path) as opened:
            width, height = opened.size
            orientation = opened.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError):
        return load_image(path).image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _open_image_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most :data:`MAX_IMAGE_BYTES`.

    Everything else is refused before a byte is read: a FIFO would block forever, a device such
    as ``/dev/zero`` (or a link to it) would read until memory runs out. The file is opened
    without blocking and checked again once open, in case it changed since it was looked at.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    _check_image_file(path, info)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    try:
        _check_image_file(path, os.fstat(descriptor))
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _check_image_file(path: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{path} is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        target = os.path.realpath(path)
        through = f" (a link to {target})" if target != os.path.abspath(path) else ""
        raise ImageError(
            f"{path}{through} is {describe_file_type(info.st_mode)}, not a regular file: "
            "give an image file (save the picture to a file first)"
        )
    if info.st_size > MAX_IMAGE_BYTES:
        raise ImageError(
            f"image file {path} is {info.st_size / 2**20:.0f} MiB, more than the {MAX_IMAGE_BYTES // 2**20} MiB "
            "an image may have: scale it down or save it compressed (PNG, JPEG) first"
        )


def _header(file: BinaryIO, path: Path) -> Image.Image:
    """Open the image in ``file`` (its header only) and refuse more than :data:`MAX_IMAGE_PIXELS`."""
    with warnings.catch_warnings():
        # The size is judged below, once, with a message that says what to do.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(file)
        except Image.DecompressionBombError:  # Pillow's own check, at the same or a lower limit
            raise _too_many_pixels(path, None) from None
    width, height = opened.size
    if width * height > MAX_IMAGE_PIXELS:
        opened.close()
        raise _too_many_pixels(path, (width, height))
    return opened


def _too_many_pixels(path: Path, size: tuple[int, int] | None) -> ImageError:
    """The refusal of an image above :data:`MAX_IMAGE_PIXELS`; ``size`` (width, height) if known."""
    declared = f"{size[0]}x{size[1]} pixels, more than" if size else "more pixels than"
    return ImageError(
        f"image {path} declares {declared} the {MAX_IMAGE_PIXELS:,} an image may have "
        "(a decompression bomb, or a huge picture): scale it down first"
    )


def _load_file(path: Path) -> LoadedImage:
    with _open_image_file(path) as file:
        try:
            data = file.read(MAX_IMAGE_BYTES + 1)
        except OSError as exc:
            raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_IMAGE_BYTES:  # it grew since it was checked
        raise ImageError(f"image file {path} is more than the {MAX_IMAGE_BYTES // 2**20} MiB an image may have")
    if not data:
        raise ImageError(f"image file is empty (0 bytes): {path}")
    try:
        # Decoded from the bytes read (and hashed) above: the file is read once.
        with _header(io.BytesIO(data), path) as opened, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened.seek(0)  # the first frame of an animation
            opened.load()
            image = ImageOps.exif_transpose(opened) or opened.copy()
    except UnidentifiedImageError:
        raise ImageError(
            f"not an image file Pillow can read: {path} (is it really a picture? "
            f"supported: {', '.join(IMAGE_EXTENSIONS)})"
        ) from None
    except Image.DecompressionBombError:  # a later frame of an animation
        raise _too_many_pixels(path, None) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image is truncated or corrupt: {path} ({exc})") from None
    return _finish(image, path=str(path.resolve()), sha256=hashlib.sha256(data).hexdigest())


def _finish(image: Image.Image, path: str | None, sha256: str) -> LoadedImage:
    original_mode, original_size = image.mode, image.size
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        name = path or "the image"
        raise ImageError(
            f"{name} is {width}x{height} pixels: too small to look at with a CNN "
            f"(each side needs at least {MIN_SIDE} pixels)"
        )
    return LoadedImage(
        image=_to_rgb8(image),
        path=path,
        sha256=sha256,
        original_mode=original_mode,
        original_size=original_size,
    )


def _to_rgb8(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha over white, 16-bit scaled by 1/257)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return Image.fromarray(_scale_to_uint8(np.asarray(image)), mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale a high-bit-depth single-channel image to uint8 over the range its type implies."""
    values = values.astype(np.float64)
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if low >= 0 and high <= 255 and not np.issubdtype(values.dtype, np.floating):
        scale_low, scale_high = 0.0, 255.0
    elif low >= 0 and high <= 65535:
        # 16-bit data: keep absolute brightness rather than stretching each image.
        scale_low, scale_high = 0.0, 65535.0 if high > 255 else 255.0
    else:
        scale_low, scale_high = low, high if high > low else low + 1.0
    scaled = (values - scale_low) / (scale_high - scale_low) * 255.0
    return np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)


def _image_from_array(array: np.ndarray) -> Image.Image:
    shape_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    if shape_ok and array.dtype in (np.uint8, np.uint16):
        if array.dtype == np.uint16:
            array = np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)
        mode = "L" if array.ndim == 2 else ("RGB" if array.shape[2] == 3 else "RGBA")
        return Image.fromarray(np.ascontiguousarray(array), mode=mode)
    raise ImageError(
        f"cannot use a numpy array of shape {array.shape} and dtype {array.dtype} as an image: "
        "give an (H, W, 3) uint8 RGB array (H, W and H, W, 4 uint8 or uint16 work too)"
    )


def _pixel_hash(image: Image.Image) -> str:
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()
