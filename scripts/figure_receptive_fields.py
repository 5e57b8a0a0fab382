"""python scripts/figure_receptive_fields.py [PICTURE]: the README's figure of where levels are drawn.

Draws, from ResNet-50's geometry as the engine computes it (:func:`cnn_engine.receptive.graph_geometry`
on torchvision's graph; no weights needed), one row of input pixels and above it the cells of
five levels: where each cell is drawn now (centred on its receptive field: the input pixel
nearest its centre shows it) and, greyed, where the engine drew it before (its block footprint
``[r * s, (r + 1) * s)``, stretched where the width is not a multiple of the stride). One cell's
receptive field is drawn down to the pixels it sees. Left: the left edge of a 224 x 224 input;
right: the right edge of a 337 x 224 one (the cat's grid, 10.5 layer4 cells wide).

Writes ``docs/receptive_fields.png`` (or PICTURE) atomically. Run from anywhere:
``.venv/bin/python scripts/figure_receptive_fields.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torchvision  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnn_engine.atomic import atomic_write  # noqa: E402
from cnn_engine.layers import LayerCatalog, probe_shapes  # noqa: E402
from cnn_engine.receptive import Geometry, graph_geometry  # noqa: E402

LEVELS = ["layer1.2", "layer2.3", "layer3.5", "layer4.2"]  # the last block of each stride: 4, 8, 16, 32
SHOWN_FIELD = ("layer2.3", 48)  # the level and the input column of the cell whose field is drawn
PIXELS_SHOWN = 100  # input columns per panel
NEW_COLOURS = ("#9ecae1", "#4292c6")
OLD_COLOURS = ("#e0e0e0", "#bdbdbd")


def level_cells(size: tuple[int, int]) -> list[tuple[str, Geometry, int]]:
    """(level name, its geometry, its number of cell columns) of each of LEVELS for a (height, width) input."""
    model = torchvision.models.resnet50(weights=None).eval()
    nodes = {spec.name: spec.node for spec in LayerCatalog(model, "resnet50").resolve("blocks")}
    geometry = graph_geometry(model, size)
    shapes = probe_shapes(model, [nodes[name] for name in LEVELS], size)
    return [(name, geometry[nodes[name]], shapes[nodes[name]][3]) for name in LEVELS]


def draw_panel(ax, levels: list[tuple[str, Geometry, int]], width: int, first: int, title: str) -> None:
    """Pixels ``first`` .. ``first + PIXELS_SHOWN - 1`` of a ``width`` px wide input and the cells above."""
    last = first + PIXELS_SHOWN - 1
    lo, hi = first - 0.5, last + 0.5
    # The input pixels, each [i - 0.5, i + 0.5].
    for i in range(first, last + 1):
        ax.add_patch(Rectangle((i - 0.5, -0.2), 1.0, 0.4, facecolor="#f0f0f0" if i % 2 else "#d9d9d9",
                               edgecolor="none"))
    ax.text(lo - 1, 0, "input pixels", ha="right", va="center", fontsize=10)
    for row, (name, g, cells) in enumerate(levels, start=1):
        stride, offset = g.stride[1], g.offset[1]
        for c in range(cells):
            centre = offset + c * stride
            # Drawn now: the pixels nearer to this cell's centre than to any other (edges clamped).
            left = lo if c == 0 else centre - stride / 2 - 0.5
            right = width - 0.5 if c == cells - 1 else centre + stride / 2 - 0.5
            if right >= lo and left <= hi:
                ax.add_patch(Rectangle((max(left, lo), row + 0.02), min(right, hi) - max(left, lo), 0.3,
                                       facecolor=NEW_COLOURS[c % 2], edgecolor="white", linewidth=0.8))
                if lo <= centre <= hi:
                    ax.plot([centre], [row + 0.17], "o", color="#08306b", markersize=5, zorder=4)
            # Drawn before: the block footprint, stretched to the width (width / cells px per cell).
            block = width / cells
            old_left, old_right = c * block - 0.5, (c + 1) * block - 0.5
            if old_right >= lo and old_left <= hi:
                ax.add_patch(Rectangle((max(old_left, lo), row - 0.3), min(old_right, hi) - max(old_left, lo), 0.22,
                                       facecolor=OLD_COLOURS[c % 2], edgecolor="white", linewidth=0.8))
                old_centre = (old_left + old_right) / 2
                if lo <= old_centre <= hi:
                    ax.plot([old_centre], [row - 0.19], "|", color="#737373", markersize=7, zorder=4)
        label = f"{name}\nstride {stride:g}, field {g.receptive_field[1]:g}, offset {offset:g}"
        ax.text(lo - 1, row, label, ha="right", va="center", fontsize=9)
    shown_name, shown_column = SHOWN_FIELD
    for row, (name, g, _) in enumerate(levels, start=1):
        if name == shown_name and lo <= shown_column <= hi:
            cell = round((shown_column - g.offset[1]) / g.stride[1])
            _, left, _, right = g.box(0, cell)
            centre = g.offset[1] + cell * g.stride[1]
            ax.add_patch(Polygon([(centre - 0.5, row + 0.17), (centre + 0.5, row + 0.17), (right, 0.2), (left, 0.2)],
                                 closed=True, facecolor="#fd8d3c", alpha=0.18, edgecolor="#d94801", linewidth=1,
                                 zorder=0))
            ax.add_patch(Rectangle((centre - g.stride[1] / 2 - 0.5, row + 0.02), g.stride[1], 0.3, facecolor="none",
                                   edgecolor="#d94801", linewidth=2, zorder=5))
            ax.plot([left, left, right, right], [-0.3, -0.4, -0.4, -0.3], color="#d94801", linewidth=1.5)
            ax.text((left + right) / 2, -0.5, f"receptive field of {name}'s cell at x = {centre:g}: "
                    f"{g.receptive_field[1]:g} px, from {left:g} to {right:g}", ha="center", va="top",
                    fontsize=9, color="#a63603")
    ticks = [t for t in range(0, width, 16) if lo <= t <= hi]
    ax.set_xticks(ticks)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.85, len(levels) + 0.45)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("input column (pixel i is centred on i)")
    ax.set_title(title, fontsize=11)


def figure() -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.6))
    fig.subplots_adjust(left=0.135, right=0.99, wspace=0.45, top=0.8, bottom=0.12)
    draw_panel(axes[0], level_cells((224, 224)), 224, 0, "left edge of a 224 x 224 input")
    draw_panel(axes[1], level_cells((224, 337)), 337, 337 - PIXELS_SHOWN, "right edge of a 337 x 224 input")
    fig.suptitle("ResNet-50: where each level's cells are drawn on the input (one row of pixels)", fontsize=13)
    fig.text(0.5, 0.905,
             "blue, dot: now, each cell centred on its receptive field (offset + index x stride); every pixel "
             "shows the nearest cell\n"
             "grey, tick: before, each cell on its block footprint, stretched to the width: up to (stride - 1) / 2 "
             "px right of its field's centre",
             ha="center", va="center", fontsize=10)
    return fig


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "receptive_fields.png"
    fig = figure()
    atomic_write(target, lambda name: fig.savefig(name, format="png", dpi=100), what="figure")
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
