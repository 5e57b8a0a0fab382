"""Which channel responds to which class: per-channel statistics over a labelled image set.

One pass over the set (:func:`channel_statistics`) feeds each level's output, a batch at a time,
to a running consumer that keeps, per image and channel, one number, the channel's **spatial
mean** (the mean of its map over rows and columns), and per channel its top-N **exemplars**
(the images where its map reaches its highest value: one maximum per image). Layer outputs are
never copied whole: memory holds one batch of them, plus 4 bytes per image and channel (60 KB
per image for ResNet-50's blocks; beyond :data:`SPILL_BYTES` they go to an unnamed temporary
file).

From those numbers, per level and channel, over the images of each class ``k`` of the set:

``class_mean[k]``, ``class_std[k]``
    the mean and the sample standard deviation (n - 1) of the spatial means (NaN for a class of
    one image).
``preferred_class``
    the class of the highest class mean (on a tie the lowest class index).
``selectivity``
    the class selectivity index of Morcos et al. (2018, "On the importance of single directions
    for generalization"): ``(mu_best - mu_rest) / (mu_best + mu_rest)``, ``mu_best`` the
    preferred class's mean, ``mu_rest`` the mean of the other classes' means. 0: no preference;
    1: the channel responds to its class only. Defined for non-negative responses (outputs of a
    ReLU); NaN where a class mean is negative, where both means are 0, and for sets of fewer than
    two classes.
``auroc``
    the rank-based measure: the area under the ROC curve of the spatial mean separating the
    preferred class's images from the other labelled images (ties count one half): the
    probability that an image of the class gives a higher response than one of another class.
    0.5: chance; 1: perfect. Any sign of response; NaN for fewer than two classes.

An exemplar records the image, the value and the (row, column) of the maximum on the level's
grid, and the **receptive field** of that cell as a box in network-input pixels: from the
strides, kernels and padding of the operations before it (:mod:`cnn_engine.receptive`), as
``(x0, y0, x1, y1)`` with x1 and y1 exclusive (numpy slices ``[y0:y1, x0:x1]`` of the fitted
input picture), clipped to the input. Exemplars are ordered by value (highest first), then by
position in the set.

Beyond one machine: give ``comm`` (an mpi4py communicator, for example under
``mpiexec -n N pvbatch --symmetric``): each rank runs every N-th image of the set; the per-image
numbers and the exemplars are gathered to rank 0, which works out the statistics exactly as one
process would (same order of summation) and sends them to every rank.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from .builder import level_geometry
from .channel_netcdf import ChannelTable, Variable, check_channel, level_index, read_channel_table, write_channel_table
from .compute import Progress, _as_model, available_memory
from .csv_table import write_csv
from .errors import CnnEngineError
from .layers import LayerSelection, LevelSpec
from .models import CnnModel
from .preprocess import Preprocessing
from .runner import OnError, decoded_batches, default_batch_size, forward

#: Per-image channel means beyond this many bytes (all levels) are kept in a temporary file.
SPILL_BYTES = 256 * 2**20

#: Exemplars kept per channel unless asked otherwise (a 3 x 3 atlas tile).
DEFAULT_TOP_N = 9

_EMPTY = np.iinfo(np.int64).max  # an empty exemplar slot's position while sorting (after every image)


class ChannelRow(NamedTuple):
    """One (level, channel) of :meth:`ChannelStatistics.rows`; see the module docstring."""

    level: str
    channel: int
    preferred_class: int
    preferred_class_name: str
    selectivity: float
    auroc: float
    mean: float
    images: int


class Exemplar(NamedTuple):
    """One of a channel's top images: ``image`` (path), ``position`` in the set, the map's maximum
    ``value`` at (``row``, ``col``) of the level's grid, and that cell's receptive field ``box``
    (x0, y0, x1, y1) in network-input pixels (x1, y1 exclusive), clipped to the input; ``field``
    is the same box before clipping (it reaches beyond the input near borders and at deep levels)."""

    image: str
    position: int
    value: float
    row: int
    col: int
    box: tuple[int, int, int, int]
    field: tuple[int, int, int, int]


@dataclass
class ChannelStatistics:
    """Per-channel statistics of a set (see the module docstring). Per-level lists hold one array
    per level, channels first; the ``class`` axis lists :attr:`classes` (model class indices
    present in the set, ascending)."""

    model_name: str
    layers: str
    levels: tuple[str, ...]
    channel_counts: tuple[int, ...]
    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    class_counts: np.ndarray
    mean: list[np.ndarray]
    class_mean: list[np.ndarray]
    class_std: list[np.ndarray]
    preferred_class: list[np.ndarray]
    selectivity: list[np.ndarray]
    auroc: list[np.ndarray]
    exemplar_position: list[np.ndarray]
    exemplar_value: list[np.ndarray]
    exemplar_row: list[np.ndarray]
    exemplar_col: list[np.ndarray]
    exemplar_box: list[np.ndarray]
    exemplar_field: list[np.ndarray]
    image_paths: tuple[str, ...]
    image_labels: tuple[int | None, ...]
    image_sizes: np.ndarray
    preprocessing: dict[str, Any]
    top_n: int
    notes: tuple[str, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()
    labels: dict[int, str] = field(default_factory=dict)

    @property
    def images(self) -> int:
        """Images that went into the statistics (labelled or not)."""
        return int((self.image_sizes[:, 0] > 0).sum()) if len(self.image_sizes) else 0

    def level_index(self, level: str | int) -> int:
        """The index of ``level`` (a name or an index)."""
        return level_index(self.levels, level)

    def class_name(self, index: int) -> str:
        """The name of model class ``index`` ("" for -1)."""
        if index < 0:
            return ""
        return self.labels.get(int(index), f"class {index}")

    def rows(self) -> list[ChannelRow]:
        """One record per (level, channel), levels in network order, channels ascending."""
        rows = []
        for i, level in enumerate(self.levels):
            for c in range(self.channel_counts[i]):
                preferred = int(self.preferred_class[i][c])
                rows.append(ChannelRow(level, c, preferred, self.class_name(preferred), float(self.selectivity[i][c]),
                                       float(self.auroc[i][c]), float(self.mean[i][c]), self.images))
        return rows

    def exemplars(self, level: str | int, channel: int) -> list[Exemplar]:
        """The channel's top images, highest value first (at most ``top_n``; fewer for a small set)."""
        i = self.level_index(level)
        c = check_channel(channel, self.channel_counts[i], self.levels[i])
        found = []
        for slot in range(self.top_n):
            position = int(self.exemplar_position[i][c, slot])
            if position < 0:
                break
            found.append(Exemplar(self.image_paths[position], position, float(self.exemplar_value[i][c, slot]),
                                  int(self.exemplar_row[i][c, slot]), int(self.exemplar_col[i][c, slot]),
                                  tuple(int(v) for v in self.exemplar_box[i][c, slot]),
                                  tuple(int(v) for v in self.exemplar_field[i][c, slot])))
        return found

    def most_selective(self, level: str | int, count: int = 5) -> list[ChannelRow]:
        """The level's ``count`` most selective channels: by selectivity index where it is defined
        (highest first), then by AUROC; channels with neither come last."""
        i = self.level_index(level)
        rows = [row for row in self.rows() if row.level == self.levels[i]]

        def key(row: ChannelRow) -> tuple:
            si = row.selectivity if math.isfinite(row.selectivity) else -math.inf
            au = row.auroc if math.isfinite(row.auroc) else -math.inf
            return (-si, -au, row.channel)

        return sorted(rows, key=key)[:count]

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Write a CF netCDF-4 file (dimensions level, channel, class, exemplar, corner, image)
        that xarray opens and :func:`read_channel_statistics` reads back."""
        return write_channel_table(path, _table(self))

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rows` as a CSV table (a header row, then one row per level and channel)."""
        return write_csv(path, ChannelRow._fields, self.rows())


