"""Tables as CSV files: one writer for every table the engine writes (channel statistics, probes, sweeps)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from .atomic import atomic_write, check_writable


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a header row, then ``rows``, atomically (a reader never sees half a table). An
    undefined value (None, NaN) is an empty cell; a float keeps every digit (``repr``). Returns the path."""
    target = check_writable(path, "CSV file", ".csv")

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([_cell(value) for value in row] for row in rows)

    return atomic_write(target, write, what="CSV file")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else value
