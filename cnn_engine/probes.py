"""Feature probes: which channel responds to which orientation, spatial frequency and colour.

:func:`probe_channels` shows the network synthetic stimuli, made on the fly (no files), through
the project's forward runner (each stimulus a PIL image fed like a photograph, so the model's own
normalisation applies), one batch at a time:

**gratings**
    achromatic sinusoidal gratings (grey 128 +- 127) filling the ``input_size`` x ``input_size``
    input, at :data:`ORIENTATIONS_DEG` x :data:`FREQUENCIES` x :data:`PHASES_DEG` (12 x 5 x 4 =
    240 images). The **orientation** is that of the stripes, in [0, 180) degrees: 0 = horizontal
    stripes (the luminance varies from top to bottom), 90 = vertical stripes; angles grow
    counter-clockwise as the picture is seen upright (image row 0 is the top), so 45 are stripes
    running from lower left to upper right (``/``). The **spatial frequency** is in cycles per
    pixel of the network input (0.1: a period of 10 pixels, 22.4 cycles across a 224-pixel
    input); the highest, 0.4, stays below the 0.5 Nyquist limit at every orientation. The
    **phase** shifts the stripes (0 = a bright stripe through the image centre).
**colour fields**
    uniform fields of one HSV colour, at :data:`HUES_DEG` x :data:`SATURATIONS` x :data:`VALUES`
    (12 x 2 x 2 = 48 images). Hue is the HSV hue in [0, 360): 0 red, 120 green, 240 blue.

**Response** of a channel to a stimulus: the spatial mean of ``ReLU(output - blank)`` over the
central part of its map, where ``blank`` is the channel's output, cell by cell, for the **blank**
stimulus (uniform grey 128, the gratings' mean luminance): what the stimulus adds to the
channel's activity, rectified. Why not the plain mean: a linear map's mean over a grating is
the same at every orientation (the stripes' modulation averages out to zero), so on a signed
level (a convolution before its normalisation, a residual sum), and on a rectified level whose
offset keeps it in its linear range (a trained stem after its batch norm), the plain mean of
``output``, and of ``ReLU(output)`` too, shows no orientation at all; the size of the modulation,
which the rectification of the difference turns into a mean, does (1/pi of a linear map's
modulation amplitude). Subtracting the blank also removes the channel's bias, which would
otherwise be a response to every stimulus; and the rectification keeps the sign that matters for
colour (a red-on channel responds to red, not to green). The border quarter of the map on every
side is left out: there the network's zero padding makes an edge of the frame, which would turn
a uniform field into a framed square. Grating responses are averaged over the phases
(:data:`PHASES_DEG`), so where only a cycle or two fits in the centre, the stripes' position
does not count. A channel that never exceeds its blank response is "unresponsive".

From these responses, per channel:

``grating_response`` (orientations, frequencies), ``colour_response`` (hues, saturations, values)
    the responses, phase-averaged for gratings.
``orientation_tuning``, ``frequency_tuning``
    the row and the column through the peak of ``grating_response``: the response by orientation
    at the channel's best frequency, and by frequency at its best (sampled) orientation.
``preferred_orientation_deg``, ``osi``
    from the orientation tuning ``r(theta)``: ``OSI = |sum r e^(2 i theta)| / sum r``, one minus
    the circular variance of orientation (Ringach, Shapley and Hawken 2002, "Orientation
    selectivity in macaque V1: diversity and laminar dependence", J. Neurosci. 22:5639). 0: the
    same response at every orientation; 1: a response at one orientation only. The preferred
    orientation is half the argument of ``sum r e^(2 i theta)``, in [0, 180) (a vector mean: it
    falls between the sampled orientations).
``preferred_frequency``
    the sampled frequency of the peak (cycles per pixel).
``hue_tuning``, ``preferred_hue_deg``, ``hsi``
    the response by hue at the saturation and value of the channel's strongest colour response
    (``best_saturation``, ``best_value``), and from it the same vector statistic on the hue
    circle: ``HSI = |sum r e^(i h)| / sum r``, the preferred hue the argument of
    ``sum r e^(i h)``, in [0, 360).
``label``
    ``"orientation 45 deg, OSI 0.71"`` when ``osi >= OSI_THRESHOLD``, ``"hue red, HSI 0.60"``
    when ``hsi >= HSI_THRESHOLD`` (the hue named by :data:`HUE_NAMES`, the nearest 30-degree
    step), both joined with ``"; "``; otherwise ``"unselective"``, or ``"unresponsive"`` when no
    stimulus takes the channel above its blank response.

A response below :data:`RELATIVE_FLOOR` times the channel's largest response counts as 0 (float
rounding leaves such residues where the exact response is 0). A channel whose grating (colour)
responses are all 0 has NaN orientation (hue) statistics.
Memory holds one batch of layer outputs plus the responses (4 bytes per channel and stimulus).
"""

