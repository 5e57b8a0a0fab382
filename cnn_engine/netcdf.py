"""Activation volumes as CF netCDF files that ParaView's stock NetCDF reader opens as image data.

Two formats (:data:`NETCDF_FORMATS`), one layout: ``netcdf4`` (the default) is netCDF-4 (HDF5)
written through the netCDF4 library, each large variable deflated (zlib level
:data:`DEFLATE_LEVEL`; byte-shuffled first for bilinear volumes, see :func:`shuffles`), chunked per level (one chunk = one level's (y, x)
plane of one variable); ``netcdf3`` is netCDF-3 with 64-bit offsets, uncompressed, written by
scipy exactly as before netCDF-4 existed here. Both have the same dimensions, variables, types
and attributes, and :func:`read_netcdf` reads both (it tells them apart by their first bytes).

Layout (CF-1.8), upright like VTK (see :mod:`cnn_engine.volume`):

* dimensions ``level``, ``y``, ``x``; coordinate variables of the same names, in input pixels
  (``x`` = column, ``y`` = height - 1 - row, ``level`` = index x level spacing, from which
  ParaView takes the Z spacing), units ``1`` (pixels are counts: UDUNITS has no "pixel"). No
  ``axis`` attributes: with them the CF reader would take x/y for longitude/latitude and build a
  sphere.
* ``rank0`` ... ``rank{K-1}`` (level, y, x) float32: the k-th best channel of each level, by the
  ranking the ``level_channel_score`` attributes name (``ranking``; ``target_index`` for the
  class rankings ``effect`` and ``ablation``).
* ``layercam`` (level, y, x) float32, when the volume has it (evidence ``layercam``): each
  level's LayerCAM map for the class in its attributes, upright like the ranks.
* ``image_luminance`` (level, y, x): the input picture's luminance, repeated on every level so
  the stock reader loads it beside the activations; ``image_rgb`` (y, x, rgb): the picture.
* per-level metadata as variables along ``level``: ``level_index`` (0, 1, 2, ...),
  ``level_name``, ``level_type`` (char), ``level_native_shape`` (channels, height, width),
  ``level_stride``, ``level_receptive_field``, ``level_offset`` (rows, columns, input pixels:
  cell (r, c) is centred on image row ``offset[0] + r * stride[0]``, column ``offset[1] + c *
  stride[1]``, input pixel (0, 0) centred at 0; NaN where unknown), ``level_geometry`` (char:
  ``exact`` or what was assumed), ``level_channel_index``, ``level_channel_score``,
  ``level_raw_min``, ``level_raw_max``; predictions along ``prediction``; ``target_evidence``
  (y, x), the class evidence map when the volume has one, its method and class in its attributes
  and in ``cnn_metadata``.
* ``level_index`` and ``level_name`` are CF auxiliary coordinates (the ``coordinates`` attribute
  of every variable along ``level``), ``prediction_label`` likewise for the predictions, so
  xarray makes them coordinates: ``ds.isel(level=3)``,
  ``ds.swap_dims(level="level_index").sel(level_index=3)``,
  ``ds.swap_dims(level="level_name").sel(level_name="layer1.0")``.
* text: char variables (``<name>_strlen`` as last dimension) hold the UTF-8 bytes of each
  string, NUL padded, with ``_Encoding = "utf-8"`` (the netCDF attribute xarray and
  netCDF4-python decode by); text attributes are UTF-8 too. Every variable has a
  ``long_name``, and ``units`` unless it holds text, indices or counts.
* global attributes: CF ``Conventions``/``title``/``source``/``history``, provenance (with
  ``set_index``, ``true_label`` and ``true_label_name`` for an image of a set, when known), and
  ``cnn_metadata``: all metadata as one JSON text, which is what :func:`read_netcdf` trusts.
  Files written before the set fields existed read with them None.
* netCDF-4 only: the large variables (``rank*``, ``layercam``, ``image_luminance``,
  ``image_rgb``, ``target_evidence``) are chunked and compressed, the rest stored plain; no
  variable has a ``_FillValue`` (as in netCDF-3). netCDF-C records no times in the HDF5
  objects, so with ``SOURCE_DATE_EPOCH`` two writes are byte-identical in both formats.

A set of volumes in one file (leading ``time`` dimension): :mod:`cnn_engine.set_netcdf`.

Naming rule: ParaView's stock reader loads the variables sharing the dimensions of the
alphabetically first multi-dimensional variable. That is ``image_luminance`` (level, y, x):
every other variable's name sorts after it (``layercam``, ``level_*``, ``prediction_*``,
``rank*``, ``target_evidence``), and ``image_rgb`` follows it, or the reader would pick their dimensions.

Files are written to a temporary name beside the target and renamed into place only when
complete (:func:`cnn_engine.atomic.atomic_write`): an error never leaves a half-written file.
HDF5 cannot write to that temporary (it has no name), so netCDF-4 goes through a scratch file
that has a name only while HDF5 creates it (:func:`atomic_write_netcdf4`).

Inside ParaView import netCDF4 only through :func:`netcdf4_library` (see there).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import numpy as np
from scipy.io import netcdf_file

from .atomic import _hidden_prefix, atomic_write, check_writable  # check_writable: the front ends import it from here
from .errors import FormatError
from .volume import ActivationVolume, luminance, rank_names, upright

FORMAT_NAME = "cnn_engine activation volume"
FORMAT_VERSION = 1
#: The file formats :func:`write_netcdf` writes (and ``cnnvis export --format`` offers).
NETCDF_FORMATS = ("netcdf4", "netcdf3")
#: Compressed netCDF-4: a ResNet-50 volume is about a fifth of its netCDF-3 size, and every reader
#: of the project (ParaView's stock NetCDF reader, the plugin, xarray, ncdump) opens it.
DEFAULT_NETCDF_FORMAT = "netcdf4"
#: zlib level of the netCDF-4 variables. Measured on ResNet-50 volumes (19 levels x 4 ranks x
#: 224 x 224, normalised; netCDF-3 19.4 MB written in 0.035 s): level 1 4.3 MB in 0.14 s, level 4
#: 4.1 MB in 0.20 s. Level 1: the write time is what a set export waits for.
DEFLATE_LEVEL = 1


def shuffles(volume: ActivationVolume) -> bool:
    """Whether the large variables of ``volume``'s netCDF-4 file are byte-shuffled before deflate.

    With the default nearest resampling the repeated values compress well as they are: shuffling
    made a ResNet-50 file 8% larger and its write 36% slower (0.12 s against 0.078 s), time a set
    export waits for. With bilinear resampling it made files 20% smaller and writes faster.
    """
    return volume.provenance.interpolation != "nearest"

#: The first bytes of each format: netCDF-3 classic / 64-bit offset, and HDF5 (netCDF-4).
_NETCDF3_MAGIC = (b"CDF\x01", b"CDF\x02")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: What netCDF-4 needs when it is missing (pyproject.toml pins it; scripts/setup.sh installs it).
_NETCDF4_MISSING = ("netCDF-4 files need the Python package netCDF4, which is not installed: run scripts/setup.sh "
                    "(or pip install netCDF4), or use the netcdf3 format")
#: What the files follow: checked with the IOOS compliance checker (cf:1.8), units UDUNITS-valid.
CONVENTIONS = "CF-1.8"
#: The auxiliary coordinates of every variable along ``level`` (CF section 5 and 6.1, labels).
LEVEL_COORDINATES = "level_index level_name"
#: How the per-level geometry variables map cells to pixels (the ``comment`` of each).
GEOMETRY_COMMENT = (
    "input pixels, (rows, columns), image order (row 0 at the top; in this file's upright y, row r is "
    "y = height - 1 - r), input pixel (0, 0) centred at 0.0: cell (r, c) of a level is centred on input "
    "position (level_offset[0] + r * level_stride[0], level_offset[1] + c * level_stride[1]) and drawn "
    "there; it sees a level_receptive_field[0] x level_receptive_field[1] pixel region around that centre. "
    "Worked out from the network graph (kernel, stride, padding, dilation of each operation); "
    "level_geometry says whether exactly. NaN where unknown"
)
#: What a channel's score is, per ranking (the ``comment`` of ``level_channel_score``).
RANKINGS = {
    "mean": "mean activation of the channel's map",
    "max": "largest activation of the channel's map",
    "l2": "Euclidean norm of the channel's map",
    "effect": "first-order effect on the target class's log-probability: sum over cells of "
              "d log p_target / d activation x activation",
    "ablation": "drop of the target class's probability when the channel is set to zero",
}


def parse_netcdf_format(format: str) -> str:
    """``format`` checked against :data:`NETCDF_FORMATS` (case and ``-`` forgiven), or a FormatError."""
    name = str(format).strip().lower().replace("-", "")
    if name not in NETCDF_FORMATS:
        raise FormatError(f"unknown netCDF format {format!r}: choose one of {', '.join(NETCDF_FORMATS)}")
    return name


def write_netcdf(volume: ActivationVolume, path: str | os.PathLike, format: str = DEFAULT_NETCDF_FORMAT) -> Path:
    """Write ``volume`` to ``path`` atomically (temporary file, then rename). Returns the path.

    ``format``: ``netcdf4`` (compressed netCDF-4, the default) or ``netcdf3`` (netCDF-3, 64-bit
    offsets, uncompressed: about five times larger); see the module docstring.
    Raises :class:`OutputError` for a location that cannot take the file (see
    :mod:`cnn_engine.atomic`); the temporary file is gone whatever happens, signals included.
    """
    format = parse_netcdf_format(format)
    path = check_writable(path)
    if format == "netcdf3":
        return atomic_write(path, lambda temporary: _write_netcdf3(volume, temporary), what="netCDF file")
    # HDF5's scratch file goes in the system's temporary folder: see atomic_write_netcdf4.
    return atomic_write_netcdf4(path, lambda nc: _write_volume(nc, volume), Path(tempfile.gettempdir()))


def global_attributes(volume: ActivationVolume) -> dict[str, Any]:
    """The global attributes of ``volume``'s file (text as str; :func:`set_attributes` encodes it)."""
    prov = volume.provenance
    return dict(
        Conventions=CONVENTIONS,
        title=f"{prov.model} activations of {Path(prov.image_path).name if prov.image_path else 'an image'}",
        source=f"cnn_engine {prov.engine_version}",
        history=f"{prov.created} created by cnn_engine {prov.engine_version}",
        comment=("x, y, level in input pixels; upright (y up, image row 0 at y = height - 1); "
                 "level = level index x level_spacing. rankK = K-th best channel of each layer by the ranking "
                 "level_channel_score names. Level geometry: see level_offset. "
                 "Select a level by index: ds.swap_dims(level='level_index').sel(level_index=3) in xarray."),
        cnn_format=FORMAT_NAME,
        cnn_format_version=np.int32(FORMAT_VERSION),
        model=prov.model,
        weights=prov.weights,
        trained=np.int32(-1 if prov.trained is None else prov.trained),  # 1 yes, 0 no, -1 unknown
        image_path=prov.image_path or "",
        image_sha256=prov.image_sha256,
        normalization=volume.normalization,
        level_spacing=np.float64(volume.level_spacing),
        # Only when known, so that a file of a single image is what it was before sets existed.
        **({} if prov.set_index is None else {"set_index": np.int32(prov.set_index)}),
        **({} if prov.true_label is None else {"true_label": np.int32(prov.true_label)}),
        **({} if prov.true_label_name is None else {"true_label_name": prov.true_label_name}),
    )


