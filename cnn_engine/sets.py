"""Image sets: one channel choice and one value scale across a set, and one volume per image.

Comparing images needs two things per level: the same channels (rank r is the same channel for
every image) and the same colour scale. Both are properties of the whole set, so they take a
first pass over it (:func:`scan_set`: the network runs, only statistics are kept) before the
volumes are made (:func:`compute_volumes`). Channel choices (``channels=``):

``per-image``
    each image its own top-k by ``rank_by`` (as :func:`cnn_engine.compute_volume`);
``set``
    the top-k of the level by the set statistic: the mean over the set's images of each
    channel's ``rank_by`` score (``mean``, ``max`` or ``l2`` of its map);
explicit (``{level name: [channel, ...]}``, or the text ``"layer4.2:12,40;layer3.5:7"``)
    exactly those channels; the volume's levels are the listed levels.

Normalisation ``set`` scales each level of each volume by that level's range over the set:
the minimum and maximum, over every image, of the values of the channels the level shows (for
``per-image`` channels, of each image's own top-k), taken on the layer outputs before they are
drawn (drawn values lie within it). A colour then means the same value at every image.

The first pass is cached in memory (the last :data:`SCAN_CACHE_SIZE` scans, keyed by the
model, the files of the set with their sizes and modification times, and the options that
decide it) and can be passed on explicitly (``scan=``); its cost shows in ``progress``.
"""

from __future__ import annotations

import os
import warnings
import weakref
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .builder import VolumeBuilder
from .compute import (
    Progress, _as_model, _check_memory, _check_top_k, _top_predictions, assemble_volume, available_memory,
    check_options, compute_volume, creation_time, default_level_spacing, explicit_levels,
)
from .errors import CnnEngineError
from .layers import LayerSelection, LevelSpec
from .models import CnnModel
from .normalize import normalize, parse_normalization, scale_levels
from .options import CHANNEL_CHOICES, CLASS_RANKINGS, SET_NORMALIZATIONS
from .preprocess import Preprocessing
from .ranking import channel_scores, top_channels
from .runner import OnError, decoded_batches, default_batch_size, forward
from .volume import ActivationVolume

#: How many first passes are kept in memory.
SCAN_CACHE_SIZE = 4

#: What ``images=`` accepts: a folder, a list file, a glob pattern, a list of paths, an ImageSet.
Images = Any
#: What ``channels=`` accepts.
Channels = str | Mapping[str, Sequence[int]]


@dataclass(frozen=True)
class SetScan:
    """What a first pass over a set found (see the module docstring).

    ``channels`` maps each level name to its channel indices, best first, for ``set`` and
    explicit choices (None for ``per-image``), with ``scores`` their set statistics (NaN for
    explicit channels); ``ranges`` maps each level name to (min, max) of the shown channels'
    values over the set (raw activations). ``count`` images were scanned; ``failures`` lists
    (path, message) of those that could not be read. ``choice`` is ``per-image``, ``set`` or
    ``explicit``.
    """

    choice: str
    rank_by: str
    top_k: int
    channels: dict[str, tuple[int, ...]] | None
    scores: dict[str, tuple[float, ...]] | None
    ranges: dict[str, tuple[float, float]]
    count: int
    failures: tuple[tuple[str, str], ...]
    key: tuple = ()