from __future__ import annotations

import colorsys
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from .csv_table import write_csv
from .channel_netcdf import ChannelTable, Variable, check_channel, level_index, read_channel_table, write_channel_table
from .compute import Progress, _as_model, available_memory
from .errors import CnnEngineError
from .figures import check_png_path, new_figure, png_bytes, write_png
from .images import load_image
from .layers import LayerSelection, LevelSpec
from .models import CnnModel
from .preprocess import Preprocessing, network_input
from .runner import Item, default_batch_size, forward

#: Grating orientations (degrees of the stripes, counter-clockwise from horizontal).
ORIENTATIONS_DEG = tuple(15.0 * i for i in range(12))
#: Grating spatial frequencies, cycles per pixel of the network input (octave steps).
FREQUENCIES = (0.025, 0.05, 0.1, 0.2, 0.4)
#: Grating phases (degrees): four quarter-cycle shifts, averaged over.
PHASES_DEG = (0.0, 90.0, 180.0, 270.0)
#: Colour field hues (HSV hue, degrees).
HUES_DEG = tuple(30.0 * i for i in range(12))
#: The blank stimulus: uniform grey at the gratings' mean luminance.
BLANK_GREY = 128
#: Colour field HSV saturations and values (in [0, 1]).
SATURATIONS = (0.5, 1.0)
VALUES = (0.5, 1.0)
#: A channel is labelled with its orientation from this OSI on, and with its hue from this HSI on.
#: 0.3 is the index of the cosine tuning curve ``1 + 0.6 cos 2(theta - theta0)`` (``cos(h - h0)``
#: for hue: the index of ``1 + m cos`` is m / 2), whose peak is 4 times its trough: a clear
#: preference, not a bias of a few percent.
OSI_THRESHOLD = 0.3
HSI_THRESHOLD = 0.3
#: Names of the hues at 0, 30, ..., 330 degrees (the twelve-colour HSV wheel); a preferred hue is
#: named by the nearest.
HUE_NAMES = ("red", "orange", "yellow", "chartreuse", "green", "spring green", "cyan", "azure", "blue",
             "violet", "magenta", "rose")

#: A response below this fraction of the channel's largest response (over all stimuli) counts as
#: 0: the size of float32 rounding residues where the exact response is 0, times 100.
RELATIVE_FLOOR = 1e-4

_GRATINGS = len(ORIENTATIONS_DEG) * len(FREQUENCIES) * len(PHASES_DEG)
_FIELDS = len(HUES_DEG) * len(SATURATIONS) * len(VALUES)
#: Number of stimuli shown to the network: gratings, then colour fields.
STIMULI = _GRATINGS + _FIELDS


class _AllCaptured(Exception):
    """Raised by the sink once every level of a batch is captured: stops the forward pass there."""


class ChannelProbe(NamedTuple):
    """One (level, channel) of :meth:`ProbeResults.rows`; see the module docstring."""

    level: str
    channel: int
    preferred_orientation_deg: float
    osi: float
    preferred_frequency: float
    preferred_hue_deg: float
    hsi: float
    label: str