def _write_netcdf3(volume: ActivationVolume, temporary: str) -> None:
    with netcdf_file(temporary, "w", version=2) as nc:
        _write_volume(nc, volume)


def atomic_write_netcdf4(path: Path, write: Callable[[Any], None], scratch: Path | None = None) -> Path:
    """:func:`atomic_write` of a netCDF-4 file that ``write(dataset)`` fills. Returns ``path``.

    :func:`atomic_write`'s temporary has no name (``/proc/self/fd/N``), which HDF5 cannot open: it
    resolves the name it is given, and an unnamed file's does not resolve. So HDF5 writes to a
    scratch file of :func:`unnamed_netcdf4` in the folder ``scratch`` (default: ``path``'s), whose
    bytes are copied (in the kernel where it can) into the temporary once the dataset is
    complete. The scratch file is made, and its name removed, before the temporary exists. A
    single volume (a few MB) is made in the system's temporary folder: a process killed in the
    milliseconds in which the scratch file has a name (ParaView's SIGTERM handler in pvpython,
    SIGKILL) then leaves nothing in the output folder. (HDF5's in-memory files were no way out:
    they stamp the creation time into the root group, so two writes would differ.)
    """
    with unnamed_netcdf4(path, scratch) as (nc, source):
        def finish(temporary: str) -> None:
            write(nc)
            nc.close()
            with open(temporary, "wb") as target:
                _copy_file(source, target.fileno())

        return atomic_write(path, finish, what="netCDF file")


