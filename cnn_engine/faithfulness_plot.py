"""The deletion and insertion curves of a :class:`~cnn_engine.faithfulness.Faithfulness` as a PNG.

Two panels side by side: deletion (left; a curve that falls fast is good) and insertion (right;
a curve that rises fast is good), each with the map's curve and those of the random map and the
centred prior, areas under the curves in the legend. Drawn with matplotlib's Agg renderer (no
window, no global pyplot state) and written atomically (the shared part: :mod:`cnn_engine.figures`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .faithfulness import Faithfulness
from .figures import check_png_path, new_figure, png_bytes, write_png

#: Figure size in inches and resolution: 1100 x 420 pixels.
FIGURE_SIZE = (11.0, 4.2)
DPI = 100


def save_curves(result: Faithfulness, path: str | os.PathLike, name: str = "map") -> Path:
    """Write the curves of ``result`` to the PNG file ``path``; ``name`` labels the map's curve
    (e.g. ``Grad-CAM``). Returns the path. Raises :class:`OutputError` for a path not ending in
    ``.png``, an unwritable location, or a missing matplotlib."""
    path = check_curves_path(path)
    return write_png(path, render_curves(result, name))


def check_curves_path(path: str | os.PathLike) -> Path:
    """Fail early, before any computing, for a curves path that is not a writable ``.png`` file.
    Returns it resolved."""
    return check_png_path(path, "the score curves", plural=True)


def render_curves(result: Faithfulness, name: str = "map") -> bytes:
    """The curves of ``result`` as PNG bytes (see the module docstring)."""
    figure = new_figure(FIGURE_SIZE, DPI, "the score curves")
    figure.suptitle(f"{name} for {result.target_label} (class {result.target_index}): RISE deletion and insertion, "
                    f"{result.steps} steps, {result.baseline} baseline")
    curves = ((name, result.map, "#c2185b", "-"), ("random map", result.random, "#757575", "--"),
              ("centred prior", result.prior, "#1976d2", ":"))
    for column, (kind, better) in enumerate((("deletion", "lower is better"), ("insertion", "higher is better"))):
        axes = figure.add_subplot(1, 2, column + 1)
        for label, scores, colour, style in curves:
            values = getattr(scores, f"{kind}_curve")
            area = getattr(scores, kind)
            axes.plot(result.fractions, values, style, color=colour, linewidth=2, label=f"{label}: AUC {area:.3f}")
        axes.set_title(f"{kind} (AUC: {better})")
        axes.set_xlabel(f"fraction of pixels {'removed' if kind == 'deletion' else 'inserted'}, most salient first")
        axes.set_ylabel(f"probability of {result.target_label}")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, max(1e-3, max(float(getattr(s, f"{kind}_curve").max()) for _, s, _, _ in curves)) * 1.05)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper right" if kind == "deletion" else "lower right")
    figure.tight_layout()
    return png_bytes(figure)