def channel_statistics(model: CnnModel | nn.Module, images: Any, layers: LayerSelection = "blocks",
                       top_n: int = DEFAULT_TOP_N, batch_size: int | None = None, input_size: int = 224,
                       fit: str = "short-side", max_side: int = 1024, progress: Progress | None = None,
                       on_error: OnError | None = None, comm: Any = None) -> ChannelStatistics:
    """Per-channel class statistics and exemplars of ``images`` (see the module docstring).

    ``images``: as :func:`cnn_engine.compute_volumes` (a folder with one subfolder per class, a
    list file ``path,label``, a pattern, a list of paths or an :class:`cnn_engine.ImageSet`).
    ``top_n``: exemplars kept per channel. ``progress(done, total)`` counts this process's images.
    ``comm``: an mpi4py communicator to share the set among processes (every rank gets the same
    result). Unreadable images go to ``on_error(path, error)`` (default: a warning) and are left
    out. Raises :class:`CnnEngineError` for bad options or when no image can be read.
    """
    from .sets import _first_size, _reporter, image_set

    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or not 1 <= top_n <= 100:
        raise CnnEngineError(f"top_n must be a whole number from 1 to 100, not {top_n!r}")
    model = _as_model(model)
    images = image_set(images, model)
    if len(images) == 0:
        raise CnnEngineError("the image set is empty")
    levels = model.levels(layers)
    preprocessing = Preprocessing(fit=fit, size=input_size, max_side=max_side)
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    positions = list(range(len(images)))[rank::size]
    failures: list[tuple[str, str]] = []
    report = _reporter(on_error if rank == 0 or on_error is not None else _quiet, failures)
    running = _Running(model, levels, int(top_n))
    batch = batch_size or default_batch_size(model, levels, _first_size(images, preprocessing), 1, available_memory())
    done = 0
    for items in decoded_batches(images, positions, preprocessing, model, batch, report):
        running.start_batch(items)
        forward(model, levels, items, running.add)
        done += len(items)
        if progress is not None:
            progress(done + len(failures), len(positions))
    part = running.part(failures)
    parts = comm.gather(part, root=0) if comm is not None else [part]
    result = None
    if rank == 0:
        result = _finish(model, images, levels, layers, preprocessing, int(top_n), parts)
    if comm is not None:
        result = comm.bcast(result, root=0)
    if isinstance(result, CnnEngineError):
        raise result
    if rank == 0:
        for note in result.notes:
            if note not in images.problems:  # the set's own problems were told when it was read
                warnings.warn(note, stacklevel=2)
    return result