@contextlib.contextmanager
def unnamed_netcdf4(path: Path, folder: Path | None = None) -> Iterator[tuple[Any, int]]:
    """A new netCDF-4 ``netCDF4.Dataset`` on a hidden scratch file in ``folder`` (default: beside
    ``path``) whose name is removed as soon as HDF5 has it open, and a descriptor that reads that
    file's bytes. It has a name only for the milliseconds HDF5 takes to create the file (a process
    killed then leaves ``.NAME.XXXXXXXX.hdf5.part``, which the next write there removes); signals
    handled in Python remove it at once. The dataset is closed at the end (if still open) and the
    file is then gone.
    """
    _remove_stale_scratch(folder or path.parent)
    prefix = _hidden_prefix(path)  # atomic's: ``.NAME.``, shortened to fit the file-name limit
    try:
        handle, staging = tempfile.mkstemp(prefix=prefix, suffix=".hdf5.part", dir=folder or path.parent)
    except OSError:
        if folder is None:
            raise
        handle, staging = tempfile.mkstemp(prefix=prefix, suffix=".hdf5.part", dir=path.parent)
    os.close(handle)
    nc: Any = None
    source: int | None = None
    try:
        nc = open_netcdf4(staging, "w")
        source = os.open(staging, os.O_RDONLY)  # the file HDF5 writes, readable without a name
        os.unlink(staging)
        staging = None
        yield nc, source
    finally:
        if nc is not None and nc.isopen():
            with contextlib.suppress(Exception):
                nc.close()
        if source is not None:
            os.close(source)
        if staging is not None:
            with contextlib.suppress(OSError):
                os.unlink(staging)