def parse_channel_list(text: str) -> dict[str, tuple[int, ...]]:
    """Explicit channels from text: ``"layer4.2:12,40;layer3.5:7"`` gives
    ``{"layer4.2": (12, 40), "layer3.5": (7,)}`` (levels separated by ``;``, channel indices by
    ``,``; spaces ignored)."""
    channels: dict[str, tuple[int, ...]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        level, colon, indices = part.rpartition(":")
        try:
            values = tuple(int(v) for v in indices.split(",") if v.strip())
        except ValueError:
            values = ()
        if not colon or not level.strip() or not values or any(v < 0 for v in values):
            raise CnnEngineError(f"channel list entry {part!r} is not LEVEL:CHANNEL[,CHANNEL...] with channel "
                                 "indices from 0, e.g. 'layer4.2:12,40;layer3.5:7'")
        if level.strip() in channels:
            raise CnnEngineError(f"level {level.strip()!r} is listed twice in the channel list {text!r}")
        channels[level.strip()] = values
    if not channels:
        raise CnnEngineError(f"the channel list {text!r} names no level: write LEVEL:CHANNEL[,CHANNEL...], "
                             "e.g. 'layer4.2:12,40;layer3.5:7'")
    return channels


def image_set(images: Images, model: CnnModel | None = None):
    """``images`` as an :class:`cnn_engine.ImageSet`, labels resolved against the model's classes."""
    from .imageset import ImageSet

    if isinstance(images, ImageSet):
        return images
    categories = model.categories if model is not None and model.categories else None
    return ImageSet(images, categories=categories)


def scan_set(model: CnnModel | nn.Module, images: Images, layers: LayerSelection = "blocks", top_k: int = 4,
             rank_by: str = "mean", channels: Channels = "set", input_size: int = 224, fit: str = "short-side",
             max_side: int = 1024, batch_size: int | None = None, progress: Progress | None = None,
             on_error: OnError | None = None) -> SetScan:
    """The first pass over a set: set-wide channels and per-level ranges (see the module docstring).

    ``progress(done, total)`` counts images. Raises :class:`CnnEngineError` when no image of the
    set can be read; unreadable images are reported through ``on_error`` (default: a warning).
    """
    model = _as_model(model)
    images = image_set(images, model)
    choice, explicit = _choice(channels)
    levels, top_k = _levels(model, layers, top_k, explicit)
    _check_options(rank_by, top_k, choice)
    preprocessing = Preprocessing(fit=fit, size=input_size, max_side=max_side)
    key = _scan_key(model, images, layers, top_k, rank_by, choice, explicit, preprocessing)
    cached = _cached_scan(model, key)
    if cached is not None:
        if progress is not None:
            progress(len(images), len(images))
        return cached
    failures: list[tuple[str, str]] = []
    report = _reporter(on_error, failures)
    stats = _SetStatistics(levels, top_k, rank_by, choice, explicit)
    done = 0
    positions = list(range(len(images)))
    size = _first_size(images, preprocessing)
    batch = batch_size or default_batch_size(model, levels, size, top_k, available_memory())
    for items in decoded_batches(images, positions, preprocessing, model, batch, report):
        forward(model, levels, items, stats.add)
        stats.count += len(items)
        done += len(items)
        if progress is not None:
            progress(done + len(failures), len(images))
    if stats.count == 0:
        raise CnnEngineError(f"no image of the set could be read ({len(failures)} tried): "
                             + (failures[0][1] if failures else "the set is empty"))
    scan = stats.result(tuple(failures), key)
    _remember_scan(model, key, scan)
    return scan


def compute_volumes(model: CnnModel | nn.Module, images: Images, layers: LayerSelection = "blocks", top_k: int = 4,
                    rank_by: str = "mean", channels: Channels = "per-image", normalization: str = "none",
                    input_size: int = 224, fit: str = "short-side", interpolation: str = "nearest",
                    level_spacing: float | None = None, evidence=None, target=None, batch_size: int | None = None,
                    progress: Progress | None = None, on_error: OnError | None = None, scan: SetScan | None = None,
                    indices: Sequence[int] | None = None, max_side: int = 1024) -> Iterator[ActivationVolume]:
    """One activation volume per image of a set, in set order (or in ``indices`` order).

    ``images``: a folder (recursive; subfolders name the classes), a list file (.csv/.txt,
    ``path[,label]``), a glob pattern, a list of paths or an :class:`cnn_engine.ImageSet`.
    Options as :func:`cnn_engine.compute_volume`, plus ``channels`` (``per-image``, ``set`` or
    explicit, see the module docstring) and ``normalization`` (one of
    :data:`cnn_engine.NORMALIZATIONS`, applied to each volume, or ``set``; default ``none``: raw
    activations). ``set`` channels or normalisation run :func:`scan_set` first (or take
    ``scan``). Each volume's provenance names its image, its position in the set and its true
    label (None when unknown).

    Images run through the network in batches of ``batch_size`` (default: up to 16, fewer when
    memory is short), decoded one batch ahead on a worker thread; memory holds one batch,
    whatever the size of the set. Class rankings (``effect``, ``ablation``) and evidence maps
    need gradients or extra passes per image and run image by image. An image that cannot be
    read is reported through ``on_error(path, error)`` (default: a warning) and skipped.
    ``progress(done, total)`` counts images on one scale over both passes (the first pass, when
    there is one, is the first half).
    """
    created = creation_time()
    model = _as_model(model)
    images = image_set(images, model)
    choice, explicit = _choice(channels)
    normalization = _normalization(normalization)
    levels, top_k = _levels(model, layers, top_k, explicit)
    _check_options(rank_by, top_k, choice, interpolation)
    positions = _positions(indices, len(images))
    needs_scan = choice == "set" or normalization == "set"
    total = len(positions) + (len(images) if needs_scan and scan is None else 0)
    if needs_scan and scan is None:
        scan = scan_set(model, images, layers, top_k, rank_by, explicit or choice, input_size, fit, max_side,
                        batch_size, progress, on_error)
    first = len(images) if needs_scan and total > len(positions) else 0
    if needs_scan:
        _check_scan(scan, choice, rank_by, top_k)
    given = scan.channels if choice == "set" else explicit
    preprocessing = Preprocessing(fit=fit, size=input_size, max_side=max_side)
    failures: list[tuple[str, str]] = []
    # An image the first pass could not read is not reported a second time.
    report = _reporter(on_error, failures, {path for path, _ in scan.failures} if scan is not None else set())
    done = 0

    def finish(volume: ActivationVolume) -> ActivationVolume:
        nonlocal done
        done += 1
        if scan is not None and scan.scores is not None and choice == "set":
            volume = _with_set_scores(volume, scan)
        if normalization == "set":
            volume = scaled_to_set(volume, scan)
        elif normalization != "none":
            volume = volume.normalized(normalization)
        if progress is not None:
            progress(first + done + len(failures), total)
        return volume

    settings_layers = layers if isinstance(layers, str) or explicit is None else [level.name for level in levels]
    if rank_by in CLASS_RANKINGS or evidence is not None:
        for position in positions:
            path = str(images.paths[position])
            try:
                volume = compute_volume(model, path, layers=settings_layers, top_k=top_k, rank_by=rank_by,
                                        input_size=input_size, fit=fit, interpolation=interpolation,
                                        level_spacing=level_spacing, max_side=max_side, evidence=evidence,
                                        target=target, channels=given)
            except CnnEngineError as exc:
                report(path, exc)
                continue
            provenance = replace(volume.provenance, layers=_layers_text(layers, levels), set_index=position,
                                 true_label=images.labels[position], true_label_name=images.label_names[position])
            yield finish(replace(volume, provenance=provenance))
        return

    per_level = [given.get(level.name) for level in levels] if given else None
    size = _first_size(images, preprocessing)
    batch = batch_size or default_batch_size(model, levels, size, top_k, available_memory())
    for items in decoded_batches(images, positions, preprocessing, model, batch, report):
        height, width = items[0].size
        _check_memory((top_k * len(items), len(levels), height, width))
        builders = [VolumeBuilder(model, levels, top_k, rank_by, interpolation, (height, width), per_level)
                    for _ in items]

        def sink(index: int, output: torch.Tensor) -> None:
            if output.dim() != 4:
                raise CnnEngineError(f"layer {levels[index].name!r} gave a {tuple(output.shape)} output, "
                                     "not a spatial map")
            for builder, maps in zip(builders, output):
                builder.add(index, maps)

        logits = forward(model, levels, items, sink)
        spacing = level_spacing if level_spacing is not None else default_level_spacing(height, width, len(levels))
        if not spacing > 0:
            raise CnnEngineError(f"level spacing must be positive, not {spacing}")
        for row, (item, builder) in enumerate(zip(items, builders)):
            predictions = _top_predictions(model, logits[row:row + 1])
            volume = assemble_volume(model, builder, builder.arrays(), predictions, item.loaded, preprocessing,
                                     item.net_in.rgb, _layers_text(layers, levels), spacing, created,
                                     set_index=item.position, true_label=item.label, true_label_name=item.label_name)
            yield finish(volume)
        del builders


def scaled_to_set(volume: ActivationVolume, scan: SetScan) -> ActivationVolume:
    """``volume`` with each level of its rank arrays mapped from the set's range for that level
    (``scan.ranges``) to [0, 1]; a ``layercam`` array is scaled per level by its own range."""
    if volume.normalization != "none":
        raise CnnEngineError(f"this volume is already normalised ({volume.normalization}); scale the raw one")
    missing = [name for name in volume.level_names if name not in scan.ranges]
    if missing:
        raise CnnEngineError(f"the set scan has no range for level {missing[0]!r}: scan the set with the same layers")
    low = np.array([scan.ranges[name][0] for name in volume.level_names])
    high = np.array([scan.ranges[name][1] for name in volume.level_names])
    arrays = {name: (scale_levels(values, low, high) if name.startswith("rank") else
                     normalize(values, "per-level-minmax") if name == "layercam" else values)
              for name, values in volume.arrays.items()}
    return replace(volume, arrays=arrays, normalization="set")


# --- the first pass ---------------------------------------------------------------------------


class _SetStatistics:
    """Running per-level statistics of a set, fed one batch of layer outputs at a time."""

    def __init__(self, levels: Sequence[LevelSpec], top_k: int, rank_by: str, choice: str,
                 explicit: Mapping[str, tuple[int, ...]] | None) -> None:
        self.levels = list(levels)
        self.top_k = top_k
        self.rank_by = rank_by
        self.choice = choice
        self.explicit = explicit
        self.count = 0
        count = len(self.levels)
        self.score_sums: list[torch.Tensor | None] = [None] * count  # (channels,) float64
        self.lows: list[torch.Tensor | None] = [None] * count  # (channels,) per channel over the set
        self.highs: list[torch.Tensor | None] = [None] * count
        self.shown = [[float("inf"), float("-inf")] for _ in range(count)]  # per-image choice: shown range

    def add(self, index: int, output: torch.Tensor) -> None:
        if output.dim() != 4:
            raise CnnEngineError(f"layer {self.levels[index].name!r} gave a {tuple(output.shape)} output, "
                                 "not a spatial map")
        flat = output.detach().flatten(2)
        lows, highs = flat.amin(2).float(), flat.amax(2).float()  # (batch, channels)
        self.lows[index] = _fold(self.lows[index], lows.amin(0), torch.minimum)
        self.highs[index] = _fold(self.highs[index], highs.amax(0), torch.maximum)
        if self.choice == "set":
            scores = torch.stack([channel_scores(maps, self.rank_by) for maps in output]).double().sum(0)
            self.score_sums[index] = scores if self.score_sums[index] is None else self.score_sums[index] + scores
        elif self.choice == "per-image":
            shown = self.shown[index]
            for row, maps in enumerate(output):
                channels, _ = top_channels(maps, self.top_k, self.rank_by)
                shown[0] = min(shown[0], float(lows[row, channels].min()))
                shown[1] = max(shown[1], float(highs[row, channels].max()))

    def result(self, failures: tuple[tuple[str, str], ...], key: tuple) -> SetScan:
        channels: dict[str, tuple[int, ...]] | None = None
        scores: dict[str, tuple[float, ...]] | None = None
        ranges: dict[str, tuple[float, float]] = {}
        if self.choice != "per-image":
            channels, scores = {}, {}
        for index, level in enumerate(self.levels):
            if self.choice == "set":
                mean_scores = (self.score_sums[index] / self.count).float()
                ordered, order = torch.sort(mean_scores, descending=True, stable=True)  # ties: lower index first
                chosen = order[: self.top_k]
                channels[level.name] = tuple(int(c) for c in chosen)
                scores[level.name] = tuple(float(s) for s in ordered[: self.top_k])
            elif self.choice == "explicit":
                chosen = torch.tensor(self.explicit[level.name], dtype=torch.int64)
                if int(chosen.max()) >= self.lows[index].numel():
                    raise CnnEngineError(f"channel {int(chosen.max())} does not exist on level {level.name!r}, "
                                         f"which has channels 0 to {self.lows[index].numel() - 1}")
                channels[level.name] = tuple(int(c) for c in chosen)
                scores[level.name] = (float("nan"),) * len(chosen)
            if self.choice == "per-image":
                ranges[level.name] = (self.shown[index][0], self.shown[index][1])
            else:
                ranges[level.name] = (float(self.lows[index][chosen].min()), float(self.highs[index][chosen].max()))
        return SetScan(self.choice, self.rank_by, self.top_k, channels, scores, ranges, self.count, failures, key)


def _fold(current: torch.Tensor | None, new: torch.Tensor, combine) -> torch.Tensor:
    return new.clone() if current is None else combine(current, new)


# --- options and helpers ------------------------------------------------------------------------


def _choice(channels: Channels) -> tuple[str, dict[str, tuple[int, ...]] | None]:
    """(``per-image`` | ``set`` | ``explicit``, the explicit channels or None)."""
    if isinstance(channels, Mapping):
        return "explicit", {str(k): tuple(int(c) for c in v) for k, v in channels.items()}
    if isinstance(channels, str):
        if ":" in channels:
            return "explicit", parse_channel_list(channels)
        if channels == "explicit":
            raise CnnEngineError("channels 'explicit' needs the channels: give {level: [channel, ...]} or the text "
                                 "'LEVEL:C,C;LEVEL:C' (--channel-list)")
        if channels in CHANNEL_CHOICES:
            return channels, None
    raise CnnEngineError(f"unknown channel choice {channels!r}: use one of {', '.join(CHANNEL_CHOICES)}")


def _normalization(name: str) -> str:
    if name == "set":
        return name
    try:
        return parse_normalization(name)
    except CnnEngineError:
        raise CnnEngineError(f"unknown normalization {name!r}: use one of {', '.join(SET_NORMALIZATIONS)}") from None


def _levels(model: CnnModel, layers: LayerSelection, top_k: int,
            explicit: Mapping[str, tuple[int, ...]] | None) -> tuple[list[LevelSpec], int]:
    if explicit is not None:
        levels, _, top_k = explicit_levels(model, explicit)
        return levels, top_k
    levels = model.levels(layers)
    _check_top_k(model, levels, top_k)
    return levels, top_k


def _check_options(rank_by: str, top_k: int, choice: str, interpolation: str = "nearest") -> None:
    check_options(top_k, rank_by, interpolation)
    if choice == "set" and rank_by in CLASS_RANKINGS:
        raise CnnEngineError(f"channels 'set' ranks by the set's mean of a channel's map statistic (mean, max or "
                             f"l2), not by {rank_by}, which is made for one image's class: use rank_by mean, max "
                             "or l2 with channels 'set', or channels 'per-image'")


def _check_scan(scan: SetScan, choice: str, rank_by: str, top_k: int) -> None:
    if choice == "set" and (scan.choice != "set" or scan.rank_by != rank_by or scan.top_k < top_k):
        raise CnnEngineError(f"the given scan chose {scan.choice} channels by {scan.rank_by} (top {scan.top_k}), "
                             f"not set channels by {rank_by} (top {top_k}): scan again with these options")


def _positions(indices: Sequence[int] | None, count: int) -> list[int]:
    if count == 0:
        raise CnnEngineError("the image set is empty")
    if indices is None:
        return list(range(count))
    positions = [int(i) for i in indices]
    bad = [i for i in positions if not 0 <= i < count]
    if bad:
        raise CnnEngineError(f"image index {bad[0]} is outside the set of {count} images (0 to {count - 1})")
    return positions


def _first_size(images, preprocessing: Preprocessing) -> tuple[int, int]:
    """The input grid (height, width) of the set's first readable image header (for the batch
    size); the reference size when none can be read."""
    from .preprocess import input_grid

    for path in images.paths[:8]:
        try:
            width, height = input_grid(str(path), preprocessing)
            return height, width
        except CnnEngineError:
            continue
    return preprocessing.size, preprocessing.size


def _layers_text(layers: LayerSelection, levels: Sequence[LevelSpec]) -> str:
    return layers if isinstance(layers, str) else ",".join(level.name for level in levels)


def _with_set_scores(volume: ActivationVolume, scan: SetScan) -> ActivationVolume:
    levels = [replace(level, scores=tuple(scan.scores[level.name]) + level.scores[len(scan.scores[level.name]):])
              for level in volume.levels]
    return replace(volume, levels=levels)


def _reporter(on_error: OnError | None, failures: list[tuple[str, str]], known: set[str] = frozenset()) -> OnError:
    def report(path: str, error: CnnEngineError) -> None:
        failures.append((path, str(error)))
        if path in known:
            return
        if on_error is not None:
            on_error(path, error)
        else:
            warnings.warn(f"skipped {path}: {error}", stacklevel=3)

    return report


# --- the cache of first passes ------------------------------------------------------------------

_SCANS: list[tuple[weakref.ref, tuple, SetScan]] = []


def _scan_key(model: CnnModel, images, layers, top_k, rank_by, choice, explicit, preprocessing) -> tuple:
    files = []
    for path in images.paths:
        try:
            info = os.stat(path)
            files.append((str(path), info.st_size, info.st_mtime_ns))
        except OSError:
            files.append((str(path), None, None))
    layers_key = layers if isinstance(layers, str) else tuple(layers)
    explicit_key = tuple(sorted(explicit.items())) if explicit else None
    return (model.name, model.weights, str(model.device), tuple(files), layers_key, top_k, rank_by, choice,
            explicit_key, tuple(sorted(preprocessing.describe().items())))


def _cached_scan(model: CnnModel, key: tuple) -> SetScan | None:
    for owner, found_key, scan in _SCANS:
        if owner() is model.module and found_key == key:
            return scan
    return None


def _remember_scan(model: CnnModel, key: tuple, scan: SetScan) -> None:
    _SCANS[:] = [entry for entry in _SCANS if entry[0]() is not None][-(SCAN_CACHE_SIZE - 1):]
    _SCANS.append((weakref.ref(model.module), key, scan))
