"""Matplotlib figures as PNG files: what every plotting module of the engine shares.

A figure is drawn on matplotlib's Agg canvas (no window, no global pyplot state, so it works in a
thread, under ParaView and without a display), turned into PNG bytes at its own size (no
``bbox_inches="tight"``: the picture is exactly ``figsize x dpi`` pixels), and written atomically
(see :mod:`cnn_engine.atomic`): the file is complete or not there. Used by
:mod:`cnn_engine.faithfulness_plot` and :mod:`cnn_engine.sweep_plot`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write, check_writable
from .errors import OutputError


def new_figure(size: tuple[float, float], dpi: int, what: str) -> Any:
    """A matplotlib ``Figure`` of ``size`` inches at ``dpi``, on an Agg canvas. ``what`` names the
    drawing in the error raised when matplotlib is missing ("the score curves")."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise OutputError(f"drawing {what} needs matplotlib (Debian: apt-get install python3-matplotlib, "
                          "which ParaView's package brings)") from None
    figure = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG bytes, ``figsize x dpi`` pixels."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def check_png_path(path: str | os.PathLike, what: str, plural: bool = False) -> Path:
    """Fail early, before any computing, for a path that is not a writable ``.png`` file.
    ``what`` names the drawing ("the score curves", ``plural``; "the sweep figure"). Returns it resolved."""
    if Path(path).suffix.lower() != ".png":
        raise OutputError(f"cannot write {what} to {path}: {'they are' if plural else 'it is'} a PNG picture; "
                          "give a name ending in .png")
    return check_writable(path, what="picture", suffix=".png")


def write_png(path: str | os.PathLike, png: bytes) -> Path:
    """Write ``png`` (bytes) to ``path`` atomically. Returns the path."""
    return atomic_write(path, lambda temporary: Path(temporary).write_bytes(png), what="picture")