#: A scratch file older than this still has a name only because its process was killed in the
#: milliseconds between creating and unnaming it.
_STALE_SCRATCH_SECONDS = 600


def _remove_stale_scratch(folder: Path) -> None:
    """Remove the named scratch files of killed processes (see :func:`unnamed_netcdf4`)."""
    with contextlib.suppress(OSError):
        now = time.time()
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and entry.name.endswith(".hdf5.part"):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > _STALE_SCRATCH_SECONDS:
                        os.unlink(entry.path)


def _copy_file(source: int, target: int) -> None:
    """Copy all of descriptor ``source`` to ``target`` (at their current offsets)."""
    try:
        while os.copy_file_range(source, target, 1 << 30):
            pass
        return
    except OSError as exc:  # file systems or kernels without it: copy through memory instead
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    os.lseek(source, 0, os.SEEK_SET)
    os.lseek(target, 0, os.SEEK_SET)
    os.ftruncate(target, 0)
    while block := os.read(source, 1 << 22):
        view = memoryview(block)
        while view:
            view = view[os.write(target, view):]


def _write_volume(nc: Any, volume: ActivationVolume) -> None:
    """The layout of the module docstring, into an open scipy ``netcdf_file`` or ``netCDF4.Dataset``
    (the order of the calls is the order of the netCDF-3 header: kept, so its bytes stay as they were)."""
    levels, height, width = volume.shape
    top_k = volume.top_k
    prov = volume.provenance
    set_attributes(nc, **global_attributes(volume), cnn_metadata=volume.metadata_json())

    for name, size in (("level", levels), ("y", height), ("x", width), ("rank", top_k), ("rgb", 3),
                       ("shape3", 3), ("yx", 2), ("prediction", max(1, len(volume.predictions)))):
        nc.createDimension(name, size)
    write_grid_coordinates(nc, volume)
    # Along level: level_index and level_name are the auxiliary coordinates of every variable.
    write_variable(nc, "level_index", "i4", ("level",), np.arange(levels),
                   "level index: 0 = network input, then the layers in execution order")

    for k, name in enumerate(rank_names(volume.arrays)):
        var = create_variable(nc, name, "f4", ("level", "y", "x"), chunks=(1, height, width),
                              shuffle=shuffles(volume))
        set_attributes(var, **rank_attributes(volume, k))
        var[:] = upright(volume.arrays[name])
    if "layercam" in volume.arrays:
        # Not a rank: the class evidence of every level, on the same grid (upright like the ranks).
        var = create_variable(nc, "layercam", "f4", ("level", "y", "x"), chunks=(1, height, width),
                              shuffle=shuffles(volume))
        set_attributes(var, **layercam_attributes(volume))
        var[:] = upright(volume.arrays["layercam"])

    # The stock reader loads the variables sharing the dimensions of the alphabetically first
    # multi-dimensional variable: image_luminance (level, y, x). Every other variable's name
    # sorts after it (layercam, level_*, prediction_*), or the reader would pick their dimensions.
    luma = create_variable(nc, "image_luminance", "f4", ("level", "y", "x"), chunks=(1, height, width),
                              shuffle=shuffles(volume))
    set_attributes(luma, **LUMINANCE_ATTRIBUTES)
    luma[:] = np.broadcast_to(luminance(volume.image)[::-1], (levels, height, width))
    # netCDF-3 has no unsigned byte: the picture is stored as 16-bit integers.
    image = create_variable(nc, "image_rgb", "i2", ("y", "x", "rgb"), chunks=(height, width, 3),
                            shuffle=shuffles(volume))
    set_attributes(image, **IMAGE_ATTRIBUTES)
    image[:] = volume.image[::-1].astype(np.int16)

    write_level_table(nc, volume)
    write_variable(nc, "level_channel_index", "i4", ("level", "rank"), [lv.channels for lv in volume.levels],
                   **CHANNEL_INDEX_ATTRIBUTES)
    write_variable(nc, "level_channel_score", "f4", ("level", "rank"), [lv.scores for lv in volume.levels],
                   **channel_score_attributes(volume))
    write_variable(nc, "level_raw_min", "f4", ("level",), [lv.raw_min for lv in volume.levels], **RAW_MIN_ATTRIBUTES)
    write_variable(nc, "level_raw_max", "f4", ("level",), [lv.raw_max for lv in volume.levels], **RAW_MAX_ATTRIBUTES)
    predictions = volume.predictions
    write_variable(nc, "prediction_index", "i4", ("prediction",), [p.index for p in predictions] or [-1],
                   **PREDICTION_INDEX_ATTRIBUTES)
    write_variable(nc, "prediction_probability", "f4", ("prediction",),
                   [p.probability for p in predictions] or [np.nan], **PREDICTION_PROBABILITY_ATTRIBUTES)
    write_text(nc, "prediction_label", [p.label for p in predictions] or [""], "prediction",
               **PREDICTION_LABEL_ATTRIBUTES)
    if volume.evidence is not None and volume.evidence_info is not None:
        # Named to sort after image_luminance, like the level_* variables (see above).
        evidence = create_variable(nc, "target_evidence", "f4", ("y", "x"), chunks=(height, width),
                                   shuffle=shuffles(volume))
        set_attributes(evidence, **evidence_attributes(volume))
        evidence[:] = volume.evidence[::-1]


