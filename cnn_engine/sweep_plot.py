"""Perturbation sweeps (:class:`cnn_engine.sweep.Sweep`) as one PNG figure.

One column per sweep, side by side, each on its own severity axis in the perturbation's natural
unit (the x axis of both panels: "blur sigma [input pixels]"):

* top, the decision: the probability of the clean picture's top-1 class (solid) and of the
  target class (dashed, when the sweep has one) at each step, against severity; a grey dotted
  line at half the clean probability; vertical lines at the flip severity (the top-1 class
  changes, dashed) and at the half severity (dotted), as :attr:`Sweep.flip_severity` and
  :attr:`Sweep.half_severity` give them.
* bottom, the drift heatmap: one row per level (first level, the input side, at the top, named on
  the axis) by one cell per step, the colour the level's drift (1 - cosine similarity of its whole
  activation to the clean picture's; grey where undefined). A step's cell reaches halfway to its
  neighbours, so cells line up with the points above. Every column uses one colour scale, 0 to
  the highest drift of all the sweeps drawn, so colours compare across perturbations.

Several perturbations are compared column by column rather than overlaid on one normalised axis:
their severities have different units and scales (pixels, factors, degrees, a JPEG quality with
no clean value), and a normalised axis would hide where each reaches the clean picture.

The picture is :func:`figure_pixels` in size: :data:`COLUMN_WIDTH` pixels per sweep, and
:data:`CURVES_HEIGHT` + :data:`HEATMAP_HEIGHT` + :data:`LEVEL_HEIGHT` pixels per level (of the
sweep with most levels) high. Drawn on matplotlib's Agg canvas and written atomically
(:mod:`cnn_engine.figures`).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import CnnEngineError
from .figures import check_png_path, new_figure, png_bytes, write_png
from .perturbations import perturbation as find_perturbation

#: Pixels: width of one sweep's column; height of the curves panel with the titles; height of the
#: heatmap panel without its rows (axis labels, colour bar); height of one level's row.
COLUMN_WIDTH = 560
CURVES_HEIGHT = 360
HEATMAP_HEIGHT = 170
LEVEL_HEIGHT = 16
DPI = 100
_CLEAN_COLOUR, _TARGET_COLOUR = "#c2185b", "#1976d2"


def figure_pixels(sweeps: Sequence[Any]) -> tuple[int, int]:
    """(width, height) in pixels of the figure of ``sweeps`` (see the module docstring)."""
    levels = max(len(sweep.levels) for sweep in sweeps)
    return COLUMN_WIDTH * len(sweeps), CURVES_HEIGHT + HEATMAP_HEIGHT + LEVEL_HEIGHT * levels


def sweep_figure(sweeps: Sequence[Any], path: str | os.PathLike) -> Path:
    """Draw ``sweeps`` (one or more :class:`cnn_engine.sweep.Sweep`) into the PNG file ``path``:
    one column per sweep (see the module docstring). Returns the path. Raises
    :class:`CnnEngineError` for no sweeps, :class:`OutputError` for a path not ending in ``.png``,
    an unwritable location or a missing matplotlib; nothing is written then."""
    target = check_png_path(path, "the sweep figure")
    return write_png(target, render_sweeps(sweeps))


def render_sweeps(sweeps: Sequence[Any]) -> bytes:
    """The figure of ``sweeps`` as PNG bytes (see the module docstring)."""
    sweeps = list(sweeps)
    if not sweeps:
        raise CnnEngineError("no sweep to draw: give at least one sweep")
    width, height = figure_pixels(sweeps)
    figure = new_figure((width / DPI, height / DPI), DPI, "the sweep figure")
    images = sorted({Path(sweep.image_path).name if sweep.image_path else "an image" for sweep in sweeps})
    title = (f"{sweeps[0].model_name} on {', '.join(images)}: the decision and the drift of each level "
             f"under {', '.join(sweep.perturbation for sweep in sweeps)}")
    figure.suptitle(textwrap.fill(title, width=COLUMN_WIDTH * len(sweeps) // 9))  # about 9 pixels a character
    curves_share = CURVES_HEIGHT / (CURVES_HEIGHT + HEATMAP_HEIGHT)
    heatmap_share = (HEATMAP_HEIGHT + LEVEL_HEIGHT * max(len(sweep.levels) for sweep in sweeps)) / (
        CURVES_HEIGHT + HEATMAP_HEIGHT)
    grid = figure.add_gridspec(2, len(sweeps), height_ratios=(curves_share, heatmap_share))
    finite = [value for sweep in sweeps for value in sweep.drift_table().ravel() if np.isfinite(value)]
    highest = max(max(finite, default=0.0), 1e-6)  # all zero: still a scale
    for column, sweep in enumerate(sweeps):
        order = _drawing_order(sweep)
        severities = np.asarray([sweep.steps[i].severity for i in order], dtype=np.float64)
        curves = figure.add_subplot(grid[0, column])
        heatmap = figure.add_subplot(grid[1, column], sharex=curves)
        _draw_curves(curves, sweep, order, severities)
        _draw_heatmap(figure, heatmap, sweep, order, severities, highest)
    figure.tight_layout()
    return png_bytes(figure)


def unit_text(unit: str) -> str:
    """A perturbation's unit in words: "input pixels", "no unit" for a factor (unit "1")."""
    return "no unit" if unit == "1" else unit


