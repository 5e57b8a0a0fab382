"""A set of activation volumes in one CF netCDF file, one image per time step.

:func:`write_set_netcdf` streams volumes (one in memory at a time) into one file that ParaView's
stock NetCDF reader opens as a time series: the VCR controls and the Time slider step through the
images. :func:`read_set_netcdf` gives them back, one volume per index, read only when asked for.

Layout: the single-volume layout of :mod:`cnn_engine.netcdf` (same names, types, attributes,
upright rows, ``level``/``y``/``x`` coordinates in input pixels), with a leading dimension
``time`` on everything that differs between images:

* ``time`` (time): the image's position in this file, 0, 1, 2, ...: ParaView's time step. Its
  ``axis = "T"`` is what makes the CF reader take it for time (it needs that or time units, and
  an image's position has no unit of time); the reader drops a leading time dimension and loads
  one step at a time. Unlimited, so volumes are appended as they come.
* ``rank*``, ``layercam`` and ``image_luminance`` (time, level, y, x); ``image_rgb`` (time, y,
  x, rgb); ``target_evidence`` (time, y, x) when the volumes have evidence maps. In netCDF-4
  one chunk is one level's (y, x) plane of one image, deflated (see :mod:`cnn_engine.netcdf`).
* per image and level: ``level_channel_index`` and ``level_channel_score`` (time, level, rank)
  (with per-image channels every image keeps its own), ``level_raw_min``/``level_raw_max``
  (time, level); predictions ``prediction_index``, ``prediction_probability``,
  ``prediction_label`` (time, prediction).
* per image: ``image_name`` (the file name), ``true_label_name`` (the label the set gives it,
  empty when unknown), ``true_label`` (its class index, -1 when unknown), ``top1_label`` (the
  network's most probable class), ``set_index`` (its position in the whole set, -1 when unknown:
  a set exported in part has gaps), and ``volume_metadata``: the volume's metadata as JSON
  (:meth:`ActivationVolume.metadata`), what :func:`read_set_netcdf` trusts. ``image_name`` is an
  auxiliary coordinate of everything along ``time``, so xarray selects by it:
  ``ds.swap_dims(time="image_name").sel(image_name="cat.jpg")``.
* the same for every image, as in a single-volume file: ``level_index``, ``level_name``,
  ``level_type``, ``level_native_shape``, ``level_stride``, ``level_receptive_field``,
  ``level_offset``, ``level_geometry``.
* global attributes as for one volume, without the one image's path and checksum, with
  ``cnn_format = "cnn_engine activation volume set"``, ``image_count`` (time steps written) and,
  when the writer was told, ``set_size`` (images asked for: more when some failed).

Naming rule, as for one volume: the stock reader loads the variables that share the dimensions
of the alphabetically first multi-dimensional variable, ``image_luminance`` (time, level, y, x);
every other multi-dimensional name sorts after it (``image_name``, ``image_rgb``, ``level_*``,
``top1_label``, ``true_label_name``, ``volume_metadata``, ...).

Every image must have the same grid (levels, height, width), levels, ranks, model, ranking and
normalisation; the first one sets them. With ``fit="short-side"`` images of different shapes get
different grids: use ``fit="center-crop"`` (or images of one size) for a set file.
Text variables are written when the last volume has come (their widths are known only then):
in netCDF-3 that moves the data already written once (netCDF-4 just adds them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from .atomic import atomic_write, check_writable
from .errors import FormatError
from .netcdf import (
    CHANNEL_INDEX_ATTRIBUTES,
    DEFAULT_NETCDF_FORMAT,
    IMAGE_ATTRIBUTES,
    LEVEL_COORDINATES,
    LUMINANCE_ATTRIBUTES,
    PREDICTION_INDEX_ATTRIBUTES,
    PREDICTION_LABEL_ATTRIBUTES,
    PREDICTION_PROBABILITY_ATTRIBUTES,
    RAW_MAX_ATTRIBUTES,
    RAW_MIN_ATTRIBUTES,
    SET_FORMAT_NAME,
    VolumeFile,
    atomic_write_netcdf4,
    channel_score_attributes,
    create_variable,
    shuffles,
    evidence_attributes,
    global_attributes,
    layercam_attributes,
    netcdf4_library,
    parse_netcdf_format,
    rank_attributes,
    set_attributes,
    text_array,
    write_grid_coordinates,
    write_level_table,
    unnamed_netcdf4,
    write_variable,
)
from .volume import ActivationVolume, luminance, rank_names, upright

__all__ = ["VolumeSetFile", "read_set_netcdf", "write_set_netcdf"]

#: Auxiliary coordinates of the variables along time (and level): xarray makes them coordinates.
IMAGE_COORDINATES = "image_name"
SET_LEVEL_COORDINATES = f"{LEVEL_COORDINATES} {IMAGE_COORDINATES}"


@dataclass
class StepAxis:
    """What a series other than an image set puts on the time axis (a perturbation sweep): the
    time ``values`` (strictly increasing, one per volume), the time variable's ``long_name`` and
    ``units``, extra ``variables`` {name: (dims, values, attributes)} written at the end (names
    must sort after ``image_luminance``, see the naming rule), extra ``dimensions`` {name: size}
    and global ``attributes``."""

    values: Sequence[float]
    long_name: str
    units: str = "1"
    variables: dict[str, tuple[tuple[str, ...], Any, dict[str, Any]]] = field(default_factory=dict)
    dimensions: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


def write_set_netcdf(volumes: Iterable[ActivationVolume], path: str | os.PathLike,
                     format: str = DEFAULT_NETCDF_FORMAT, count: int | None = None,
                     steps: StepAxis | None = None) -> Path:
    """Write ``volumes`` into one netCDF file at ``path``, one per time step, atomically. Returns the path.

    ``volumes`` is consumed one at a time (:func:`cnn_engine.compute_volumes` fits): memory holds
    one volume, whatever the size of the set. ``format``: ``netcdf4`` (compressed, the default)
    or ``netcdf3``. ``count``: how many images the set has, when known; recorded as ``set_size``
    (the file holds the volumes that came, fewer when images failed). ``steps``: time values and
    extra variables for a series that is not a set of images (:class:`StepAxis`).

    A volume whose grid, levels, ranks, model, ranking or normalisation differ from the first
    one's is a :class:`FormatError` naming its image, and so is a set without volumes; nothing is
    written then (as on any error: the file appears complete or not at all).
    """
    format = parse_netcdf_format(format)
    path = check_writable(path)
    netcdf4_library()  # both formats stream through netCDF-C; a missing library is one message now

    if format == "netcdf4":
        return atomic_write_netcdf4(path, lambda nc: _write_set(nc, volumes, count, steps=steps))
    # netCDF-3 cannot add the text variables at the end without moving all data written before,
    # once per variable and attribute; so the set is streamed into an uncompressed netCDF-4
    # scratch file first, then copied step by step into a netCDF-3 file defined in one go
    # (netCDF-C's netCDF-3 code writes through the unnamed temporary's path directly).
    with unnamed_netcdf4(path) as (scratch, _):
        def write(temporary: str) -> None:
            _write_set(scratch, volumes, count, compress=False, steps=steps)
            with netcdf4_library().Dataset(temporary, "w", format="NETCDF3_64BIT_OFFSET") as nc:
                _copy_dataset(scratch, nc)

        return atomic_write(path, write, what="netCDF file")


def _write_set(nc: Any, volumes: Iterable[ActivationVolume], count: int | None, compress: bool = True,
               steps: StepAxis | None = None) -> None:
    writer: _SetWriter | None = None
    for volume in volumes:
        if writer is None:
            writer = _SetWriter(nc, volume, compress, steps)
        writer.add(volume)
    if writer is None:
        raise FormatError("no volumes to write: the set gave none (no image could be read?); nothing was written")
    writer.finish(count)


class _SetWriter:
    """Defines the file from the first volume, appends one volume per time step, and writes the
    text (whose widths only the last volume settles) at the end."""

    def __init__(self, nc: Any, first: ActivationVolume, compress: bool = True, steps: StepAxis | None = None) -> None:
        self.nc = nc
        self.steps = steps
        self.first = first
        self.compress = compress
        self.step = 0
        self.texts: dict[str, list[str]] = {name: [] for name in
                                            ("image_name", "true_label_name", "top1_label", "volume_metadata")}
        self.prediction_labels: list[list[str]] = []
        levels, height, width = first.shape
        self.predictions = max(1, len(first.predictions))
        self.ranks = rank_names(first.arrays)
        self.has_layercam = "layercam" in first.arrays
        self.has_evidence = first.evidence is not None and first.evidence_info is not None

        nc.createDimension("time", None)
        for name, size in (("level", levels), ("y", height), ("x", width), ("rank", first.top_k), ("rgb", 3),
                           ("shape3", 3), ("yx", 2), ("prediction", self.predictions)):
            nc.createDimension(name, size)
        time = create_variable(nc, "time", "i4" if steps is None else "f8", ("time",))
        # axis T: the CF reader's sign of a time dimension (besides time units, which a position has not).
        set_attributes(time, long_name="position of the image in this file (ParaView's time step)" if steps is None
                       else steps.long_name, units="1" if steps is None else steps.units, axis="T")
        write_grid_coordinates(nc, first)
        write_variable(nc, "level_index", "i4", ("level",), np.arange(levels),
                       "level index: 0 = network input, then the layers in execution order")

        volume_dims, plane = ("time", "level", "y", "x"), (1, 1, height, width)
        for k, name in enumerate(self.ranks):
            self._array(name, "f4", volume_dims, plane, rank_attributes(first, k), SET_LEVEL_COORDINATES)
        if self.has_layercam:
            self._array("layercam", "f4", volume_dims, plane, layercam_attributes(first), SET_LEVEL_COORDINATES)
        self._array("image_luminance", "f4", volume_dims, plane, LUMINANCE_ATTRIBUTES, SET_LEVEL_COORDINATES)
        self._array("image_rgb", "i2", ("time", "y", "x", "rgb"), (1, height, width, 3), IMAGE_ATTRIBUTES,
                    IMAGE_COORDINATES)

        write_level_table(nc, first)
        self._per_image("level_channel_index", "i4", ("time", "level", "rank"),
                        {**CHANNEL_INDEX_ATTRIBUTES, "coordinates": SET_LEVEL_COORDINATES})
        # Scores, ranking and target: the first volume's ranking (every volume must share it).
        self._per_image("level_channel_score", "f4", ("time", "level", "rank"),
                        {**channel_score_attributes(first), "coordinates": SET_LEVEL_COORDINATES})
        self._per_image("level_raw_min", "f4", ("time", "level"),
                        {**RAW_MIN_ATTRIBUTES, "coordinates": SET_LEVEL_COORDINATES})
        self._per_image("level_raw_max", "f4", ("time", "level"),
                        {**RAW_MAX_ATTRIBUTES, "coordinates": SET_LEVEL_COORDINATES})
        self._per_image("prediction_index", "i4", ("time", "prediction"),
                        {**PREDICTION_INDEX_ATTRIBUTES, "coordinates": f"prediction_label {IMAGE_COORDINATES}"})
        self._per_image("prediction_probability", "f4", ("time", "prediction"),
                        {**PREDICTION_PROBABILITY_ATTRIBUTES,
                         "coordinates": f"prediction_label {IMAGE_COORDINATES}"})
        self._per_image("set_index", "i4", ("time",),
                        dict(long_name="position of the image in the whole set (-1: unknown)",
                             coordinates=IMAGE_COORDINATES))
        self._per_image("true_label", "i4", ("time",),
                        dict(long_name="class index of the image's true label in the model's classes (-1: unknown)",
                             coordinates=IMAGE_COORDINATES))
        if self.has_evidence:
            self._array("target_evidence", "f4", ("time", "y", "x"), (1, height, width), evidence_attributes(first),
                        IMAGE_COORDINATES)

    def _array(self, name: str, kind: str, dims: tuple[str, ...], chunks: tuple[int, ...],
               attributes: dict[str, Any], coordinates: str) -> None:
        """A large per-image variable: chunked (one image's level plane), compressed in netCDF-4."""
        var = create_variable(self.nc, name, kind, dims, chunks=chunks, compress=self.compress,
                              shuffle=shuffles(self.first))
        set_attributes(var, **{**attributes, "coordinates": coordinates})

    def _per_image(self, name: str, kind: str, dims: tuple[str, ...], attributes: dict[str, Any]) -> None:
        set_attributes(create_variable(self.nc, name, kind, dims), **attributes)

    def add(self, volume: ActivationVolume) -> None:
        """Append ``volume`` as the next time step (after checking that it fits the first one)."""
        self._check(volume)
        nc, t = self.nc, self.step
        levels, height, width = volume.shape
        nc.variables["time"][t] = t if self.steps is None else self.steps.values[t]
        for name in self.ranks + (["layercam"] if self.has_layercam else []):
            nc.variables[name][t] = upright(volume.arrays[name])
        nc.variables["image_luminance"][t] = np.broadcast_to(luminance(volume.image)[::-1], (levels, height, width))
        nc.variables["image_rgb"][t] = volume.image[::-1].astype(np.int16)
        nc.variables["level_channel_index"][t] = np.asarray([lv.channels for lv in volume.levels], dtype="i4")
        nc.variables["level_channel_score"][t] = np.asarray([lv.scores for lv in volume.levels], dtype="f4")
        nc.variables["level_raw_min"][t] = np.asarray([lv.raw_min for lv in volume.levels], dtype="f4")
        nc.variables["level_raw_max"][t] = np.asarray([lv.raw_max for lv in volume.levels], dtype="f4")
        # A volume without predictions (the dimension has at least one entry): -1, NaN, no label.
        predictions = volume.predictions
        padding = self.predictions - len(predictions)
        nc.variables["prediction_index"][t] = np.asarray([p.index for p in predictions] + [-1] * padding, dtype="i4")
        nc.variables["prediction_probability"][t] = np.asarray(
            [p.probability for p in predictions] + [np.nan] * padding, dtype="f4")
        prov = volume.provenance
        nc.variables["set_index"][t] = -1 if prov.set_index is None else prov.set_index
        nc.variables["true_label"][t] = -1 if prov.true_label is None else prov.true_label
        if self.has_evidence:
            nc.variables["target_evidence"][t] = volume.evidence[::-1]
        self.prediction_labels.append([p.label for p in predictions] + [""] * padding)
        self.texts["image_name"].append(_image_name(volume))
        self.texts["true_label_name"].append(prov.true_label_name or "")
        self.texts["top1_label"].append(predictions[0].label if predictions else "")
        self.texts["volume_metadata"].append(volume.metadata_json())
        self.step += 1

    def _check(self, volume: ActivationVolume) -> None:
        first = self.first
        differences = [
            (what, mine, theirs) for what, mine, theirs in (
                ("grid (levels, height, width)", volume.shape, first.shape),
                ("levels", volume.level_names, first.level_names),
                ("level spacing", volume.level_spacing, first.level_spacing),
                ("arrays", sorted(volume.arrays), sorted(first.arrays)),
                ("evidence map", volume.evidence is not None, self.has_evidence),
                ("normalisation", volume.normalization, first.normalization),
                ("model", (volume.provenance.model, volume.provenance.weights),
                 (first.provenance.model, first.provenance.weights)),
                ("ranking", (volume.provenance.rank_by, volume.provenance.rank_target),
                 (first.provenance.rank_by, first.provenance.rank_target)),
                ("number of predictions", len(volume.predictions), len(first.predictions)),
            ) if mine != theirs]
        if differences:
            what, mine, theirs = differences[0]
            hint = (": with fit short-side images of different shapes get different grids; use fit center-crop "
                    "(or images of one size)" if what.startswith("grid") else "")
            raise FormatError(
                f"{_image_name(volume)} does not fit the set file: its {what} is {_shown(mine)}, the first "
                f"image's ({_image_name(first)}) {_shown(theirs)}. Every image of a single-file set needs the same "
                f"grid, levels, ranks, model, ranking and normalisation{hint}; nothing was written")

    def finish(self, count: int | None) -> None:
        """The text variables and the global attributes, once every volume is in."""
        nc, steps = self.nc, self.step
        for name, long_name in (
                ("image_name", "file name of the image"),
                ("true_label_name", "the image's true label as the set gives it (its folder name or list-file "
                                    "label; empty: unknown)"),
                ("top1_label", "class label of the network's most probable class for the image"),
                ("volume_metadata", "all metadata of the image's volume as JSON (cnn_engine's "
                                    "ActivationVolume.metadata)")):
            self._text(name, self.texts[name], ("time",), dict(long_name=long_name))
        labels = [label for row in self.prediction_labels for label in row]
        self._text("prediction_label", labels, ("time", "prediction"),
                   {**PREDICTION_LABEL_ATTRIBUTES, "coordinates": IMAGE_COORDINATES})
        attributes = global_attributes(self.first)
        for name in ("image_path", "image_sha256", "set_index", "true_label", "true_label_name"):
            attributes.pop(name, None)  # one image's: they are per time step here
        prov = self.first.provenance
        attributes.update(
            title=f"{prov.model} activations of {steps} image{'s' if steps != 1 else ''}, one per time step",
            comment=attributes["comment"] + " time = position of the image in this file; image_name names it.",
            cnn_format=SET_FORMAT_NAME,
            image_count=np.int32(steps))
        if count is not None:
            attributes["set_size"] = np.int32(count)
        if self.steps is not None:
            attributes.update(self.steps.attributes)
            for name, size in self.steps.dimensions.items():
                nc.createDimension(name, size)
            for name, (dims, values, var_attributes) in self.steps.variables.items():
                values = np.asarray(values)
                if values.dtype.kind in "OUS":
                    self._text(name, [str(v) for v in values.reshape(-1)], dims, var_attributes)
                    continue
                var = create_variable(nc, name, values.dtype.str[1:], dims)
                set_attributes(var, **var_attributes)
                var[:] = values
        set_attributes(nc, **attributes)

    def _text(self, name: str, strings: list[str], dims: tuple[str, ...], attributes: dict[str, Any]) -> None:
        chars = text_array(strings)
        self.nc.createDimension(f"{name}_strlen", chars.shape[1])
        var = create_variable(self.nc, name, "c", dims + (f"{name}_strlen",))
        set_attributes(var, **{**attributes, "_Encoding": "utf-8"})
        shape = tuple(len(self.nc.dimensions[d]) for d in dims) + (chars.shape[1],)
        var[:] = chars.reshape(shape)


def _copy_dataset(source: Any, target: Any) -> None:
    """Copy an open netCDF4 dataset into an empty one: dimensions, attributes and variables
    (all defined first, so a netCDF-3 target never moves data), then the values, one time step of
    one variable at a time (memory: one image's variable)."""
    for name, dimension in source.dimensions.items():
        target.createDimension(name, None if dimension.isunlimited() else len(dimension))
    set_attributes(target, **{name: source.getncattr(name) for name in source.ncattrs()})
    for name, var in source.variables.items():
        kind = "c" if var.dtype == np.dtype("S1") else np.dtype(var.dtype).str[1:]
        copy = create_variable(target, name, kind, var.dimensions)
        set_attributes(copy, **{attribute: var.getncattr(attribute) for attribute in var.ncattrs()})
    steps = len(source.dimensions["time"])
    for name, var in source.variables.items():
        if var.dimensions[:1] == ("time",):
            for t in range(steps):
                target.variables[name][t] = var[t]
        else:
            target.variables[name][:] = var[:]


def _image_name(volume: ActivationVolume) -> str:
    path = volume.provenance.image_path
    return Path(path).name if path else "an image without a file"


def _shown(value: Any) -> str:
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(map(str, value[:6]))}, ... ({len(value)})]"
    return str(value)