class ChannelTuning(NamedTuple):
    """The three tuning curves of one channel (:meth:`ProbeResults.tuning`), with their axes and
    the conditions they were taken at: orientation at ``at_frequency`` (cycles per pixel),
    frequency at ``at_orientation_deg``, hue at ``at_saturation`` and ``at_value`` (NaN, and the
    curve 0, where no stimulus of the kind takes the channel above its blank response)."""

    level: str
    channel: int
    orientations_deg: np.ndarray
    orientation: np.ndarray
    at_frequency: float
    frequencies: np.ndarray
    frequency: np.ndarray
    at_orientation_deg: float
    hues_deg: np.ndarray
    hue: np.ndarray
    at_saturation: float
    at_value: float


@dataclass
class ProbeResults:
    """Tuning of every channel of the probed levels (see the module docstring). Per-level lists
    hold one array per level, channels first."""

    model_name: str
    weights: str
    layers: str
    input_size: int
    levels: tuple[str, ...]
    channel_counts: tuple[int, ...]
    orientations_deg: np.ndarray
    frequencies: np.ndarray
    phases_deg: np.ndarray
    hues_deg: np.ndarray
    saturations: np.ndarray
    values: np.ndarray
    grating_response: list[np.ndarray]      # (channels, orientations, frequencies) float32
    colour_response: list[np.ndarray]       # (channels, hues, saturations, values) float32
    orientation_tuning: list[np.ndarray]    # (channels, orientations)
    frequency_tuning: list[np.ndarray]      # (channels, frequencies)
    hue_tuning: list[np.ndarray]            # (channels, hues)
    preferred_orientation_deg: list[np.ndarray]
    osi: list[np.ndarray]
    preferred_frequency: list[np.ndarray]
    best_orientation_deg: list[np.ndarray]  # the sampled orientation of the peak (frequency tuning's)
    preferred_hue_deg: list[np.ndarray]
    hsi: list[np.ndarray]
    best_saturation: list[np.ndarray]
    best_value: list[np.ndarray]
    label: list[np.ndarray]                 # (channels,) str

    def level_index(self, level: str | int) -> int:
        """The index of ``level`` (a name or an index); :class:`LayerError` otherwise."""
        return level_index(self.levels, level)

    def rows(self) -> list[ChannelProbe]:
        """One record per (level, channel), levels in network order, channels ascending."""
        rows = []
        for i, level in enumerate(self.levels):
            for c in range(self.channel_counts[i]):
                rows.append(ChannelProbe(level, c, float(self.preferred_orientation_deg[i][c]), float(self.osi[i][c]),
                                         float(self.preferred_frequency[i][c]), float(self.preferred_hue_deg[i][c]),
                                         float(self.hsi[i][c]), str(self.label[i][c])))
        return rows

    def tuning(self, level: str | int, channel: int) -> ChannelTuning:
        """The orientation, frequency and hue tuning curves of ``channel`` on ``level`` (a name
        or an index); :class:`LayerError` for a level or channel that does not exist."""
        i = self.level_index(level)
        c = check_channel(channel, self.channel_counts[i], self.levels[i])
        return ChannelTuning(
            self.levels[i], c, self.orientations_deg, self.orientation_tuning[i][c], float(self.preferred_frequency[i][c]),
            self.frequencies, self.frequency_tuning[i][c], float(self.best_orientation_deg[i][c]),
            self.hues_deg, self.hue_tuning[i][c], float(self.best_saturation[i][c]), float(self.best_value[i][c]))

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Write a CF netCDF-4 file (dimensions level, channel, orientation, frequency, phase, hue,
        saturation, hsv_value) that xarray opens and :func:`read_channel_probes` reads back."""
        return write_channel_table(path, _table(self))

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rows` as a CSV table: a header row, then one row per level and channel
        (NaN as an empty cell)."""
        return write_csv(path, ChannelProbe._fields, self.rows())

    def plot_tuning(self, level: str | int, channel: int, path: str | os.PathLike) -> Path:
        """Draw the three tuning curves of ``channel`` on ``level`` to the PNG file ``path``
        (matplotlib's Agg renderer, written atomically: :mod:`cnn_engine.figures`). Returns the path. Raises
        :class:`LayerError` for a level or channel that does not exist and :class:`OutputError`
        for a path not ending in ``.png``, an unwritable location or a missing matplotlib."""
        curves = self.tuning(level, channel)
        target = check_png_path(path, "the tuning curves", plural=True)
        i = self.level_index(level)
        png = _render_tuning(curves, f"{self.model_name} {curves.level} channel {curves.channel}: "
                                     f"{self.label[i][curves.channel]}")
        return write_png(target, png)