# What each variable is: shared by the single-volume layout above and the set layout
# (cnn_engine.set_netcdf), so both describe their variables in the same words.
LUMINANCE_ATTRIBUTES = dict(long_name="network input picture luminance (Rec. 601), 0-255, repeated on every level",
                            units="1", coordinates=LEVEL_COORDINATES)
IMAGE_ATTRIBUTES = dict(long_name="network input picture, red green blue, 0-255 per channel, upright", units="1")
CHANNEL_INDEX_ATTRIBUTES = dict(long_name="kept channel indices, best first (-1: the layer has fewer channels)",
                                coordinates=LEVEL_COORDINATES)
RAW_MIN_ATTRIBUTES = dict(long_name="minimum raw activation of the kept maps", units="1",
                          coordinates=LEVEL_COORDINATES)
RAW_MAX_ATTRIBUTES = dict(long_name="maximum raw activation of the kept maps", units="1",
                          coordinates=LEVEL_COORDINATES)
PREDICTION_INDEX_ATTRIBUTES = dict(long_name="class index of the top predictions, most probable first",
                                   coordinates="prediction_label")
PREDICTION_PROBABILITY_ATTRIBUTES = dict(long_name="softmax probability", units="1", coordinates="prediction_label")
PREDICTION_LABEL_ATTRIBUTES = dict(long_name="class label of the top predictions, most probable first")


def rank_attributes(volume: ActivationVolume, k: int) -> dict[str, Any]:
    return dict(long_name=f"activation of the channel ranked {k + 1} in each layer ({volume.provenance.rank_by})",
                units="1", coordinates=LEVEL_COORDINATES, normalization=volume.normalization)


def layercam_attributes(volume: ActivationVolume) -> dict[str, Any]:
    return dict(long_name=f"LayerCAM class evidence of each level for {_evidence_target(volume)}", units="1",
                coordinates=LEVEL_COORDINATES, normalization=volume.normalization, method="layercam",
                comment="Jiang et al. 2021: per cell, the positive part of the class score's gradient times the "
                        "activation, summed over channels; drawn with each level's geometry (level_offset)",
                **_target_attributes(volume))


def channel_score_attributes(volume: ActivationVolume) -> dict[str, Any]:
    rank_by = volume.provenance.rank_by
    return dict(long_name=f"ranking score ({rank_by}) of each kept channel", units="1",
                coordinates=LEVEL_COORDINATES, ranking=rank_by, comment=RANKINGS.get(rank_by, rank_by),
                **_rank_target(volume))


def evidence_attributes(volume: ActivationVolume) -> dict[str, Any]:
    info = volume.evidence_info
    return dict(long_name=f"class evidence map ({info.method}) for {info.target_label} (class {info.target_index}), "
                          "upright",
                units="1", method=info.method, target_index=np.int32(info.target_index),
                target_label=info.target_label)