def read_channel_statistics(path: str | os.PathLike) -> ChannelStatistics:
    """Read a file written by :meth:`ChannelStatistics.to_netcdf`."""
    table = read_channel_table(path, "channel_statistics")
    v = table.variables
    meta = table.metadata
    labels = [None if int(k) < 0 else int(k) for k in v["image_label"].values]
    return ChannelStatistics(
        model_name=meta["model"], layers=meta["layers"], levels=table.levels, channel_counts=table.channel_counts,
        classes=tuple(int(k) for k in v["class_index"].values), class_names=tuple(v["class_name"].values),
        class_counts=np.asarray(v["class_count"].values, dtype=np.int64),
        mean=list(v["mean"].values), class_mean=list(v["class_mean"].values), class_std=list(v["class_std"].values),
        preferred_class=[a.astype(np.int64) for a in v["preferred_class"].values],
        selectivity=list(v["selectivity"].values), auroc=list(v["auroc"].values),
        exemplar_position=[a.astype(np.int64) for a in v["exemplar_image"].values],
        exemplar_value=list(v["exemplar_value"].values),
        exemplar_row=[a.astype(np.int64) for a in v["exemplar_row"].values],
        exemplar_col=[a.astype(np.int64) for a in v["exemplar_col"].values],
        exemplar_box=[a.astype(np.int32) for a in v["exemplar_box"].values],
        exemplar_field=[a.astype(np.int32) for a in v["exemplar_field"].values],
        image_paths=tuple(v["image_path"].values), image_labels=tuple(labels),
        image_sizes=np.stack([v["image_height"].values, v["image_width"].values], axis=1).astype(np.int64),
        preprocessing=meta["preprocessing"], top_n=int(meta["top_n"]), notes=tuple(meta.get("notes", ())),
        failures=tuple(tuple(f) for f in meta.get("failures", ())),
        labels={int(k): name for k, name in meta.get("labels", {}).items()},
    )


