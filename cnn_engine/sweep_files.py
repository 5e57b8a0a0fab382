"""A perturbation sweep in files: one CF netCDF with a time step per severity, and a CSV table.

The netCDF file is an image-set file (:mod:`cnn_engine.set_netcdf`: every step's volume, picture
and predictions along ``time``, which ParaView's stock reader plays as time steps) whose time
values are the severities themselves when they increase (``time`` then has the perturbation's
parameter as ``long_name`` and its unit), else the step's position. The table of the sweep comes
along (names start with ``sweep_``, which sorts after ``image_luminance`` as the reader needs):

* ``sweep_severity`` (time), ``sweep_step_label`` (time): the severity, "blur sigma 2.5";
* ``sweep_clean_probability``, ``sweep_target_probability`` (time): the clean class's and the
  target's probability (NaN without a target);
* ``sweep_drift``, ``sweep_relative_l2`` (time, level): see :mod:`cnn_engine.sweep`;
* global attributes ``sweep_perturbation``, ``sweep_parameter``, ``sweep_unit``,
  ``sweep_clean_class``, ``sweep_clean_label``, ``sweep_clean_probability``, ``sweep_target``
  (-1: none), ``sweep_flip_severity``, ``sweep_half_severity`` (NaN: none), and
  ``cnn_series = "cnn_engine perturbation sweep"`` (``cnn_format`` stays the set's, so
  :func:`cnn_engine.read_set_netcdf` reads the volumes).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .csv_table import write_csv
from .errors import FormatError
from .netcdf import DEFAULT_NETCDF_FORMAT
from .set_netcdf import StepAxis, read_set_netcdf, write_set_netcdf

SWEEP_FORMAT_NAME = "cnn_engine perturbation sweep"


def write_sweep_netcdf(sweep, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write ``sweep`` (a :class:`cnn_engine.sweep.Sweep`) to ``path`` atomically; see the module docstring."""
    severities = np.asarray(sweep.values, dtype=np.float64)
    increasing = bool(np.all(np.diff(severities) > 0))
    steps = len(sweep.steps)
    axis = StepAxis(
        values=severities if increasing else np.arange(steps, dtype=np.float64),
        long_name=(f"{sweep.perturbation} {sweep.parameter} ({sweep.unit})" if increasing
                   else f"step of the {sweep.perturbation} sweep (its severity: sweep_severity)"),
        variables={
            "sweep_severity": (("time",), severities, {"long_name": f"{sweep.perturbation} {sweep.parameter}",
                                                       "units": _units(sweep.unit)}),
            "sweep_step_label": (("time",), np.asarray([s.label for s in sweep.steps], dtype=object),
                                 {"long_name": "the step as words"}),
            "sweep_clean_probability": (("time",), np.asarray([s.clean_probability for s in sweep.steps]),
                                        {"long_name": f"probability of the clean top-1 class ({sweep.clean_label})",
                                         "units": "1"}),
            "sweep_target_probability": (("time",), np.asarray([
                math.nan if s.target_probability is None else s.target_probability for s in sweep.steps]),
                {"long_name": f"probability of the target class ({sweep.target_label or 'none'})", "units": "1"}),
            "sweep_drift": (("time", "level"), np.asarray([s.drift for s in sweep.steps]),
                            {"long_name": "1 - cosine similarity of the level's activation to the clean image's",
                             "units": "1"}),
            "sweep_relative_l2": (("time", "level"), np.asarray([s.relative_l2 for s in sweep.steps]),
                                  {"long_name": "L2 distance of the level's activation to the clean image's, over "
                                                "the clean one's norm", "units": "1"}),
        },
        attributes={
            "cnn_series": SWEEP_FORMAT_NAME, "sweep_perturbation": sweep.perturbation,
            "sweep_parameter": sweep.parameter, "sweep_unit": sweep.unit, "sweep_clean_class": np.int32(sweep.clean_class),
            "sweep_clean_label": sweep.clean_label, "sweep_clean_probability": float(sweep.clean_probability),
            "sweep_target": np.int32(-1 if sweep.target is None else sweep.target),
            "sweep_flip_severity": _or_nan(sweep.flip_severity), "sweep_half_severity": _or_nan(sweep.half_severity),
            "title": f"{sweep.model_name} activations of {Path(sweep.image_path or 'an image').name} under "
                     f"{sweep.perturbation}, one severity per time step",
        })
    volumes = (sweep.volume(i) for i in range(steps))
    return write_set_netcdf(volumes, path, format or DEFAULT_NETCDF_FORMAT, steps=axis)


def read_sweep_table(path: str | os.PathLike) -> dict[str, Any]:
    """The table of a sweep file as arrays: ``severity``, ``label``, ``clean_probability``,
    ``target_probability``, ``drift`` and ``relative_l2`` (steps, levels), ``levels``, and the
    sweep's global attributes (``perturbation``, ``flip_severity``...), numbers as on the
    :class:`~cnn_engine.sweep.Sweep` (``clean_class`` an int, ``target`` an int or None,
    ``flip_severity``/``half_severity`` a float or None; the clean picture's probability of its
    top-1 class, :attr:`Sweep.clean_probability`, is ``clean_picture_probability``, since
    ``clean_probability`` is the column of the steps); the volumes through
    :func:`cnn_engine.read_set_netcdf`."""
    from .netcdf import SET_FORMAT_NAME, VolumeFile
    from .set_netcdf import _strings

    with VolumeFile(path, expect=SET_FORMAT_NAME) as nc:
        if nc.attribute("cnn_series") != SWEEP_FORMAT_NAME:
            raise FormatError(f"{path}: not a cnnvis perturbation sweep file")
        table = {name[len("sweep_"):]: nc.array(name) for name in (
            "sweep_severity", "sweep_clean_probability", "sweep_target_probability", "sweep_drift", "sweep_relative_l2")}
        table["label"] = _strings(nc.array("sweep_step_label"))
        table["levels"] = _strings(nc.array("level_name"))
        for name in ("perturbation", "parameter", "unit", "clean_label"):
            table[name] = nc.attribute(f"sweep_{name}")
        # VolumeFile.attribute gives text: the numbers back as numbers, "none" (-1, NaN) as None.
        table["clean_class"] = int(nc.attribute("sweep_clean_class"))
        table["clean_picture_probability"] = float(nc.attribute("sweep_clean_probability"))
        target = int(nc.attribute("sweep_target"))
        table["target"] = None if target < 0 else target
        for name in ("flip_severity", "half_severity"):
            value = float(nc.attribute(f"sweep_{name}"))
            table[name] = None if math.isnan(value) else value
    table["volumes"] = read_set_netcdf(path)
    return table


def write_sweep_csv(sweep, path: str | os.PathLike) -> Path:
    """Write the sweep's table (:meth:`cnn_engine.sweep.Sweep.rows`) as CSV: a header, one row per step."""
    rows = sweep.rows()
    return write_csv(path, list(rows[0]), [list(row.values()) for row in rows])


def _units(unit: str) -> str:
    """A UDUNITS spelling where there is one (degree, 1); otherwise "1" (pixels and qualities are counts)."""
    return "degree" if unit.startswith("degree") else "1"


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