def probe_channels(model: CnnModel | nn.Module, layers: LayerSelection = "blocks", input_size: int = 224,
                   batch_size: int | None = None, progress: Progress | None = None) -> ProbeResults:
    """Show every stimulus of the probe set to ``model`` and work out each channel's tuning on
    the levels ``layers`` (as :func:`cnn_engine.compute_volume`: ``blocks``, ``convs``, ``all``
    or layer names). See the module docstring for the stimuli and the definitions.

    ``model``: a :class:`CnnModel` or a plain ``torch.nn.Module`` (ImageNet normalisation
    assumed). ``input_size``: the stimuli's side in pixels (16 to 1024). ``batch_size``: stimuli
    per batch (default: up to 16, fewer when memory is short). ``progress(done, total)`` counts
    stimuli. The network runs only up to the last level asked for. Raises
    :class:`CnnEngineError` for bad options and for a level whose output is not a (channels, rows,
    columns) map.
    """
    if isinstance(batch_size, bool) or (batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                                                    or batch_size < 1)):
        raise CnnEngineError(f"batch_size must be a whole number of at least 1 (or None: automatic), not {batch_size!r}")
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)):
        raise CnnEngineError(f"input_size must be a whole number of pixels (16 to 1024), not {input_size!r}")
    preprocessing = Preprocessing(fit="short-side", size=int(input_size))  # refuses sizes out of range
    model = _as_model(model)
    levels = model.levels(layers)
    size = preprocessing.size
    batch = int(batch_size or default_batch_size(model, levels, (size, size), 0, available_memory()))
    blank: list[torch.Tensor | None] = [None] * len(levels)
    responses: list[np.ndarray | None] = [None] * len(levels)
    batch_state = {"start": 0, "captured": set()}

    def check(index: int, output: torch.Tensor) -> None:
        if output.dim() != 4:
            raise CnnEngineError(f"layer {levels[index].name!r} gave a {tuple(output.shape)} output, not a spatial "
                                 "map: choose levels with (channels, rows, columns) outputs")

    def keep_blank(index: int, output: torch.Tensor) -> None:
        check(index, output)
        blank[index] = central(output).float().clone()  # the network may reuse the output's memory
        _done_with(batch_state, index, len(levels))

    def sink(index: int, output: torch.Tensor) -> None:
        check(index, output)
        values = central_response(output, blank[index]).cpu().numpy()  # (batch, channels)
        if responses[index] is None:
            responses[index] = np.empty((values.shape[1], STIMULI), dtype=np.float32)
        start = batch_state["start"]
        responses[index][:, start:start + values.shape[0]] = values.T
        _done_with(batch_state, index, len(levels))

    _forward(model, levels, [_item(-1, size, model)], keep_blank, batch_state)
    for start in range(0, STIMULI, batch):
        count = min(batch, STIMULI - start)
        batch_state["start"] = start
        _forward(model, levels, [_item(k, size, model) for k in range(start, start + count)], sink, batch_state)
        if progress is not None:
            progress(start + count, STIMULI)
    return _results(model, levels, layers, size, responses)


def central(output: torch.Tensor) -> torch.Tensor:
    """The central part of each map of ``output`` (batch, channels, rows, columns): a quarter of
    the rows and of the columns left out on every side (nothing of a side shorter than 4 cells)."""
    rows, cols = output.shape[2], output.shape[3]
    r, c = rows // 4, cols // 4
    return output[:, :, r:rows - r, c:cols - c]


def central_response(output: torch.Tensor, blank: torch.Tensor) -> torch.Tensor:
    """(batch, channels) float32: the spatial mean of ``ReLU(output - blank)`` over the
    :func:`central` part of each map; ``blank`` is the central part of the output for the blank
    (mid-grey) stimulus, (1, channels, rows, columns)."""
    difference = central(output).float() - blank
    return difference.clamp_(min=0).mean(dim=(2, 3))  # in place: one temporary of the batch's centre, not two