# --- the running consumer ------------------------------------------------------------------------


class _Rows:
    """An (images, channels) float32 table growing a batch at a time; in memory, or in an
    unnamed temporary file once ``spill`` says so."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.file = None
        self.count = 0
        self.width = 0

    def append(self, values: np.ndarray, spill: bool) -> None:
        self.width = values.shape[1]
        self.count += values.shape[0]
        if spill and self.file is None:
            self.file = tempfile.TemporaryFile(prefix="cnnvis-statistics-")
            for chunk in self.chunks:
                self.file.write(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
            self.chunks = []
        if self.file is not None:
            self.file.write(np.ascontiguousarray(values, dtype=np.float32).tobytes())
        else:
            self.chunks.append(values)

    def array(self) -> np.ndarray:
        if self.file is None:
            return np.concatenate(self.chunks) if self.chunks else np.zeros((0, self.width), np.float32)
        self.file.flush()
        return np.memmap(self.file, dtype=np.float32, mode="r", shape=(self.count, self.width))


class _Running:
    """Fed one level's output for a batch at a time: keeps the spatial means and the top-N exemplars."""

    def __init__(self, model: CnnModel, levels: Sequence[LevelSpec], top_n: int) -> None:
        self.model = model
        self.levels = list(levels)
        self.top_n = top_n
        self.rows = [_Rows() for _ in self.levels]
        self.best: list[dict[str, np.ndarray] | None] = [None] * len(self.levels)
        self.positions: list[int] = []
        self.sizes: list[tuple[int, int]] = []
        self.bytes = 0
        self.items: list = []

    def start_batch(self, items: Sequence) -> None:
        self.items = list(items)
        self.size = items[0].size
        self.geometry = self.model.geometry(self.size)
        self.positions.extend(item.position for item in items)
        self.sizes.extend(item.size for item in items)

    def add(self, index: int, output: torch.Tensor) -> None:
        level = self.levels[index]
        if output.dim() != 4:
            raise CnnEngineError(f"layer {level.name!r} gave a {tuple(output.shape)} output, not a spatial map: "
                                 "channel statistics need levels with maps (use layers='blocks' or 'convs')")
        batch, channels, rows, cols = output.shape
        flat = output.detach().flatten(2)
        means = flat.mean(2, dtype=torch.float32).cpu().numpy()
        self.bytes += means.nbytes
        self.rows[index].append(means, self.bytes > SPILL_BYTES)
        values, where = flat.max(2)  # the first maximum of each map
        values = values.float().cpu().numpy().T  # (channels, batch)
        where = where.cpu().numpy().T
        positions = np.broadcast_to(np.asarray([item.position for item in self.items], dtype=np.int64), values.shape)
        r, c = where // cols, where % cols
        cells = level_geometry(self.geometry, level.node, (rows, cols), self.size)
        candidate = {"position": positions, "value": values, "row": r.astype(np.int64), "col": c.astype(np.int64),
                     "box": receptive_boxes(cells, r, c, self.size),
                     "field": receptive_boxes(cells, r, c, self.size, clip=False)}
        self.best[index] = _merge([self.best[index], candidate], self.top_n)

    def part(self, failures: list[tuple[str, str]]) -> dict[str, Any]:
        """What this process contributes: per-image means, exemplar candidates, the images seen."""
        return {"positions": np.asarray(self.positions, dtype=np.int64), "sizes": np.asarray(self.sizes, dtype=np.int64),
                "means": [rows.array() for rows in self.rows], "best": self.best, "failures": list(failures)}