def write_grid_coordinates(nc: Any, volume: ActivationVolume) -> None:
    """The coordinate variables ``x``, ``y`` and ``level`` (their dimensions must exist)."""
    levels, height, width = volume.shape
    _coordinate(nc, "x", np.arange(width, dtype=np.float32), "image column in input pixels (network input grid)")
    _coordinate(nc, "y", np.arange(height, dtype=np.float32), "image row in input pixels, counted from the bottom")
    _coordinate(nc, "level", np.arange(levels, dtype=np.float32) * np.float32(volume.level_spacing),
                "network depth in input pixels: level index x level_spacing")


def write_level_table(nc: Any, volume: ActivationVolume) -> None:
    """What every level is, the same for every image of a set: names, types, shapes, geometry."""
    write_text(nc, "level_name", [lv.name for lv in volume.levels], "level",
               "layer name (input for the network input)")
    write_text(nc, "level_type", [lv.layer_type for lv in volume.levels], "level", "layer type (module class)",
               coordinates=LEVEL_COORDINATES)
    write_variable(nc, "level_native_shape", "i4", ("level", "shape3"), [lv.native_shape for lv in volume.levels],
                   "layer output channels, height, width", coordinates=LEVEL_COORDINATES)
    # Geometry in input pixels (units "1", like x and y: UDUNITS has no pixel), image order.
    write_variable(nc, "level_stride", "f8", ("level", "yx"), [lv.stride for lv in volume.levels],
                   "distance between neighbouring cells in input pixels (rows, columns)", units="1",
                   coordinates=LEVEL_COORDINATES, comment=GEOMETRY_COMMENT)
    write_variable(nc, "level_receptive_field", "f8", ("level", "yx"), [lv.receptive_field for lv in volume.levels],
                   "receptive field of one cell in input pixels (rows, columns): the side of the input region "
                   "it sees", units="1", coordinates=LEVEL_COORDINATES, comment=GEOMETRY_COMMENT)
    write_variable(nc, "level_offset", "f8", ("level", "yx"), [lv.offset for lv in volume.levels],
                   "centre of cell (0, 0) in input pixels (image row from the top, column), input pixel (0, 0) "
                   "centred at 0", units="1", coordinates=LEVEL_COORDINATES, comment=GEOMETRY_COMMENT)
    write_text(nc, "level_geometry", [lv.geometry for lv in volume.levels], "level",
               "how each level's geometry was found: exact (every operation on the path understood), or what "
               "was assumed", coordinates=LEVEL_COORDINATES)


def _rank_target(volume: ActivationVolume) -> dict[str, Any]:
    """``target_index`` (and ``target_label`` when the volume knows it) of the class the ranking was
    made for (``effect``, ``ablation``); nothing for the other rankings."""
    target = volume.provenance.rank_target
    if target is None:
        return {}
    labels = [p.label for p in volume.predictions if p.index == target]
    if volume.evidence_info is not None and volume.evidence_info.target_index == target:
        labels.append(volume.evidence_info.target_label)
    return {"target_index": np.int32(target), **({"target_label": labels[0]} if labels else {})}


def _evidence_target(volume: ActivationVolume) -> str:
    info = volume.evidence_info
    return f"{info.target_label} (class {info.target_index})" if info is not None else "the target class"


def _target_attributes(volume: ActivationVolume) -> dict[str, Any]:
    info = volume.evidence_info
    if info is None:
        return {}
    return {"target_index": np.int32(info.target_index), "target_label": info.target_label}


def set_attributes(target: Any, **attributes: Any) -> None:
    """Set netCDF attributes on a file or variable of either library; text as UTF-8 bytes, which both
    store as a char attribute (scipy would encode str as ASCII and fail on é; netCDF4 would make a
    non-ASCII str a netCDF-4 string attribute, which ParaView's reader cannot read)."""
    for name, value in attributes.items():
        value = value.encode("utf-8") if isinstance(value, str) else value
        if hasattr(target, "setncattr"):  # netCDF4 (where setattr would also work, but not for every name)
            target.setncattr(name, value)
        else:
            setattr(target, name, value)