def _forward(model: CnnModel, levels: Sequence[LevelSpec], items: list[Item], sink: Any, state: dict) -> None:
    """One batch through the runner, stopped as soon as every level is captured."""
    state["captured"] = set()
    try:
        forward(model, levels, items, sink)
    except _AllCaptured:
        pass


def _done_with(state: dict, index: int, levels: int) -> None:
    state["captured"].add(index)
    if len(state["captured"]) == levels:
        raise _AllCaptured  # the rest of the network (up to the class scores) is not needed


def stimulus(index: int, size: int = 224) -> Image.Image:
    """Stimulus ``index`` of the probe set (0 ... STIMULI - 1) as a ``size`` x ``size`` RGB
    image: gratings first (orientation, then frequency, then phase vary slowest to fastest),
    then colour fields (hue, saturation, value); -1 is the blank, uniform mid-grey (128)."""
    if not -1 <= index < STIMULI:
        raise CnnEngineError(f"stimulus {index} does not exist: use 0 to {STIMULI - 1} (-1: the blank)")
    if index == -1:
        return Image.new("RGB", (size, size), (BLANK_GREY,) * 3)
    if index < _GRATINGS:
        o, rest = divmod(index, len(FREQUENCIES) * len(PHASES_DEG))
        f, p = divmod(rest, len(PHASES_DEG))
        return Image.fromarray(grating(ORIENTATIONS_DEG[o], FREQUENCIES[f], PHASES_DEG[p], size))
    h, rest = divmod(index - _GRATINGS, len(SATURATIONS) * len(VALUES))
    s, v = divmod(rest, len(VALUES))
    rgb = colorsys.hsv_to_rgb(HUES_DEG[h] / 360.0, SATURATIONS[s], VALUES[v])
    pixel = np.round(np.asarray(rgb) * 255.0).astype(np.uint8)
    return Image.fromarray(np.broadcast_to(pixel, (size, size, 3)).copy())


def grating(orientation_deg: float, frequency: float, phase_deg: float, size: int = 224) -> np.ndarray:
    """A (size, size, 3) uint8 achromatic sinusoidal grating, grey 128 +- 127 (the blank's grey
    on average), image order (row 0 = top). Stripes at ``orientation_deg`` counter-clockwise from horizontal
    as seen upright, ``frequency`` cycles per pixel, ``phase_deg`` 0 = bright through the centre."""
    theta = math.radians(orientation_deg)
    centre = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - centre            # rightwards
    y = centre - np.arange(size, dtype=np.float64)            # upwards: row 0 is the top
    # The luminance varies along the stripes' normal (-sin, cos): for 0 degrees, up and down.
    across = -math.sin(theta) * x[None, :] + math.cos(theta) * y[:, None]
    modulation = np.cos(2.0 * math.pi * frequency * across + math.radians(phase_deg))
    grey = np.round(BLANK_GREY + 127.0 * modulation).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def hue_name(hue_deg: float) -> str:
    """The name (:data:`HUE_NAMES`) of the 30-degree step nearest to ``hue_deg``."""
    return HUE_NAMES[int(math.floor((hue_deg % 360.0) / 30.0 + 0.5)) % len(HUE_NAMES)]


def vector_selectivity(responses: np.ndarray, angles_deg: Sequence[float], period: float) -> tuple[np.ndarray, np.ndarray]:
    """(preference, index) of tuning curves ``responses`` (channels, angles) on a circle of
    ``period`` degrees (180 for orientation, 360 for hue): the vector mean
    ``z = sum r e^(i 2 pi a / period)``; index ``|z| / sum r``, preference ``arg z`` mapped back
    to [0, period). NaN for a channel whose responses sum to 0."""
    r = np.asarray(responses, dtype=np.float64)
    phase = np.exp(1j * 2.0 * np.pi * np.asarray(angles_deg, dtype=np.float64) / period)
    total = r.sum(axis=1)
    z = r @ phase
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(total > 0, np.abs(z) / np.where(total > 0, total, 1.0), np.nan)
    preference = np.mod(np.angle(z) * period / (2.0 * np.pi), period)
    preference[preference >= period] = 0.0  # mod of a tiny negative angle rounds up to the period
    preference = np.where(total > 0, preference, np.nan)
    return preference, index