def receptive_boxes(cells, rows: np.ndarray, cols: np.ndarray, size: tuple[int, int], clip: bool = True) -> np.ndarray:
    """The receptive fields of cells (``rows``, ``cols``) of a level with geometry ``cells``, as
    (..., 4) int32 boxes (x0, y0, x1, y1) in pixels of a ``size`` (height, width) input: the
    pixels whose whole extent lies in the field (pixel i spans [i - 0.5, i + 0.5]), x1 and y1
    exclusive, clipped to the input (unless ``clip`` is false: then beyond it where the field is)."""
    top = cells.offset[0] + rows * cells.stride[0] - cells.receptive_field[0] / 2
    left = cells.offset[1] + cols * cells.stride[1] - cells.receptive_field[1] / 2
    bottom = top + cells.receptive_field[0]
    right = left + cells.receptive_field[1]
    height, width = size
    box = np.stack([np.ceil(left + 0.5), np.ceil(top + 0.5), np.floor(right + 0.5), np.floor(bottom + 0.5)], axis=-1)
    if clip:
        box = np.clip(box, 0, [width, height, width, height])
    return box.astype(np.int32)


def _merge(parts: Sequence[dict[str, np.ndarray] | None], top_n: int) -> dict[str, np.ndarray]:
    """The top ``top_n`` per channel of several candidate sets, by value (highest first), then
    position: the same whatever order the parts come in (so ranks can merge theirs)."""
    parts = [p for p in parts if p is not None]
    joined = {key: np.concatenate([p[key] for p in parts], axis=1) for key in parts[0]}
    value = np.where(np.isnan(joined["value"]), -np.inf, joined["value"])
    position = np.where(joined["position"] < 0, _EMPTY, joined["position"])
    order = np.lexsort((position, -value), axis=-1)[:, :top_n]
    kept = {key: np.take_along_axis(array, order if array.ndim == 2 else order[..., None], axis=1)
            for key, array in joined.items()}
    missing = top_n - order.shape[1]
    if missing > 0:  # fewer candidates than slots: empty slots at the end
        channels = order.shape[0]
        kept["position"] = np.concatenate([kept["position"], np.full((channels, missing), -1, np.int64)], axis=1)
        kept["value"] = np.concatenate([kept["value"], np.full((channels, missing), np.nan, np.float32)], axis=1)
        for key in ("row", "col"):
            kept[key] = np.concatenate([kept[key], np.full((channels, missing), -1, np.int64)], axis=1)
        for key in ("box", "field"):
            kept[key] = np.concatenate([kept[key], np.full((channels, missing, 4), -1, np.int32)], axis=1)
    return kept


def _quiet(path: str, error: CnnEngineError) -> None:
    """Other ranks' unreadable images: rank 0 reports them all once the parts are gathered."""


# --- the statistics ------------------------------------------------------------------------------