def create_variable(nc: Any, name: str, kind: str, dims: tuple[str, ...],
                    chunks: tuple[int, ...] | None = None, compress: bool = True, shuffle: bool = True) -> Any:
    """A variable of type ``kind`` (``f4``, ``f8``, ``i4``, ``i2``, ``c``) in either library's file.

    In netCDF-4, ``chunks`` makes it chunked that way and (unless ``compress`` is false) deflated
    (level :data:`DEFLATE_LEVEL`), byte-shuffled first unless ``shuffle`` is false (see
    :func:`shuffles`); without ``chunks``, it is stored plain. No ``_FillValue`` either way (nor in netCDF-3), and values go in and out as plain arrays (no masking, no
    char-to-string).
    """
    if isinstance(nc, netcdf_file):
        return nc.createVariable(name, kind, dims)
    options: dict[str, Any] = {"fill_value": False}
    chunked = chunks is not None and nc.data_model.startswith("NETCDF4")
    if chunked:
        options["chunksizes"] = chunks
        if compress:
            options.update(compression="zlib", complevel=DEFLATE_LEVEL, shuffle=shuffle)
    var = nc.createVariable(name, "S1" if kind == "c" else kind, dims, **options)
    var.set_auto_maskandscale(False)
    var.set_auto_chartostring(False)
    if chunked:
        # A cache of one chunk: every chunk is written whole, once, so it is compressed and stored at
        # once instead of being held (netCDF-C keeps up to 64 MiB of chunks per variable by default,
        # and a size of 0 means that default: a set file's memory then grew with every image).
        var.set_var_chunk_cache(size=int(np.prod(chunks)) * np.dtype(kind).itemsize, nelems=1, preemption=1.0)
    return var


def _coordinate(nc: Any, name: str, values: np.ndarray, long_name: str) -> None:
    var = create_variable(nc, name, "f4", (name,))
    # Input pixels are counts: dimensionless "1" (UDUNITS knows no "pixel").
    set_attributes(var, long_name=long_name, units="1")
    var[:] = values


def write_variable(nc: Any, name: str, kind: str, dims: tuple[str, ...], values: Any, long_name: str,
                   **attributes: Any) -> None:
    """A plain (uncompressed) variable holding ``values``, with its ``long_name`` and attributes."""
    var = create_variable(nc, name, kind, dims)
    set_attributes(var, long_name=long_name, **attributes)
    var[:] = np.asarray(values, dtype=kind)


def text_array(strings: list[str], width: int | None = None) -> np.ndarray:
    """The UTF-8 bytes of each string, NUL padded to ``width`` (default: the longest, at least 1),
    as an (n, width) ``S1`` array: what a char variable holds."""
    encoded = [s.encode("utf-8") for s in strings]
    width = width or max(1, max((len(s) for s in encoded), default=1))
    padded = b"".join(s.ljust(width, b"\0") for s in encoded)
    return np.frombuffer(padded, dtype="S1").reshape(len(encoded), width)


def write_text(nc: Any, name: str, strings: list[str], dim: str, long_name: str, **attributes: Any) -> None:
    """A char variable (dim, <name>_strlen): the UTF-8 bytes of each string, NUL padded."""
    chars = text_array(strings)
    nc.createDimension(f"{name}_strlen", chars.shape[1])
    var = create_variable(nc, name, "c", (dim, f"{name}_strlen"))
    # _Encoding: the netCDF attribute by which xarray and netCDF4-python decode chars to strings.
    set_attributes(var, long_name=long_name, _Encoding="utf-8", **attributes)
    var[:] = chars


_NETCDF4_LOCK = threading.Lock()


def netcdf4_library() -> ModuleType:
    """The netCDF4 module (imported on first use, so that netCDF-3 work never needs it).

    Imported with ``RTLD_DEEPBIND``: its wheel brings its own netCDF-C and HDF5 libraries, and
    inside ParaView (which links Debian's libnetcdf and libhdf5 into the process) their calls
    would otherwise bind to ParaView's copies of the same functions, of other versions: importing
    it in pvpython crashed (SIGSEGV in NC_rcfile_insert). With the flag each library keeps to its
    own dependencies, and both ParaView's NetCDF reader and netCDF4 work in one process.
    """
    module = sys.modules.get("netCDF4")
    if module is not None:
        return module
    with _NETCDF4_LOCK:
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
        try:
            import netCDF4
        except ImportError:
            raise FormatError(_NETCDF4_MISSING) from None
        finally:
            sys.setdlopenflags(flags)
    return netCDF4


def open_netcdf4(filename: str, mode: str = "w", format: str = "NETCDF4") -> Any:
    """A ``netCDF4.Dataset`` (a context manager). Writing: ``format`` NETCDF4 or NETCDF3_64BIT_OFFSET."""
    library = netcdf4_library()
    if mode == "r":
        nc = library.Dataset(filename, "r")
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        return nc
    return library.Dataset(filename, mode, format=format)


