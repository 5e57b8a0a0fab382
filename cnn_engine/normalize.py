"""Scaling activation values so that levels of very different ranges can be compared or shown.

Works on arrays shaped (levels, height, width). NaN cells (ranks beyond a layer's channel count)
are ignored and stay NaN. A constant level (no spread) becomes 0 instead of dividing by zero.

``per-level-minmax`` (default, as in the original study)
    each level to [0, 1] by its own min and max.
``per-level-percentile``
    each level clipped to its own low/high percentiles (default 1 and 99), then to [0, 1].
``per-level-zscore``
    each level to zero mean and unit standard deviation.
``global-minmax``
    the whole array to [0, 1] by its overall min and max.
``none``
    values unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import CnnEngineError

from .options import NORMALIZATIONS  # noqa: F401  (options owns the names)
DEFAULT_PERCENTILES = (1.0, 99.0)


def parse_normalization(name: str) -> str:
    """Canonical name for ``name``; case, ``-`` and ``_`` are ignored (``PerLevelMinMax`` works)."""
    key = name.replace("-", "").replace("_", "").lower()
    aliases = {n.replace("-", ""): n for n in NORMALIZATIONS}
    aliases["global"] = "global-minmax"
    if key not in aliases:
        raise CnnEngineError(f"unknown normalization {name!r}: use one of {', '.join(NORMALIZATIONS)}")
    return aliases[key]


def normalize(
    values: np.ndarray, method: str = "per-level-minmax", percentiles: tuple[float, float] = DEFAULT_PERCENTILES
) -> np.ndarray:
    """Return a normalised float32 copy of ``values`` (levels, height, width)."""
    method = parse_normalization(method)
    values = np.asarray(values, dtype=np.float32)
    if method == "none":
        return values.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN levels: their result stays NaN
        if method == "global-minmax":
            return _scale(values, np.nanmin(values), np.nanmax(values))
        per_level = (1, 2)
        if method == "per-level-minmax":
            return _scale(values, *_level_extremes(values))
        if method == "per-level-percentile":
            lo_q, hi_q = percentiles
            if not 0 <= lo_q < hi_q <= 100:
                raise CnnEngineError(f"percentile range {percentiles} must satisfy 0 <= low < high <= 100")
            low = np.nanpercentile(values, lo_q, axis=per_level, keepdims=True).astype(np.float32)
            high = np.nanpercentile(values, hi_q, axis=per_level, keepdims=True).astype(np.float32)
            return _scale(np.clip(values, low, high), low, high)
        mean = np.nanmean(values, axis=per_level, keepdims=True, dtype=np.float64).astype(np.float32)
        std = np.nanstd(values, axis=per_level, keepdims=True, dtype=np.float64).astype(np.float32)
        return _scale(values, mean, mean + std)


def scale_levels(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A float32 copy of ``values`` (levels, height, width) with level i mapped from
    [low[i], high[i]] to [0, 1] (ranges given from outside, e.g. over a set of images: values
    outside them land outside [0, 1]); a level without spread becomes 0, NaN stays NaN."""
    shape = (-1, 1, 1)
    return _scale(np.asarray(values, dtype=np.float32), np.asarray(low, dtype=np.float32).reshape(shape),
                  np.asarray(high, dtype=np.float32).reshape(shape))


def _level_extremes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-level (min, max) ignoring NaN, shaped (levels, 1, 1).

    Plain min/max are vectorised and several times faster than nanmin/nanmax; only levels that
    hold NaN (where they give NaN) are redone with the NaN-aware versions.
    """
    low = values.min(axis=(1, 2), keepdims=True)
    high = values.max(axis=(1, 2), keepdims=True)
    redo = np.isnan(low[:, 0, 0]) | np.isnan(high[:, 0, 0])
    if redo.any():
        low[redo] = np.nanmin(values[redo], axis=(1, 2), keepdims=True)
        high[redo] = np.nanmax(values[redo], axis=(1, 2), keepdims=True)
    return low, high


def _scale(values: np.ndarray, low, high) -> np.ndarray:
    """(values - low) / (high - low) in float32, in place on one new array.

    Where there is no spread the divisor is 1, which gives 0 (every value equals low, or for the
    z-score the mean) and keeps NaN as NaN. Division, not multiplication by a reciprocal, so the
    maximum of a level maps to exactly 1.
    """
    low = np.asarray(low, dtype=np.float32)
    spread = np.asarray(high, dtype=np.float32) - low
    out = np.subtract(values, low, dtype=np.float32)
    out /= np.where(spread > 0, spread, np.float32(1.0))
    return out