def _finish(model: CnnModel, images, levels: Sequence[LevelSpec], layers: LayerSelection,
            preprocessing: Preprocessing, top_n: int, parts: Sequence[dict[str, Any]]) -> ChannelStatistics | CnnEngineError:
    failures = sorted({tuple(f) for part in parts for f in part["failures"]})
    positions = np.concatenate([part["positions"] for part in parts])
    if positions.size == 0:
        return CnnEngineError(f"no image of the set could be read ({len(failures)} tried): "
                              + (failures[0][1] if failures else "the set is empty"))
    order = np.argsort(positions, kind="stable")  # set order, whatever the ranks
    positions = positions[order]
    count = len(images)
    sizes = np.zeros((count, 2), dtype=np.int64)
    sizes[positions] = np.concatenate([part["sizes"] for part in parts])[order]
    labels = np.asarray([-1 if images.labels[p] is None else int(images.labels[p]) for p in positions], dtype=np.int64)
    labelled = labels >= 0
    classes, class_counts = np.unique(labels[labelled], return_counts=True)
    names = _class_names(model, images, {int(k) for k in classes})
    notes = _notes(names, images, classes, class_counts, int(labelled.sum()), len(positions))
    result: dict[str, list[np.ndarray]] = {key: [] for key in (
        "mean", "class_mean", "class_std", "preferred_class", "selectivity", "auroc")}
    exemplars: dict[str, list[np.ndarray]] = {key: [] for key in ("position", "value", "row", "col", "box", "field")}
    counts = []
    for index in range(len(levels)):
        means = np.concatenate([np.asarray(part["means"][index]) for part in parts])[order].astype(np.float64)
        counts.append(means.shape[1])
        for key, value in _level_statistics(means, labels, classes, class_counts).items():
            result[key].append(value)
        best = _merge([part["best"][index] for part in parts], top_n)
        for key in exemplars:
            exemplars[key].append(best[key])
    label_names = _class_names(model, images, {int(k) for row in result["preferred_class"] for k in np.unique(row)
                                               if k >= 0} | {int(k) for k in classes})
    return ChannelStatistics(
        model_name=model.name, layers=layers if isinstance(layers, str) else ",".join(level.name for level in levels),
        levels=tuple(level.name for level in levels), channel_counts=tuple(counts),
        classes=tuple(int(k) for k in classes), class_names=tuple(label_names[int(k)] for k in classes),
        class_counts=class_counts.astype(np.int64), mean=result["mean"], class_mean=result["class_mean"],
        class_std=result["class_std"], preferred_class=result["preferred_class"], selectivity=result["selectivity"],
        auroc=result["auroc"], exemplar_position=exemplars["position"], exemplar_value=exemplars["value"],
        exemplar_row=exemplars["row"], exemplar_col=exemplars["col"], exemplar_box=exemplars["box"],
        exemplar_field=exemplars["field"],
        image_paths=tuple(str(p) for p in images.paths), image_labels=tuple(images.labels), image_sizes=sizes,
        preprocessing=preprocessing.describe(), top_n=top_n, notes=tuple(notes), failures=tuple(failures),
        labels=label_names,
    )


def _class_names(model: CnnModel, images, indices: set[int]) -> dict[int, str]:
    """Names of class ``indices``: the model's labels; for a plain module without labels, the names
    the set gives its classes (its folders or list file), else ``class N``."""
    if model.categories:
        return {k: model.label(k) for k in sorted(indices)}
    given = {int(k): name for k, name in zip(images.labels, images.label_names) if k is not None and name}
    return {k: given.get(k, f"class {k}") for k in sorted(indices)}


