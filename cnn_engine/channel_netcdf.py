"""Tables with one row per (level, channel), as CF netCDF: channel statistics and feature probes.

Levels have different channel counts (64 on a stem, 2048 on ResNet-50's last block), so a file
has the dimensions ``level`` and ``channel`` (the largest count) and each level's rows are padded:
NaN in float variables, -1 in integer ones; ``channel_count(level)`` says how many rows are real.
Other dimensions (``class``, ``orientation``, ``hue``, ``exemplar``...) follow. Text per (level,
channel) (labels) and per other dimension (class names) is stored as char arrays with
``_Encoding = "utf-8"``, which xarray decodes to strings. The global attribute ``cnnvis_kind``
says what the table holds; ``cnnvis_metadata`` is a JSON text of the rest.

Files are netCDF-4 (compressed) and written atomically: a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .atomic import check_writable
from .errors import FormatError
from .netcdf import atomic_write_netcdf4, create_variable, set_attributes, text_array

#: The value of global attribute ``cnnvis_kind`` of each table this module writes.
KINDS = ("channel_statistics", "channel_probes")

_FLOAT_KINDS = ("f4", "f8")


@dataclass
class Variable:
    """One variable of a channel table.

    ``dims`` names its dimensions; when they start with (``level``, ``channel``), ``values`` is a
    list with one array per level, (channels of that level, *other dims), padded on writing; else
    one array of the whole shape. ``kind``: ``f4``, ``f8``, ``i4``, ``i8`` or ``text`` (values
    are strings; the last dimension becomes the strings' length).
    """

    dims: tuple[str, ...]
    values: Any
    kind: str = "f8"
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChannelTable:
    """What a channel table file holds: see the module docstring."""

    kind: str
    levels: tuple[str, ...]
    channel_counts: tuple[int, ...]
    variables: dict[str, Variable]
    dimensions: dict[str, int]
    metadata: dict[str, Any]


def write_channel_table(path: str | os.PathLike, table: ChannelTable) -> Path:
    """Write ``table`` to ``path`` (netCDF-4, atomic). Returns the path."""
    if table.kind not in KINDS:
        raise ValueError(f"unknown channel table kind {table.kind!r}")
    target = check_writable(path, "netCDF file", ".nc")
    width = max(table.channel_counts, default=0)

    def write(nc: Any) -> None:
        nc.createDimension("level", len(table.levels))
        nc.createDimension("channel", width)
        for name, size in table.dimensions.items():
            nc.createDimension(name, size)
        set_attributes(nc, Conventions="CF-1.8", cnnvis_kind=table.kind,
                       title=f"cnnvis {table.kind.replace('_', ' ')}",
                       cnnvis_metadata=json.dumps(table.metadata, sort_keys=True))
        _text(nc, "level_name", list(table.levels), ("level",), "name of the level in the network")
        var = create_variable(nc, "channel_count", "i4", ("level",))
        set_attributes(var, long_name="number of channels of the level (rows beyond it are padding)", units="1")
        var[:] = np.asarray(table.channel_counts, dtype="i4")
        var = create_variable(nc, "channel", "i4", ("channel",))
        set_attributes(var, long_name="channel index within the level", units="1")
        var[:] = np.arange(width, dtype="i4")
        for name, variable in table.variables.items():
            _write(nc, name, variable, table.channel_counts, width)

    return atomic_write_netcdf4(target, write)


def read_channel_table(path: str | os.PathLike, kind: str | None = None) -> ChannelTable:
    """Read a file written by :func:`write_channel_table`; per-level variables come back unpadded.

    Raises :class:`FormatError` when the file is not such a table (or not of ``kind``).
    """
    from .netcdf import open_netcdf4

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        nc = open_netcdf4(str(path), "r")
    except OSError as exc:
        raise FormatError(f"{path}: not a netCDF file ({exc})") from None
    with nc:
        found = _attribute(nc, "cnnvis_kind")
        if found not in KINDS or (kind is not None and found != kind):
            wanted = kind.replace("_", " ") if kind else "channel table"
            raise FormatError(f"{path}: not a cnnvis {wanted} file"
                              + (f" (it holds {found.replace('_', ' ')})" if found in KINDS else ""))
        levels = tuple(_strings(nc.variables["level_name"][:]))
        counts = tuple(int(v) for v in nc.variables["channel_count"][:])
        skip = {"level_name", "channel_count", "channel"}
        dimensions = {name: len(dim) for name, dim in nc.dimensions.items()
                      if name not in ("level", "channel") and not name.endswith("_strlen")}
        variables: dict[str, Variable] = {}
        for name, var in nc.variables.items():
            if name in skip:
                continue
            attrs = {key: _decoded(var.getncattr(key)) for key in var.ncattrs() if key != "_Encoding"}
            dims = tuple(var.dimensions)
            values = var[:]
            if dims and dims[-1].endswith("_strlen"):
                dims, kind_name = dims[:-1], "text"
                values = np.array(_strings(values.reshape(-1, values.shape[-1])), dtype=object).reshape(values.shape[:-1])
            else:
                kind_name = values.dtype.str[1:]
            if dims[:2] == ("level", "channel"):
                values = [values[i, :count] for i, count in enumerate(counts)]
            variables[name] = Variable(dims, values, kind_name, attrs)
        metadata = json.loads(_attribute(nc, "cnnvis_metadata") or "{}")
    return ChannelTable(found, levels, counts, variables, dimensions, metadata)


def level_index(levels: Sequence[str], level: str | int) -> int:
    """The index of ``level`` (a name or an index) in ``levels``; a clear error otherwise."""
    from .errors import LayerError

    if isinstance(level, (int, np.integer)) and not isinstance(level, bool):
        if 0 <= level < len(levels):
            return int(level)
        raise LayerError(f"level {level} does not exist: use 0 to {len(levels) - 1} or a name ({', '.join(levels)})")
    if level in levels:
        return levels.index(level)
    raise LayerError(f"level {level!r} is not in this table: use one of {', '.join(levels)}")


def check_channel(channel: int, count: int, level: str) -> int:
    """``channel`` when level ``level`` (with ``count`` channels) has it; a clear error otherwise."""
    from .errors import LayerError

    if not 0 <= int(channel) < count:
        raise LayerError(f"channel {channel} does not exist on level {level!r}, which has channels 0 to {count - 1}")
    return int(channel)


def _write(nc: Any, name: str, variable: Variable, counts: Sequence[int], width: int) -> None:
    dims = variable.dims
    per_level = dims[:2] == ("level", "channel")
    if variable.kind == "text":
        values = np.asarray(_padded(variable.values, counts, width, "") if per_level else variable.values, dtype=object)
        attrs = dict(variable.attrs)
        _text(nc, name, list(values.reshape(-1)), dims, attrs.pop("long_name", name), shape=values.shape, **attrs)
        return
    fill = np.nan if variable.kind in _FLOAT_KINDS else -1
    values = _padded(variable.values, counts, width, fill) if per_level else np.asarray(variable.values)
    chunks = tuple(max(1, s) for s in values.shape) if values.ndim else None
    var = create_variable(nc, name, variable.kind, dims, chunks=chunks)
    set_attributes(var, **variable.attrs)
    if values.size:
        var[:] = values.astype(variable.kind)


def _padded(per_level: Sequence[Any], counts: Sequence[int], width: int, fill: Any) -> np.ndarray:
    arrays = [np.asarray(values) for values in per_level]
    tail = next((a.shape[1:] for a in arrays if a.ndim), ())
    dtype = object if isinstance(fill, str) else np.result_type(*[a.dtype for a in arrays]) if arrays else float
    out = np.full((len(arrays), width) + tuple(tail), fill, dtype=dtype)
    for i, (values, count) in enumerate(zip(arrays, counts)):
        out[i, :count] = values
    return out


def _text(nc: Any, name: str, strings: list[str], dims: tuple[str, ...], long_name: str,
          shape: tuple[int, ...] | None = None, **attributes: Any) -> None:
    chars = text_array([str(s) for s in strings])
    nc.createDimension(f"{name}_strlen", chars.shape[1])
    var = create_variable(nc, name, "c", dims + (f"{name}_strlen",))
    set_attributes(var, long_name=long_name, _Encoding="utf-8", **attributes)
    var[:] = chars.reshape(tuple(shape or (len(strings),)) + (chars.shape[1],))


def _strings(chars: np.ndarray) -> list[str]:
    chars = np.asarray(chars)
    # Not reshape(len, -1): a file without classes holds (0, strlen) characters, and -1 is undefined then.
    rows = chars.reshape(len(chars), int(np.prod(chars.shape[1:], dtype=int)))
    return [bytes(row).rstrip(b"\0").decode("utf-8") for row in rows]


def _attribute(nc: Any, name: str) -> str | None:
    if name not in nc.ncattrs():
        return None
    return _decoded(nc.getncattr(name))


def _decoded(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value