def channel_label(orientation_deg: float, osi: float, hue_deg: float, hsi: float) -> str:
    """The short label of a channel (see the module docstring)."""
    parts = []
    if osi >= OSI_THRESHOLD:  # NaN compares False
        parts.append(f"orientation {int(round(orientation_deg)) % 180} deg, OSI {osi:.2f}")
    if hsi >= HSI_THRESHOLD:
        parts.append(f"hue {hue_name(hue_deg)}, HSI {hsi:.2f}")
    if parts:
        return "; ".join(parts)
    return "unresponsive" if math.isnan(osi) and math.isnan(hsi) else "unselective"


def read_channel_probes(path: str | os.PathLike) -> ProbeResults:
    """Read a file written by :meth:`ProbeResults.to_netcdf`; :class:`FormatError` for any other file."""
    table = read_channel_table(path, "channel_probes")
    v = table.variables
    meta = table.metadata

    def per_level(name: str, dtype: Any = None) -> list[np.ndarray]:
        return [np.asarray(a, dtype=dtype) for a in v[name].values]

    return ProbeResults(
        model_name=meta["model"], weights=meta["weights"], layers=meta["layers"], input_size=int(meta["input_size"]),
        levels=table.levels, channel_counts=table.channel_counts,
        orientations_deg=np.asarray(v["orientation"].values), frequencies=np.asarray(v["frequency"].values),
        phases_deg=np.asarray(v["phase"].values), hues_deg=np.asarray(v["hue"].values),
        saturations=np.asarray(v["saturation"].values), values=np.asarray(v["hsv_value"].values),
        grating_response=per_level("grating_response"), colour_response=per_level("colour_response"),
        orientation_tuning=per_level("orientation_tuning"), frequency_tuning=per_level("frequency_tuning"),
        hue_tuning=per_level("hue_tuning"), preferred_orientation_deg=per_level("preferred_orientation"),
        osi=per_level("osi"), preferred_frequency=per_level("preferred_frequency"),
        best_orientation_deg=per_level("best_orientation"), preferred_hue_deg=per_level("preferred_hue"),
        hsi=per_level("hsi"), best_saturation=per_level("best_saturation"), best_value=per_level("best_value"),
        label=per_level("label", object),
    )


# --- from responses to tuning --------------------------------------------------------------------


def _item(index: int, size: int, model: CnnModel) -> Item:
    loaded = load_image(stimulus(index, size))
    return Item(index, None, None, loaded, network_input(loaded.image, Preprocessing(size=size), model.mean, model.std))