def _level_statistics(means: np.ndarray, labels: np.ndarray, classes: np.ndarray,
                      class_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per channel of one level: see the module docstring. ``means``: (images, channels) float64."""
    channels = means.shape[1]
    overall = means.mean(0)
    k = len(classes)
    if k == 0:
        nan = np.full(channels, np.nan)
        return {"mean": overall, "class_mean": np.zeros((channels, 0)), "class_std": np.zeros((channels, 0)),
                "preferred_class": np.full(channels, -1, np.int64), "selectivity": nan, "auroc": nan.copy()}
    labelled = labels >= 0
    # Rows grouped by class in a fixed order (stable by set position): sums are the same on every run.
    by_class = np.argsort(np.where(labelled, labels, np.iinfo(np.int64).max), kind="stable")[: int(labelled.sum())]
    grouped = means[by_class]
    starts = np.concatenate([[0], np.cumsum(class_counts)[:-1]])
    class_mean = np.add.reduceat(grouped, starts, axis=0) / class_counts[:, None]  # (classes, channels)
    deviations = (grouped - np.repeat(class_mean, class_counts, axis=0)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        class_std = np.sqrt(np.add.reduceat(deviations, starts, axis=0) / (class_counts[:, None] - 1))
    class_std[class_counts == 1] = np.nan
    best = np.argmax(class_mean, axis=0)  # the first maximum: the lowest class index
    preferred = classes[best]
    selectivity = np.full(channels, np.nan)
    auroc = np.full(channels, np.nan)
    if k >= 2:
        mu_best = class_mean[best, np.arange(channels)]
        mu_rest = (class_mean.sum(0) - mu_best) / (k - 1)
        defined = (class_mean.min(0) >= 0) & (mu_best + mu_rest > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            selectivity = np.where(defined, (mu_best - mu_rest) / (mu_best + mu_rest), np.nan)
        auroc = _auroc(means[labelled], labels[labelled], preferred)
    return {"mean": overall, "class_mean": class_mean.T.copy(), "class_std": class_std.T.copy(),
            "preferred_class": preferred.astype(np.int64), "selectivity": selectivity, "auroc": auroc}


def _auroc(means: np.ndarray, labels: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """One-vs-rest AUROC per channel of its preferred class: (R - n(n+1)/2) / (n m), R the sum of
    the class's images' ranks among all (ties: average ranks), n and m the two group sizes."""
    out = np.full(means.shape[1], np.nan)
    for k in np.unique(preferred):
        columns = np.flatnonzero(preferred == k)
        positive = labels == k
        n, m = int(positive.sum()), int((~positive).sum())
        if n == 0 or m == 0:
            continue
        ranks = average_ranks(means[:, columns])
        out[columns] = (ranks[positive].sum(0) - n * (n + 1) / 2) / (n * m)
    return out


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of each column's values (rows: samples), tied values sharing their average rank
    (as scipy.stats.rankdata's "average", for all columns at once)."""
    n = values.shape[0]
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    index = np.arange(n)[:, None]
    starts = np.ones(ordered.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = np.maximum.accumulate(np.where(starts, index, 0), axis=0)  # where each run of ties begins
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:-1] = starts[1:]
    last = np.minimum.accumulate(np.where(ends, index, n - 1)[::-1], axis=0)[::-1]  # and ends
    ranks = np.empty(ordered.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=0)
    return ranks


def _notes(names: dict[int, str], images, classes: np.ndarray, class_counts: np.ndarray, labelled: int,
           used: int) -> list[str]:
    notes = []
    if labelled == 0:
        notes.append("no image of the set has a label: class means, selectivity and AUROC need labelled images "
                     "(a folder per class, or a list file with 'path,label' rows); only exemplars were computed")
    elif len(classes) == 1:
        notes.append(f"the set has one class only ({names[int(classes[0])]}): selectivity and AUROC compare a "
                     "class with the others and are undefined (NaN); add images of other classes")
    if 0 < labelled < used:
        notes.append(f"{used - labelled} of {used} images have no label: they count for exemplars and overall means "
                     "only")
    single = [names[int(k)] for k, n in zip(classes, class_counts) if n == 1]
    if single:
        shown = ", ".join(single[:5]) + (f" and {len(single) - 5} more" if len(single) > 5 else "")
        notes.append(f"{len(single)} class(es) with one image ({shown}): their standard deviation is undefined (NaN)")
    notes.extend(getattr(images, "problems", ()) or ())
    return notes


# --- the file ------------------------------------------------------------------------------------


def _table(stats: ChannelStatistics) -> ChannelTable:
    per = ("level", "channel")
    unit = {"units": "1"}
    variables = {
        "class_index": Variable(("class",), np.asarray(stats.classes, dtype=np.int32), "i4",
                                {"long_name": "model class index", **unit}),
        "class_name": Variable(("class",), np.asarray(stats.class_names, dtype=object), "text",
                               {"long_name": "class name"}),
        "class_count": Variable(("class",), np.asarray(stats.class_counts, dtype=np.int32), "i4",
                                {"long_name": "images of the class", **unit}),
        "mean": Variable(per, stats.mean, "f8", {"long_name": "mean over all images of the channel's spatial mean"}),
        "class_mean": Variable(per + ("class",), stats.class_mean, "f8",
                               {"long_name": "mean over the class's images of the channel's spatial mean"}),
        "class_std": Variable(per + ("class",), stats.class_std, "f8",
                              {"long_name": "sample standard deviation over the class's images of the spatial mean"}),
        "preferred_class": Variable(per, stats.preferred_class, "i4",
                                    {"long_name": "model class index of the highest class mean (-1: undefined)"}),
        "preferred_class_name": Variable(per, [np.asarray([stats.class_name(int(k)) for k in row], dtype=object)
                                               for row in stats.preferred_class], "text",
                                         {"long_name": "name of the preferred class"}),
        "selectivity": Variable(per, stats.selectivity, "f8", {
            "long_name": "class selectivity index (mu_best - mu_rest) / (mu_best + mu_rest)", **unit,
            "references": "Morcos et al. 2018, On the importance of single directions for generalization"}),
        "auroc": Variable(per, stats.auroc, "f8",
                          {"long_name": "one-vs-rest AUROC of the preferred class", **unit}),
        "exemplar_image": Variable(per + ("exemplar",), stats.exemplar_position, "i4",
                                   {"long_name": "set position of the exemplar image (-1: none)"}),
        "exemplar_value": Variable(per + ("exemplar",), stats.exemplar_value, "f8",
                                   {"long_name": "maximum of the channel's map on the exemplar image"}),
        "exemplar_row": Variable(per + ("exemplar",), stats.exemplar_row, "i4",
                                 {"long_name": "row of the maximum on the level's grid (0 = top)"}),
        "exemplar_col": Variable(per + ("exemplar",), stats.exemplar_col, "i4",
                                 {"long_name": "column of the maximum on the level's grid"}),
        "exemplar_box": Variable(per + ("exemplar", "corner"), stats.exemplar_box, "i4", {
            "long_name": "receptive field of the maximum's cell: x0 y0 x1 y1 in network-input pixels, "
                         "x1 and y1 exclusive, row 0 = top", "units": "1"}),
        "exemplar_field": Variable(per + ("exemplar", "corner"), stats.exemplar_field, "i4", {
            "long_name": "the same receptive field before clipping to the input (beyond it where the field is)",
            "units": "1"}),
        "image_path": Variable(("image",), np.asarray(stats.image_paths, dtype=object), "text",
                               {"long_name": "image file"}),
        "image_label": Variable(("image",), np.asarray([-1 if v is None else v for v in stats.image_labels],
                                                       dtype=np.int32), "i4",
                                {"long_name": "true class index of the image (-1: none)"}),
        "image_height": Variable(("image",), stats.image_sizes[:, 0].astype(np.int32), "i4",
                                 {"long_name": "network input height (0: not read)", "units": "1"}),
        "image_width": Variable(("image",), stats.image_sizes[:, 1].astype(np.int32), "i4",
                                {"long_name": "network input width (0: not read)", "units": "1"}),
    }
    metadata = {"model": stats.model_name, "layers": stats.layers, "preprocessing": stats.preprocessing,
                "top_n": stats.top_n, "notes": list(stats.notes), "failures": [list(f) for f in stats.failures],
                "labels": {str(k): v for k, v in stats.labels.items()}}
    dimensions = {"class": len(stats.classes), "exemplar": stats.top_n, "corner": 4, "image": len(stats.image_paths)}
    return ChannelTable("channel_statistics", stats.levels, stats.channel_counts, variables, dimensions, metadata)

