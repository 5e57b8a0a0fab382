"""An exemplar atlas: the top exemplars of a level's channels as one picture (DVT style).

In the style of the Deep Visualization Toolbox (Yosinski et al. 2015, "Understanding neural
networks through deep visualization"): per channel, the input patches that made it respond most.
For each channel shown, its top exemplars (:meth:`ChannelStatistics.exemplars`, highest value
first) become a square mosaic of ``ceil(sqrt(n))`` x ``ceil(sqrt(n))`` tiles, read row by row;
the channels' blocks sit in a grid, each under a one-line caption (channel, preferred class and
its index, selectivity index).

A **tile** is the receptive field of the cell where the channel's map reached its maximum, cut
from the picture the network saw: the image re-read from its file and fitted exactly as the
statistics fitted it (:func:`cnn_engine.images.load_image`, then
:func:`cnn_engine.preprocess.network_input` with the statistics' preprocessing). The field is a
square of ``receptive_field`` input pixels centred on the cell; where it reaches beyond the image
(near a border, or everywhere for deep levels whose field is wider than the image) the missing
part is black, so a tile always shows the whole field and the image's place in it. The square is
then resized to ``tile`` x ``tile`` pixels (Pillow's antialiased bilinear filter).

The field's full extent is the exemplar's ``field`` (its receptive field before clipping to the
input, which the statistics keep beside the clipped ``box``): no model is needed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import CnnEngineError, ImageError

#: Pixels between the blocks of the grid and around it.
GAP = 6
#: Height in pixels of the caption strip above each block (Pillow's default bitmap font is 11 px).
CAPTION_HEIGHT = 14
#: Channels shown when none are named: the level's most selective.
DEFAULT_CHANNELS = 16
#: Side in pixels of one exemplar tile unless asked otherwise.
DEFAULT_TILE = 64
_BACKGROUND = (255, 255, 255)
_EMPTY_TILE = (230, 230, 230)
_TEXT = (0, 0, 0)


@dataclass(frozen=True)
class Atlas:
    """An exemplar atlas of one level (see the module docstring).

    ``rgb``: (height, width, 3) uint8, image order (row 0 = top). ``channels``: the channels shown,
    block by block (row by row of the grid). ``blocks``: per channel its block's box
    (x0, y0, x1, y1) in atlas pixels, x1 and y1 exclusive, caption included. ``captions``: per
    channel its caption. ``exemplars``: per channel the exemplars shown, tile by tile.
    ``side``: tiles per side of a block's mosaic; ``tile``: a tile's side in pixels;
    ``columns``/``rows``: blocks per row and rows of blocks.
    """

    rgb: np.ndarray
    level: str
    channels: tuple[int, ...]
    blocks: tuple[tuple[int, int, int, int], ...]
    captions: tuple[str, ...]
    exemplars: tuple[tuple, ...]
    side: int
    tile: int
    columns: int
    rows: int

    def tile_box(self, block: int, index: int) -> tuple[int, int, int, int]:
        """Box (x0, y0, x1, y1) in atlas pixels of exemplar ``index`` (0 = the best) of the
        ``block``-th channel shown."""
        x0, y0, _, _ = self.blocks[block]
        left = x0 + (index % self.side) * self.tile
        top = y0 + CAPTION_HEIGHT + (index // self.side) * self.tile
        return left, top, left + self.tile, top + self.tile


def exemplar_atlas(stats, level: str | int, channels: Sequence[int] | None = None, tile: int = DEFAULT_TILE,
                   columns: int | None = None) -> Atlas:
    """The exemplar atlas of ``level`` (a name or an index) of ``stats`` (a
    :class:`cnn_engine.ChannelStatistics` or the path of a file its ``to_netcdf`` wrote).

    ``channels``: the channels to show, in that order (default: the level's
    :data:`DEFAULT_CHANNELS` most selective, :meth:`ChannelStatistics.most_selective`). ``tile``:
    a tile's side in pixels (8 to 512). ``columns``: blocks per row of the grid (default: a grid
    about as wide as high). Raises
    :class:`ImageError` naming an exemplar image that cannot be read any more or has changed, and
    :class:`CnnEngineError` for bad arguments.
    """
    from .statistics import ChannelStatistics, read_channel_statistics

    if isinstance(stats, (str, os.PathLike)):
        stats = read_channel_statistics(stats)
    if not isinstance(stats, ChannelStatistics):
        raise CnnEngineError(f"an exemplar atlas is made from channel statistics (cnn_engine.channel_statistics or "
                             f"a file it wrote), not from a {type(stats).__name__}")
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not 8 <= tile <= 512:
        raise CnnEngineError(f"tile must be a whole number of pixels from 8 to 512, not {tile!r}")
    index = stats.level_index(level)
    name = stats.levels[index]
    if channels is None:
        shown = [row.channel for row in stats.most_selective(index, DEFAULT_CHANNELS)]
    else:
        from .channel_netcdf import check_channel

        shown = [check_channel(c, stats.channel_counts[index], name) for c in channels]
        if not shown:
            raise CnnEngineError("no channel to show: name at least one channel, or leave channels out for the "
                                 "level's most selective")
    if columns is None:
        columns = math.ceil(math.sqrt(len(shown)))
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise CnnEngineError(f"columns must be a whole number of at least 1, not {columns!r}")
    columns = min(int(columns), len(shown))
    rows = math.ceil(len(shown) / columns)
    exemplars = [stats.exemplars(index, c) for c in shown]
    side = max(1, math.ceil(math.sqrt(max([len(e) for e in exemplars] + [1]))))
    cutter = _Cutter(stats)
    block_width, block_height = side * tile, CAPTION_HEIGHT + side * tile
    picture = Image.new("RGB", (columns * block_width + (columns + 1) * GAP, rows * block_height + (rows + 1) * GAP),
                        _BACKGROUND)
    font = ImageFont.load_default()
    blocks, captions = [], []
    for number, (channel, found) in enumerate(zip(shown, exemplars)):
        x0 = GAP + (number % columns) * (block_width + GAP)
        y0 = GAP + (number // columns) * (block_height + GAP)
        blocks.append((x0, y0, x0 + block_width, y0 + block_height))
        captions.append(caption(stats, index, channel, block_width - 2, font))
        block = Image.new("RGB", (block_width, block_height), _BACKGROUND)
        ImageDraw.Draw(block).text((1, 1), captions[-1], fill=_TEXT, font=font)  # clipped to the block
        for k in range(side * side):
            where = ((k % side) * tile, CAPTION_HEIGHT + (k // side) * tile)
            if k < len(found):
                block.paste(Image.fromarray(cutter.tile(found[k])).resize((tile, tile), Image.BILINEAR), where)
            else:  # fewer exemplars than tiles (a small set)
                block.paste(_EMPTY_TILE, where + (where[0] + tile, where[1] + tile))
        picture.paste(block, (x0, y0))
    return Atlas(np.asarray(picture, dtype=np.uint8).copy(), name, tuple(int(c) for c in shown), tuple(blocks),
                 tuple(captions), tuple(tuple(e) for e in exemplars), side, int(tile), columns, rows)


def field_square(stats, exemplar) -> np.ndarray:
    """The (side, side, 3) uint8 square of ``exemplar``'s full receptive field before it is
    resized to a tile: the re-read picture's pixels inside the field, black beyond the image."""
    return _Cutter(stats).tile(exemplar)