def _results(model: CnnModel, levels: Sequence[LevelSpec], layers: LayerSelection, size: int,
             responses: list[np.ndarray]) -> ProbeResults:
    o, f, p = len(ORIENTATIONS_DEG), len(FREQUENCIES), len(PHASES_DEG)
    h, s, v = len(HUES_DEG), len(SATURATIONS), len(VALUES)
    fields: dict[str, list[np.ndarray]] = {name: [] for name in (
        "grating_response", "colour_response", "orientation_tuning", "frequency_tuning", "hue_tuning",
        "preferred_orientation_deg", "osi", "preferred_frequency", "best_orientation_deg", "preferred_hue_deg", "hsi",
        "best_saturation", "best_value", "label")}
    for values in responses:
        channels = values.shape[0]
        # Float32 rounding leaves residues of about 1e-6 of a channel's signal where the exact
        # response is 0 (a luminance filter on a uniform field): below the floor, a response is 0.
        values = np.where(values >= RELATIVE_FLOOR * values.max(axis=1, keepdims=True), values, 0).astype(np.float32)
        rows = np.arange(channels)
        gratings = values[:, :_GRATINGS].reshape(channels, o, f, p).mean(axis=3, dtype=np.float64).astype(np.float32)
        colours = np.ascontiguousarray(values[:, _GRATINGS:].reshape(channels, h, s, v))
        peak = gratings.reshape(channels, -1).argmax(axis=1)  # the first on a tie
        best_o, best_f = np.divmod(peak, f)
        orientation = gratings[rows, :, best_f]
        frequency = gratings[rows, best_o, :]
        responsive = gratings.reshape(channels, -1).max(axis=1) > 0
        preferred_orientation, osi = vector_selectivity(orientation, ORIENTATIONS_DEG, 180.0)
        colour_peak = colours.reshape(channels, h, s * v).max(axis=1).argmax(axis=1)
        best_s, best_v = np.divmod(colour_peak, v)
        hue = colours[rows, :, best_s, best_v]
        coloured = colours.reshape(channels, -1).max(axis=1) > 0
        preferred_hue, hsi = vector_selectivity(hue, HUES_DEG, 360.0)
        fields["grating_response"].append(gratings)
        fields["colour_response"].append(colours)
        fields["orientation_tuning"].append(orientation)
        fields["frequency_tuning"].append(frequency)
        fields["hue_tuning"].append(hue)
        fields["preferred_orientation_deg"].append(preferred_orientation)
        fields["osi"].append(osi)
        fields["preferred_frequency"].append(np.where(responsive, np.asarray(FREQUENCIES)[best_f], np.nan))
        fields["best_orientation_deg"].append(np.where(responsive, np.asarray(ORIENTATIONS_DEG)[best_o], np.nan))
        fields["preferred_hue_deg"].append(preferred_hue)
        fields["hsi"].append(hsi)
        fields["best_saturation"].append(np.where(coloured, np.asarray(SATURATIONS)[best_s], np.nan))
        fields["best_value"].append(np.where(coloured, np.asarray(VALUES)[best_v], np.nan))
        fields["label"].append(np.array([channel_label(*args) for args in zip(preferred_orientation, osi,
                                                                               preferred_hue, hsi)], dtype=object))
    return ProbeResults(
        model_name=model.name, weights=model.weights, layers=layers if isinstance(layers, str) else ",".join(layers),
        input_size=size, levels=tuple(level.name for level in levels),
        channel_counts=tuple(int(r.shape[0]) for r in responses),
        orientations_deg=np.asarray(ORIENTATIONS_DEG), frequencies=np.asarray(FREQUENCIES),
        phases_deg=np.asarray(PHASES_DEG), hues_deg=np.asarray(HUES_DEG), saturations=np.asarray(SATURATIONS),
        values=np.asarray(VALUES), **fields)