def axis_label(sweep: Any) -> str:
    """The severity axis: "blur sigma [input pixels, clean at 0]", "brightness factor [no unit, clean at 1]"."""
    unit = unit_text(sweep.unit)
    identity = find_perturbation(sweep.perturbation).identity
    clean = f", clean at {identity:g}" if identity is not None else ""
    return f"{sweep.perturbation} {sweep.parameter} [{unit}{clean}]"


def _drawing_order(sweep: Any) -> list[int]:
    """Step indices by increasing severity, each severity once (a sweep may list one twice)."""
    order, seen = [], set()
    for i in sorted(range(len(sweep.steps)), key=lambda i: sweep.steps[i].severity):
        if sweep.steps[i].severity not in seen:
            seen.add(sweep.steps[i].severity)
            order.append(i)
    return order


def _draw_curves(axes: Any, sweep: Any, order: list[int], severities: np.ndarray) -> None:
    clean = [sweep.steps[i].clean_probability for i in order]
    axes.plot(severities, clean, "o-", color=_CLEAN_COLOUR, linewidth=2,
              label=f"clean class: {sweep.clean_label} ({sweep.clean_class})")
    if sweep.target is not None:
        target = [sweep.steps[i].target_probability for i in order]
        axes.plot(severities, target, "s--", color=_TARGET_COLOUR, linewidth=2,
                  label=f"target: {sweep.target_label} ({sweep.target})")
    axes.axhline(sweep.clean_probability / 2, color="#757575", linestyle=":", linewidth=1,
                 label="half the clean probability")
    if sweep.flip_severity is not None:
        axes.axvline(sweep.flip_severity, color="#333333", linestyle="--", linewidth=1,
                     label=f"top-1 class changes at {sweep.flip_severity:g}")
    if sweep.half_severity is not None:
        axes.axvline(sweep.half_severity, color="#333333", linestyle=":", linewidth=1.5,
                     label=f"below half at {sweep.half_severity:g}")
    axes.set_title(f"{sweep.perturbation}: clean top-1 {sweep.clean_label} ({sweep.clean_class}), "
                   f"p = {sweep.clean_probability:.3f}", fontsize=10)
    axes.set_ylabel("probability [0 to 1]")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(axis_label(sweep))
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)


def _draw_heatmap(figure: Any, axes: Any, sweep: Any, order: list[int], severities: np.ndarray,
                  highest: float) -> None:
    import matplotlib

    drift = np.ma.masked_invalid(sweep.drift_table()[:, order])
    edges = _cell_edges(severities)
    rows = np.arange(len(sweep.levels) + 1, dtype=np.float64)
    colours = matplotlib.colormaps["viridis"].copy()
    colours.set_bad("#bdbdbd")  # NaN: a level whose clean activation is all zero
    mesh = axes.pcolormesh(edges, rows, drift, cmap=colours, vmin=0.0, vmax=highest, shading="flat")
    axes.set_yticks(rows[:-1] + 0.5)
    axes.set_yticklabels(sweep.levels, fontsize=7)
    axes.set_ylim(len(sweep.levels), 0)  # the first level (input side) at the top
    axes.set_xlim(edges[0], edges[-1])
    axes.set_xlabel(axis_label(sweep))
    axes.set_ylabel("level (input side at the top)")
    # The colour bar stands outside the heatmap's box rather than taking from its width, so that
    # both panels of a column are equally wide and each cell stands under its point of the curves.
    bar = figure.colorbar(mesh, cax=axes.inset_axes((1.03, 0.0, 0.04, 1.0)))
    bar.set_label("drift: 1 - cosine similarity\nto the clean activation [no unit]", fontsize=8)


def _cell_edges(severities: np.ndarray) -> np.ndarray:
    """Cell boundaries halfway between neighbouring severities; the outer cells as wide as their
    inner half (one severity alone: a cell of width 1)."""
    if len(severities) == 1:
        return np.asarray([severities[0] - 0.5, severities[0] + 0.5])
    middle = (severities[:-1] + severities[1:]) / 2
    return np.concatenate([[2 * severities[0] - middle[0]], middle, [2 * severities[-1] - middle[-1]]])
