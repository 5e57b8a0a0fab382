"""An evidence map drawn over its image, as a picture to look at or put in a paper.

:func:`overlay` blends the map over the picture as it is (an array for further use);
:func:`explain_figure` makes the annotated picture `cnnvis explain` writes: a title, the map over a
grey, dimmed copy of the picture (readable over any colours), and a colour bar saying what it means.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_write, check_writable
from .errors import OutputError

#: Brightness factor of the grey picture under the map in :func:`evidence_figure`.
DIM = 0.6
#: Largest opacity of the map in :func:`evidence_figure` (reached at the map's highest value).
FIGURE_OPACITY = 0.75
#: Narrowest figure in pixels: room for the title (a narrower picture is centred).
MIN_FIGURE_WIDTH = 320

# DejaVu Sans (Debian package fonts-dejavu-core), found by path or on Pillow's font path.
_FONT_FILES = {
    False: ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"),
    True: ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "DejaVuSans-Bold.ttf"),
}
_PAPER, _INK = (255, 255, 255), (17, 17, 17)
_METHOD_NAMES = {"cam": "CAM", "gradcam": "Grad-CAM", "occlusion": "Occlusion"}

# Anchor colours of matplotlib's "inferno" map at 0, 0.25, 0.5, 0.75, 1 (linearly interpolated).
_INFERNO = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64)


def colorize(values: np.ndarray) -> np.ndarray:
    """Map values (any range; NaN as 0) to inferno colours: (height, width, 3) uint8."""
    finite = np.nan_to_num(values.astype(np.float64))
    low, high = finite.min(), finite.max()
    return _inferno((finite - low) / (high - low) if high > low else np.zeros_like(finite))


def _inferno(scaled: np.ndarray) -> np.ndarray:
    """Inferno colours of values in [0, 1]: (..., 3) uint8."""
    position = scaled * (len(_INFERNO) - 1)
    lower = np.clip(np.floor(position).astype(int), 0, len(_INFERNO) - 2)
    fraction = (position - lower)[..., None]
    colours = _INFERNO[lower] * (1 - fraction) + _INFERNO[lower + 1] * fraction
    return np.clip(np.rint(colours), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """The evidence map over the image: stronger evidence, more colour. (H, W, 3) uint8."""
    finite = np.nan_to_num(values.astype(np.float64))
    spread = finite.max() - finite.min()
    return _blend(image, (finite - finite.min()) / spread if spread > 0 else np.zeros_like(finite), opacity)


def _blend(image: np.ndarray, scaled: np.ndarray, opacity: float) -> np.ndarray:
    """Inferno colours of ``scaled`` (in [0, 1]) over ``image``, with opacity ``scaled * opacity``."""
    weight = scaled[..., None] * opacity
    blended = image.astype(np.float64) * (1 - weight) + _inferno(scaled).astype(np.float64) * weight
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def evidence_scale(values: np.ndarray) -> np.ndarray:
    """Evidence as a fraction of the map's highest value: 0 (none; negative values and NaN count
    as none) to 1. An all-zero map stays 0."""
    finite = np.maximum(np.nan_to_num(values.astype(np.float64)), 0.0)
    high = finite.max()
    return finite / high if high > 0 else finite


def desaturated(image: np.ndarray, dim: float = DIM) -> np.ndarray:
    """The picture in grey (Rec. 601 luma) times ``dim``: (H, W, 3) uint8 with R = G = B.

    Under an evidence map it keeps the picture recognisable while no colour of its own (an orange
    cat, a red car) competes with the map's colours, and dimming leaves the map's bright end the
    brightest thing in the picture.
    """
    from .volume import luminance

    grey = np.clip(np.rint(luminance(image).astype(np.float64) * dim), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


@dataclass(frozen=True)
class Figure:
    """An annotated picture: ``rgb`` (height, width, 3) uint8, and where the picture sits in it,
    ``picture_box`` = (top, left, bottom, right) in pixels (bottom and right exclusive)."""

    rgb: np.ndarray
    picture_box: tuple[int, int, int, int]


def evidence_figure(
    image: np.ndarray,
    values: np.ndarray,
    title: Sequence[str],
    caption: str,
    opacity: float = FIGURE_OPACITY,
) -> Figure:
    """The evidence map over a grey, dimmed copy of ``image``, a title above, a colour bar below.

    The map is scaled by :func:`evidence_scale`: no evidence (0 or less) leaves the grey picture
    as it is, the map's highest value gets the brightest colour at ``opacity``. ``title``: lines
    of text (the first in bold), wrapped to the figure's width. ``caption`` says what the colour
    bar means; the bar shows the colours as they appear over a mid-grey picture, from none (left,
    labelled ``none``: no colour) to the map's highest value (right, ``most``). The figure is at least :data:`MIN_FIGURE_WIDTH` pixels wide (the
    picture is centred, never scaled); text uses DejaVu Sans when installed, else Pillow's font.
    """
    height, width = image.shape[:2]
    size = max(12, min(28, round(max(width, MIN_FIGURE_WIDTH) / 34)))
    regular, bold = _font(size, bold=False), _font(size, bold=True)
    margin = max(6, size // 2)
    figure_width = max(width, MIN_FIGURE_WIDTH)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title_lines = [(line, bold if i == 0 else regular) for i, text in enumerate(title)
                   for line in _wrap(measure, text, bold if i == 0 else regular, figure_width - 2 * margin)]
    caption_lines = _wrap(measure, caption, regular, figure_width - 2 * margin)
    line_height = round(size * 1.35)
    bar_height = max(10, size)

    title_height = margin + line_height * len(title_lines) + margin // 2
    bar_top = title_height + height + margin + line_height * len(caption_lines)
    total_height = bar_top + bar_height + line_height + margin

    canvas = Image.new("RGB", (figure_width, total_height), _PAPER)
    left = (figure_width - width) // 2
    canvas.paste(Image.fromarray(_blend(desaturated(image), evidence_scale(values), opacity)), (left, title_height))
    bar_width = figure_width - 2 * margin
    ramp = np.tile(np.linspace(0.0, 1.0, bar_width), (bar_height, 1))
    grey = np.full((bar_height, bar_width, 3), round(128 * DIM), dtype=np.uint8)
    canvas.paste(Image.fromarray(_blend(grey, ramp, opacity)), (margin, bar_top))

    draw = ImageDraw.Draw(canvas)
    y = margin
    for text, font in title_lines:
        draw.text((margin, y), text, fill=_INK, font=font)
        y += line_height
    y = title_height + height + margin
    for text in caption_lines:
        draw.text(((figure_width - measure.textlength(text, font=regular)) / 2, y), text, fill=_INK, font=regular)
        y += line_height
    draw.rectangle((margin - 1, bar_top - 1, margin + bar_width, bar_top + bar_height), outline=_INK)
    labels_top = bar_top + bar_height + 2
    draw.text((margin, labels_top), "none", fill=_INK, font=regular)
    draw.text((figure_width - margin - measure.textlength("most", font=regular), labels_top), "most", fill=_INK,
              font=regular)
    return Figure(np.asarray(canvas, dtype=np.uint8).copy(), (title_height, left, title_height + height, left + width))


def explain_figure(volume) -> Figure:
    """:func:`evidence_figure` for a volume with an evidence map: the title names the class (label,
    index), its probability, the method, its layer, the model and its weights."""
    info, prov = volume.evidence_info, volume.provenance
    if info is None or volume.evidence is None:
        raise OutputError("this volume has no evidence map: compute it with evidence='cam', 'gradcam' or 'occlusion'")
    method = _METHOD_NAMES.get(info.method, info.method)
    label = info.target_label
    named = label if label == f"class {info.target_index}" else f"{label} (class {info.target_index})"
    training = {True: "", False: ", UNTRAINED"}.get(prov.trained, ", training unknown")
    labels = "" if prov.labels == "ImageNet" else f", labels {prov.labels}"
    where = f" on {info.layer}" if info.layer else ""
    title = [f"{named}: probability {info.target_probability:.3f}",
             f"{method}{where}",
             f"{prov.model}, weights {prov.weights}{training}{labels}"]
    values = np.nan_to_num(volume.evidence.astype(np.float64))
    empty = "" if values.max() > 0 else " (none found)"
    caption = f"{method} evidence for {label}, none to most{empty}"
    return evidence_figure(volume.image, volume.evidence, title, caption)


def _font(size: int, bold: bool):
    for candidate in _FONT_FILES[bold]:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    """Greedy word wrap of ``text`` to lines at most ``width`` pixels wide (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def save_picture(picture: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB picture (PNG, JPEG... by the path's extension) atomically. Returns the path.

    Raises :class:`OutputError` for an extension Pillow cannot write and for a location that
    cannot take the file (see :mod:`cnn_engine.atomic`).
    """
    path = check_writable(path, what="picture", suffix=".png")
    picture_format = Image.registered_extensions().get(path.suffix.lower())
    if picture_format is None or picture_format not in Image.SAVE:
        raise OutputError(f"cannot write picture {path}: unknown picture type {path.suffix or '(no extension)'!r}; "
                          "use .png or .jpg")

    def write(temporary: str) -> None:
        try:
            Image.fromarray(picture).save(temporary, format=picture_format)
        except (ValueError, KeyError) as exc:  # a format that cannot hold RGB, or bad options
            raise OutputError(f"cannot write picture {path}: {exc}") from None

    return atomic_write(path, write, what="picture")