def _table(probes: ProbeResults) -> ChannelTable:
    def per_channel(values: list[np.ndarray], long_name: str, units: str, kind: str = "f8", *extra: str) -> Variable:
        return Variable(("level", "channel") + extra, values, kind, {"long_name": long_name, "units": units})

    def axis(values: np.ndarray, dim: str, long_name: str, units: str) -> Variable:
        return Variable((dim,), np.asarray(values, dtype=np.float64), "f8", {"long_name": long_name, "units": units})

    response = ("mean rectified response above the blank: spatial mean of ReLU(output - output for uniform grey 128) "
                "over the central half of the map")
    variables = {
        "orientation": axis(probes.orientations_deg, "orientation", "grating stripe orientation, counter-clockwise "
                            "from horizontal as seen upright", "degree"),
        "frequency": axis(probes.frequencies, "frequency", "grating spatial frequency", "cycles per pixel"),
        "phase": axis(probes.phases_deg, "phase", "grating phase (0: bright stripe through the centre)", "degree"),
        "hue": axis(probes.hues_deg, "hue", "HSV hue of the colour field", "degree"),
        "saturation": axis(probes.saturations, "saturation", "HSV saturation of the colour field", "1"),
        "hsv_value": axis(probes.values, "hsv_value", "HSV value of the colour field", "1"),
        "grating_response": per_channel(probes.grating_response, response + ", averaged over phases", "1", "f4",
                                        "orientation", "frequency"),
        "colour_response": per_channel(probes.colour_response, response, "1", "f4", "hue", "saturation", "hsv_value"),
        "orientation_tuning": per_channel(probes.orientation_tuning, "response by orientation at the best frequency",
                                          "1", "f4", "orientation"),
        "frequency_tuning": per_channel(probes.frequency_tuning, "response by frequency at the best sampled orientation",
                                        "1", "f4", "frequency"),
        "hue_tuning": per_channel(probes.hue_tuning, "response by hue at the best saturation and value", "1", "f4",
                                  "hue"),
        "preferred_orientation": per_channel(probes.preferred_orientation_deg, "preferred stripe orientation "
                                             "(half the argument of sum r exp(2 i theta))", "degree"),
        "osi": per_channel(probes.osi, "orientation selectivity index |sum r exp(2 i theta)| / sum r "
                                       "(1 - circular variance, Ringach et al. 2002)", "1"),
        "preferred_frequency": per_channel(probes.preferred_frequency, "spatial frequency of the peak response",
                                           "cycles per pixel"),
        "best_orientation": per_channel(probes.best_orientation_deg, "sampled orientation of the peak response",
                                        "degree"),
        "preferred_hue": per_channel(probes.preferred_hue_deg, "preferred HSV hue (argument of sum r exp(i h))",
                                     "degree"),
        "hsi": per_channel(probes.hsi, "hue selectivity index |sum r exp(i h)| / sum r", "1"),
        "best_saturation": per_channel(probes.best_saturation, "saturation of the hue tuning", "1"),
        "best_value": per_channel(probes.best_value, "HSV value of the hue tuning", "1"),
        "label": Variable(("level", "channel"), probes.label, "text", {"long_name": "short description of the tuning"}),
    }
    dimensions = {"orientation": len(probes.orientations_deg), "frequency": len(probes.frequencies),
                  "phase": len(probes.phases_deg), "hue": len(probes.hues_deg),
                  "saturation": len(probes.saturations), "hsv_value": len(probes.values)}
    metadata = {"model": probes.model_name, "weights": probes.weights, "layers": probes.layers,
                "input_size": probes.input_size, "osi_threshold": OSI_THRESHOLD, "hsi_threshold": HSI_THRESHOLD,
                "response": response}
    return ChannelTable("channel_probes", probes.levels, probes.channel_counts, variables, dimensions, metadata)


def _render_tuning(curves: ChannelTuning, title: str) -> bytes:
    figure = new_figure((12.0, 3.8), 100, "the tuning curves")  # 1200 x 380 pixels
    figure.suptitle(title)
    ylabel = "mean response above the blank"
    silent = "none above the blank"
    axes = figure.add_subplot(1, 3, 1)
    axes.plot(curves.orientations_deg, curves.orientation, "o-", color="#333333")
    axes.set_title(f"orientation, at {curves.at_frequency:g} cycles/pixel" if curves.at_frequency == curves.at_frequency
                   else f"orientation: {silent}")
    axes.set_xlabel("stripe orientation (degrees, 0 = horizontal, counter-clockwise)")
    axes.set_ylabel(ylabel)
    axes.set_xticks(np.arange(0, 181, 30))
    axes.set_xlim(-5, 180)
    axes = figure.add_subplot(1, 3, 2)
    axes.plot(curves.frequencies, curves.frequency, "o-", color="#1976d2")
    axes.set_xscale("log")
    axes.set_xticks(curves.frequencies, [f"{f:g}" for f in curves.frequencies])
    axes.minorticks_off()
    axes.set_title(f"spatial frequency, at {curves.at_orientation_deg:g} degrees"
                   if curves.at_orientation_deg == curves.at_orientation_deg else f"spatial frequency: {silent}")
    axes.set_xlabel("spatial frequency (cycles per pixel)")
    axes.set_ylabel(ylabel)
    axes = figure.add_subplot(1, 3, 3)
    colours = [colorsys.hsv_to_rgb(h / 360.0, 1.0, 1.0) for h in curves.hues_deg]
    axes.bar(curves.hues_deg, curves.hue, width=24.0, color=colours, edgecolor="#333333")
    axes.set_title(f"hue, at saturation {curves.at_saturation:g}, value {curves.at_value:g}"
                   if curves.at_value == curves.at_value else f"hue: {silent}")
    axes.set_xlabel("HSV hue (degrees)")
    axes.set_ylabel(ylabel)
    axes.set_xticks(np.arange(0, 361, 60))
    for axes in figure.axes:
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return png_bytes(figure)