def caption(stats, level: int, channel: int, width: float | None = None, font=None) -> str:
    """A block's caption: ``12 SI 0.53 tabby (281)``: the channel, its selectivity index (``n/a``
    where it is undefined) and its preferred class with the class index (``no class`` without
    labelled classes). With ``width`` (pixels, in ``font``) the class name is shortened (ending
    in ``..``) until the caption fits."""
    preferred = int(stats.preferred_class[level][channel])
    selectivity = float(stats.selectivity[level][channel])
    si = f"{selectivity:.2f}" if math.isfinite(selectivity) else "n/a"
    head = f"{channel} SI {si} "
    if preferred < 0:
        return head + "no class"
    name, index = stats.class_name(preferred), f" ({preferred})"
    text = head + name + index
    if width is None or font is None:
        return text
    while name and font.getlength(text) > width:
        name = name[:-1]
        text = f"{head}{name}..{index}"
    return text


def save_atlas(atlas: Atlas, path: str | os.PathLike) -> Path:
    """Write the atlas as a PNG, atomically (see :mod:`cnn_engine.atomic`). Returns the path."""
    from .atomic import atomic_write, check_writable
    from .errors import OutputError

    target = check_writable(path, what="picture", suffix=".png")
    if target.suffix.lower() != ".png":
        raise OutputError(f"an atlas is written as PNG: give a file name ending in .png, not {target.name}")

    def write(temporary: str) -> None:
        Image.fromarray(atlas.rgb).save(temporary, format="PNG")

    return atomic_write(target, write, what="picture")


class _Cutter:
    """Cuts exemplar tiles: re-reads each image once."""

    def __init__(self, stats) -> None:
        from .preprocess import Preprocessing

        self.stats = stats
        self.preprocessing = Preprocessing(**stats.preprocessing)
        self.pictures: dict[int, np.ndarray] = {}

    def tile(self, exemplar) -> np.ndarray:
        """The exemplar's full field as a square (see :func:`field_square`)."""
        picture = self._picture(exemplar)
        x0, y0, x1, y1 = exemplar.box  # the field's pixels inside the picture
        fx0, fy0, fx1, fy1 = exemplar.field  # the whole field
        side = max(fy1 - fy0, fx1 - fx0, 1)
        square = np.zeros((side, side, 3), dtype=np.uint8)
        # The field centred in the square (it is one already for square fields), the image inside it.
        oy, ox = (side - (fy1 - fy0)) // 2, (side - (fx1 - fx0)) // 2
        square[oy + y0 - fy0:oy + y1 - fy0, ox + x0 - fx0:ox + x1 - fx0] = picture[y0:y1, x0:x1]
        return square

    def _picture(self, exemplar) -> np.ndarray:
        """The picture the network saw for the exemplar's image, re-read and fitted."""
        from .images import load_image
        from .preprocess import network_input

        if exemplar.position in self.pictures:
            return self.pictures[exemplar.position]
        try:
            loaded = load_image(exemplar.image)
        except ImageError as exc:
            raise ImageError(f"an exemplar image cannot be read any more: {exc}; the atlas cuts its tiles from the "
                             "images the statistics saw: put it back, or compute the statistics again") from None
        rgb = network_input(loaded.image, self.preprocessing, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).rgb
        expected = tuple(int(v) for v in self.stats.image_sizes[exemplar.position])
        if rgb.shape[:2] != expected:
            raise ImageError(f"exemplar image {exemplar.image} has changed since the statistics were computed (network "
                             f"input {rgb.shape[1]}x{rgb.shape[0]} px now, {expected[1]}x{expected[0]} px then): "
                             "compute the statistics again")
        self.pictures[exemplar.position] = rgb
        return rgb
