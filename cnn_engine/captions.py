"""Short texts that say what a picture of a volume shows: a level's caption, the predictions.

They are made from a volume's metadata (:meth:`ActivationVolume.metadata`, the ``cnn_metadata``
JSON that travels in VTK field data and netCDF files), so that any front end, and a caption in a
ParaView scene that follows its source, says the same thing.
"""

from __future__ import annotations

import textwrap
from typing import Any

#: Characters per line of the predictions caption (long notes are wrapped).
WRAP = 72


def level_caption(metadata: dict[str, Any], level: int) -> str:
    """Three lines for level ``level`` (negative counts from the end): its index and layer name,
    the channel shown (the most active one, ``rank0``) and the layer's own grid.

    Level 0 is the network input: its caption gives the input size in pixels instead.
    """
    levels = metadata.get("levels", [])
    if not levels:
        return ""
    index = level % len(levels)
    info = levels[index]
    if index == 0:
        height, width = metadata.get("provenance", {}).get("input_size", (0, 0))
        return f"level 0: {info['name']}\n{width} x {height} pixels"
    channels, rows, columns = info["native_shape"]
    top = next((c for c in info["channels"] if c >= 0), None)
    shown = f"channel {top} of {channels}" if top is not None else f"{channels} channels"
    return f"level {index}: {info['name']}\n{shown}\n{columns} x {rows} cells"


def predictions_caption(metadata: dict[str, Any]) -> str:
    """The model and weights that made the volume (with the offline stand-in note, and a warning
    for untrained weights), then the top predictions with their probabilities."""
    prov = metadata.get("provenance", {})
    if not prov:
        return ""
    mark = {False: "  (UNTRAINED: random weights)", None: "  (training unknown)"}.get(prov.get("trained", True), "")
    lines = [f"{prov.get('model', '?')}, weights {prov.get('weights', '?')}{mark}"]
    substitution = metadata.get("extra", {}).get("substitution")
    if substitution:
        lines += textwrap.wrap(substitution, WRAP)
    predictions = metadata.get("predictions", [])
    if predictions:
        lines.append(f"top-{len(predictions)} predictions:")
        lines += [f"  {p['rank']}. {p['label']}  {p['probability']:.2f}" for p in predictions]
    return "\n".join(lines)