class VolumeSetFile(Sequence[ActivationVolume]):
    """The volumes of a set file, read one at a time when asked for: ``len()``, indexing (negative
    too; a slice gives a list), iteration. ``names`` are the images' file names, ``path`` the file.
    The file is opened for each volume read, so nothing stays open in between."""

    def __init__(self, path: str | os.PathLike) -> None:
        with VolumeFile(path, mmap=True, expect=SET_FORMAT_NAME) as nc:
            self.path = nc.path
            self._count = nc.dimension_size("time")
            self.names: tuple[str, ...] = tuple(_strings(nc.array("image_name")))

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> ActivationVolume: ...

    @overload
    def __getitem__(self, index: slice) -> list[ActivationVolume]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        position = int(index) + (self._count if int(index) < 0 else 0)
        if not 0 <= position < self._count:
            raise IndexError(f"volume {index} of a set file with {self._count}")
        with VolumeFile(self.path, mmap=True, expect=SET_FORMAT_NAME) as nc:
            metadata = json.loads(_strings(nc.array("volume_metadata", position)[np.newaxis])[0])
            names = rank_names(nc.names) + (["layercam"] if "layercam" in nc.names else [])
            arrays = {name: np.ascontiguousarray(upright(nc.array(name, position).astype(np.float32)))
                      for name in names}
            image = np.ascontiguousarray(nc.array("image_rgb", position)[::-1].astype(np.uint8))
            evidence = None
            if "target_evidence" in nc.names:
                evidence = np.ascontiguousarray(nc.array("target_evidence", position)[::-1].astype(np.float32))
        return ActivationVolume.from_parts(arrays, image, metadata, evidence)

    def __iter__(self) -> Iterator[ActivationVolume]:
        for position in range(self._count):
            yield self[position]

    def __repr__(self) -> str:
        return f"VolumeSetFile({str(self.path)!r}: {self._count} volumes)"


def read_set_netcdf(path: str | os.PathLike) -> VolumeSetFile:
    """The volumes of a file written by :func:`write_set_netcdf` (either format), in file order,
    each read when first asked for (arrays in image order, as :func:`cnn_engine.read_netcdf`)."""
    return VolumeSetFile(path)


def _strings(chars: np.ndarray) -> list[str]:
    """The strings of an (n, width) char array (UTF-8 bytes, NUL padded)."""
    return [bytes(row.tobytes()).rstrip(b"\0").decode("utf-8") for row in np.asarray(chars, dtype="S1")]