def read_netcdf(path: str | os.PathLike) -> ActivationVolume:
    """Read a volume written by :func:`write_netcdf` (either format); arrays come back in image order."""
    with VolumeFile(path) as nc:
        metadata = json.loads(nc.attribute("cnn_metadata"))
        # layercam: files written before it existed have none, and read as a volume without it.
        names = rank_names(nc.names) + (["layercam"] if "layercam" in nc.names else [])
        arrays = {name: np.ascontiguousarray(upright(nc.array(name).astype(np.float32))) for name in names}
        image = np.ascontiguousarray(nc.array("image_rgb")[::-1].astype(np.uint8))
        evidence = None
        if "target_evidence" in nc.names:
            evidence = np.ascontiguousarray(nc.array("target_evidence")[::-1].astype(np.float32))
    return ActivationVolume.from_parts(arrays, image, metadata, evidence)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a volume file (:meth:`ActivationVolume.metadata`), without its arrays."""
    with VolumeFile(path, mmap=True) as nc:
        return json.loads(nc.attribute("cnn_metadata"))


#: ``cnn_format`` of a file holding a set of volumes (see :mod:`cnn_engine.set_netcdf`).
SET_FORMAT_NAME = "cnn_engine activation volume set"


class VolumeFile:
    """A file cnn_engine wrote, open for reading, in either format: netCDF-3 through scipy (as
    always: no netCDF4 import for it), netCDF-4 through netCDF4. ``expect`` is the ``cnn_format``
    it must have: :data:`FORMAT_NAME` (one volume) or :data:`SET_FORMAT_NAME`; another cnn_engine
    file, another netCDF file or not a netCDF file at all is a :class:`FormatError` saying so.
    ``mmap`` (netCDF-3): arrays are read from the file only when used."""

    def __init__(self, path: str | os.PathLike, mmap: bool = False, expect: str = FORMAT_NAME) -> None:
        self.path = path = Path(path)
        self._mmap = mmap
        if not path.is_file():
            raise FormatError(f"netCDF file not found: {path}")
        try:
            with open(path, "rb") as handle:
                head = handle.read(8)
        except OSError as exc:
            raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from None
        if head[:4] in _NETCDF3_MAGIC:
            self.format = "netcdf3"
            opener = lambda: netcdf_file(str(path), "r", mmap=mmap)  # noqa: E731
        elif head == _HDF5_MAGIC:
            self.format = "netcdf4"
            netcdf4_library()  # outside the try below: a missing library says so itself
            opener = lambda: open_netcdf4(str(path), "r")  # noqa: E731
        else:
            raise FormatError(f"not a netCDF file: {path} (neither netCDF-3 nor netCDF-4/HDF5): "
                              "give a .nc file written by cnnvis")
        try:
            self._nc = opener()
        except Exception as exc:
            raise FormatError(f"not a readable {'netCDF-3' if self.format == 'netcdf3' else 'netCDF-4'} file: "
                              f"{path} ({exc})") from None
        kind = self.attribute("cnn_format")
        if kind != expect:
            if kind == SET_FORMAT_NAME:
                problem = (f"{path} holds a set of {self.dimension_size('time')} volumes, one per time step: "
                           "read it with cnn_engine.read_set_netcdf")
            elif kind == FORMAT_NAME:
                problem = f"{path} holds one volume, not a set: read it with cnn_engine.read_netcdf"
            else:
                problem = f"{path} is a netCDF file, but not an activation volume written by cnn_engine"
            self.close()
            raise FormatError(problem)
        self.names = frozenset(self._nc.variables)

    def attribute(self, name: str) -> str:
        """A global text attribute ('' when absent)."""
        value = getattr(self._nc, name, b"") if self.format == "netcdf3" else self._nc.__dict__.get(name, "")
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def dimension_size(self, name: str) -> int:
        size = self._nc.dimensions[name]
        if self.format == "netcdf3":
            # scipy gives None for the record (unlimited) dimension: its coordinate variable's length.
            return int(self._nc.variables[name].shape[0] if size is None else size)
        return len(size)

    def array(self, name: str, index: int | None = None) -> np.ndarray:
        """A variable's values (the ``index``-th entry along its first dimension), read into memory."""
        var = self._nc.variables[name]
        if self.format == "netcdf3":
            values = var.data if index is None else var.data[index]
            # Memory-mapped data is copied, so that the file can be closed while the array lives.
            return np.array(values) if self._mmap else values
        return np.asarray(var[:] if index is None else var[index])

    def close(self) -> None:
        self._nc.close()

    def __enter__(self) -> "VolumeFile":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def __getattr__(name: str) -> Any:
    """``write_set_netcdf`` and ``read_set_netcdf`` live in :mod:`cnn_engine.set_netcdf` (which
    imports this module); they can be imported from here too."""
    if name in ("write_set_netcdf", "read_set_netcdf"):
        from . import set_netcdf

        return getattr(set_netcdf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
