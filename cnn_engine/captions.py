"""Short texts that say what a picture of a volume shows: a level's caption, the predictions, the
image of a set.

They are made from a volume's metadata (:meth:`ActivationVolume.metadata`, the ``cnn_metadata``
JSON that travels in VTK field data and netCDF files), so that any front end, and a caption in a
ParaView scene that follows its source, says the same thing.
"""

from __future__ import annotations

import textwrap
from pathlib import PurePath
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


def image_caption(metadata: dict[str, Any], count: int | None = None, true_label: str | None = None) -> str:
    """One line naming the image of a set a volume was made from, e.g.
    ``3/25 cat_1.jpg  true: tabby  top-1: tabby 83%``.

    Its position in the set counted from 1 (time step 2 is image 3), out of ``count`` images
    when given; its file name; its true class: ``true_label`` (the class name, where the caller
    knows the model's classes), else the label the set gives (``true_label_name``: a folder name,
    a list file's label), left out when the set gives none; the top-1 prediction with its
    probability in percent.
    """
    prov = metadata.get("provenance", {})
    if not prov:
        return ""
    index = prov.get("set_index")
    position = "" if index is None else f"{index + 1}/{count} " if count else f"{index + 1} "
    parts = [position + PurePath(prov.get("image_path") or "?").name]
    truth = true_label or prov.get("true_label_name")
    if truth:
        parts.append(f"true: {truth}")
    predictions = metadata.get("predictions", [])
    if predictions:
        parts.append(f"top-1: {predictions[0]['label']} {predictions[0]['probability'] * 100:.0f}%")
    return "  ".join(parts)
