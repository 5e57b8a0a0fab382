"""Activation volumes as CF netCDF files that ParaView's stock NetCDF reader opens as image data.

Layout (netCDF-3, 64-bit offsets, CF-1.8), upright like VTK (see :mod:`cnn_engine.volume`):

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
* global attributes: CF ``Conventions``/``title``/``source``/``history``, provenance, and
  ``cnn_metadata``: all metadata as one JSON text, which is what :func:`read_netcdf` trusts.

Naming rule: ParaView's stock reader loads the variables sharing the dimensions of the
alphabetically first multi-dimensional variable. That is ``image_luminance`` (level, y, x):
every other variable's name sorts after it (``layercam``, ``level_*``, ``prediction_*``,
``rank*``, ``target_evidence``), and ``image_rgb`` follows it, or the reader would pick their dimensions.

Files are written to a temporary name beside the target and renamed into place only when
complete: an error never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import netcdf_file

from .atomic import atomic_write, check_writable  # check_writable: the front ends import it from here
from .errors import FormatError
from .volume import ActivationVolume, luminance, rank_names, upright

FORMAT_NAME = "cnn_engine activation volume"
FORMAT_VERSION = 1
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


def write_netcdf(volume: ActivationVolume, path: str | os.PathLike) -> Path:
    """Write ``volume`` to ``path`` atomically (temporary file, then rename). Returns the path.

    Raises :class:`OutputError` for a location that cannot take the file (see
    :mod:`cnn_engine.atomic`); the temporary file is gone whatever happens, signals included.
    """
    path = check_writable(path)
    return atomic_write(path, lambda temporary: _write(volume, temporary), what="netCDF file")


def _write(volume: ActivationVolume, filename: str) -> None:
    levels, height, width = volume.shape
    top_k = volume.top_k
    meta = volume.metadata_json()
    prov = volume.provenance
    with netcdf_file(filename, "w", version=2) as nc:
        _set(nc,
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
             cnn_metadata=meta)

        for name, size in (("level", levels), ("y", height), ("x", width), ("rank", top_k), ("rgb", 3),
                           ("shape3", 3), ("yx", 2), ("prediction", max(1, len(volume.predictions)))):
            nc.createDimension(name, size)
        _coordinate(nc, "x", np.arange(width, dtype=np.float32), "image column in input pixels (network input grid)")
        _coordinate(nc, "y", np.arange(height, dtype=np.float32), "image row in input pixels, counted from the bottom")
        _coordinate(nc, "level", np.arange(levels, dtype=np.float32) * np.float32(volume.level_spacing),
                    "network depth in input pixels: level index x level_spacing")
        # Along level: level_index and level_name are the auxiliary coordinates of every variable.
        _variable(nc, "level_index", "i4", ("level",), np.arange(levels),
                  "level index: 0 = network input, then the layers in execution order")

        for k, name in enumerate(rank_names(volume.arrays)):
            var = nc.createVariable(name, "f4", ("level", "y", "x"))
            _set(var, long_name=f"activation of the channel ranked {k + 1} in each layer ({prov.rank_by})",
                 units="1", coordinates=LEVEL_COORDINATES, normalization=volume.normalization)
            var[:] = upright(volume.arrays[name])
        if "layercam" in volume.arrays:
            # Not a rank: the class evidence of every level, on the same grid (upright like the ranks).
            var = nc.createVariable("layercam", "f4", ("level", "y", "x"))
            _set(var, long_name=f"LayerCAM class evidence of each level for {_evidence_target(volume)}", units="1",
                 coordinates=LEVEL_COORDINATES, normalization=volume.normalization, method="layercam",
                 comment="Jiang et al. 2021: per cell, the positive part of the class score's gradient times the "
                         "activation, summed over channels; drawn with each level's geometry (level_offset)",
                 **_target_attributes(volume))
            var[:] = upright(volume.arrays["layercam"])

        # The stock reader loads the variables sharing the dimensions of the alphabetically first
        # multi-dimensional variable: image_luminance (level, y, x). Every other variable's name
        # sorts after it (layercam, level_*, prediction_*), or the reader would pick their dimensions.
        luma = nc.createVariable("image_luminance", "f4", ("level", "y", "x"))
        _set(luma, long_name="network input picture luminance (Rec. 601), 0-255, repeated on every level",
             units="1", coordinates=LEVEL_COORDINATES)
        luma[:] = np.broadcast_to(luminance(volume.image)[::-1], (levels, height, width))
        # netCDF-3 has no unsigned byte: the picture is stored as 16-bit integers.
        image = nc.createVariable("image_rgb", "i2", ("y", "x", "rgb"))
        _set(image, long_name="network input picture, red green blue, 0-255 per channel, upright", units="1")
        image[:] = volume.image[::-1].astype(np.int16)

        _text(nc, "level_name", [lv.name for lv in volume.levels], "level", "layer name (input for the network input)")
        _text(nc, "level_type", [lv.layer_type for lv in volume.levels], "level", "layer type (module class)",
              coordinates=LEVEL_COORDINATES)
        _variable(nc, "level_native_shape", "i4", ("level", "shape3"), [lv.native_shape for lv in volume.levels],
                  "layer output channels, height, width", coordinates=LEVEL_COORDINATES)
        # Geometry in input pixels (units "1", like x and y: UDUNITS has no pixel), image order.
        _variable(nc, "level_stride", "f8", ("level", "yx"), [lv.stride for lv in volume.levels],
                  "distance between neighbouring cells in input pixels (rows, columns)", units="1",
                  coordinates=LEVEL_COORDINATES, comment=GEOMETRY_COMMENT)
        _variable(nc, "level_receptive_field", "f8", ("level", "yx"), [lv.receptive_field for lv in volume.levels],
                  "receptive field of one cell in input pixels (rows, columns): the side of the input region "
                  "it sees", units="1", coordinates=LEVEL_COORDINATES, comment=GEOMETRY_COMMENT)
        _variable(nc, "level_offset", "f8", ("level", "yx"), [lv.offset for lv in volume.levels],
                  "centre of cell (0, 0) in input pixels (image row from the top, column), input pixel (0, 0) "
                  "centred at 0", units="1", coordinates=LEVEL_COORDINATES, comment=GEOMETRY_COMMENT)
        _text(nc, "level_geometry", [lv.geometry for lv in volume.levels], "level",
              "how each level's geometry was found: exact (every operation on the path understood), or what "
              "was assumed", coordinates=LEVEL_COORDINATES)
        _variable(nc, "level_channel_index", "i4", ("level", "rank"), [lv.channels for lv in volume.levels],
                  "kept channel indices, best first (-1: the layer has fewer channels)",
                  coordinates=LEVEL_COORDINATES)
        _variable(nc, "level_channel_score", "f4", ("level", "rank"), [lv.scores for lv in volume.levels],
                  f"ranking score ({prov.rank_by}) of each kept channel", units="1", coordinates=LEVEL_COORDINATES,
                  ranking=prov.rank_by, comment=RANKINGS.get(prov.rank_by, prov.rank_by), **_rank_target(volume))
        _variable(nc, "level_raw_min", "f4", ("level",), [lv.raw_min for lv in volume.levels],
                  "minimum raw activation of the kept maps", units="1", coordinates=LEVEL_COORDINATES)
        _variable(nc, "level_raw_max", "f4", ("level",), [lv.raw_max for lv in volume.levels],
                  "maximum raw activation of the kept maps", units="1", coordinates=LEVEL_COORDINATES)
        predictions = volume.predictions
        _variable(nc, "prediction_index", "i4", ("prediction",), [p.index for p in predictions] or [-1],
                  "class index of the top predictions, most probable first", coordinates="prediction_label")
        _variable(nc, "prediction_probability", "f4", ("prediction",),
                  [p.probability for p in predictions] or [np.nan], "softmax probability", units="1",
                  coordinates="prediction_label")
        _text(nc, "prediction_label", [p.label for p in predictions] or [""], "prediction",
              "class label of the top predictions, most probable first")
        if volume.evidence is not None and volume.evidence_info is not None:
            info = volume.evidence_info
            # Named to sort after image_luminance, like the level_* variables (see above).
            evidence = nc.createVariable("target_evidence", "f4", ("y", "x"))
            _set(evidence,
                 long_name=f"class evidence map ({info.method}) for {info.target_label} (class {info.target_index}), upright",
                 units="1", method=info.method, target_index=np.int32(info.target_index),
                 target_label=info.target_label)
            evidence[:] = volume.evidence[::-1]


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


def _set(target: Any, **attributes: Any) -> None:
    """Set netCDF attributes; text as UTF-8 bytes (scipy would encode it as ASCII and fail on é)."""
    for name, value in attributes.items():
        setattr(target, name, value.encode("utf-8") if isinstance(value, str) else value)


def _coordinate(nc: netcdf_file, name: str, values: np.ndarray, long_name: str) -> None:
    var = nc.createVariable(name, "f4", (name,))
    # Input pixels are counts: dimensionless "1" (UDUNITS knows no "pixel").
    _set(var, long_name=long_name, units="1")
    var[:] = values


def _variable(nc: netcdf_file, name: str, kind: str, dims: tuple[str, ...], values: Any, long_name: str,
              **attributes: Any) -> None:
    var = nc.createVariable(name, kind, dims)
    _set(var, long_name=long_name, **attributes)
    var[:] = np.asarray(values, dtype=var.data.dtype)


def _text(nc: netcdf_file, name: str, strings: list[str], dim: str, long_name: str, **attributes: Any) -> None:
    """A char variable (dim, <name>_strlen): the UTF-8 bytes of each string, NUL padded."""
    encoded = [s.encode("utf-8") for s in strings]
    width = max(1, max(len(s) for s in encoded))
    nc.createDimension(f"{name}_strlen", width)
    var = nc.createVariable(name, "c", (dim, f"{name}_strlen"))
    # _Encoding: the netCDF attribute by which xarray and netCDF4-python decode chars to strings.
    _set(var, long_name=long_name, _Encoding="utf-8", **attributes)
    padded = b"".join(s.ljust(width, b"\0") for s in encoded)
    var[:] = np.frombuffer(padded, dtype="S1").reshape(len(encoded), width)


def read_netcdf(path: str | os.PathLike) -> ActivationVolume:
    """Read a volume written by :func:`write_netcdf`; arrays come back in image order."""
    with _open_volume_file(path) as nc:
        metadata = json.loads(_attribute(nc, "cnn_metadata"))
        # layercam: files written before it existed have none, and read as a volume without it.
        names = rank_names(nc.variables) + (["layercam"] if "layercam" in nc.variables else [])
        arrays = {name: np.ascontiguousarray(upright(nc.variables[name].data.astype(np.float32))) for name in names}
        image = np.ascontiguousarray(nc.variables["image_rgb"].data[::-1].astype(np.uint8))
        evidence = None
        if "target_evidence" in nc.variables:
            evidence = np.ascontiguousarray(nc.variables["target_evidence"].data[::-1].astype(np.float32))
    return ActivationVolume.from_parts(arrays, image, metadata, evidence)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Only the metadata of a volume file (:meth:`ActivationVolume.metadata`), without its arrays."""
    with _open_volume_file(path, mmap=True) as nc:
        return json.loads(_attribute(nc, "cnn_metadata"))


def _open_volume_file(path: str | os.PathLike, mmap: bool = False) -> netcdf_file:
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"netCDF file not found: {path}")
    try:
        nc = netcdf_file(str(path), "r", mmap=mmap)
    except Exception as exc:
        raise FormatError(f"not a netCDF-3 file: {path} ({exc})") from None
    if _attribute(nc, "cnn_format") != FORMAT_NAME:
        nc.close()
        raise FormatError(f"{path} is a netCDF file, but not an activation volume written by cnn_engine")
    return nc


def _attribute(nc: netcdf_file, name: str) -> str:
    value = getattr(nc, name, b"")
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
