"""Errors the engine raises for bad input.

Every error a user can cause (a bad image, an unknown model or layer, a weights file that is not
what it claims, an unwritable output path) is a :class:`CnnEngineError` whose message names the
problem and what to do. The command line prints that message alone; the ParaView plugin shows it
in Output Messages. Anything else escaping the engine is a bug.
"""

from __future__ import annotations


class CnnEngineError(Exception):
    """Base class of the engine's user-facing errors."""


class ImageError(CnnEngineError):
    """The image is missing, empty, not an image, truncated or unusable."""


class ModelError(CnnEngineError):
    """The model name is unknown or the model cannot be built."""


class WeightsError(CnnEngineError):
    """The weights cannot be found, downloaded or safely loaded."""


class WeightsUnavailableError(WeightsError):
    """Pretrained weights are neither cached nor downloadable (for example, no internet)."""


class LayerError(CnnEngineError):
    """A layer name or layer set does not exist in the model."""


class OutputError(CnnEngineError):
    """An output file cannot be written."""


class FormatError(CnnEngineError):
    """A file is not an activation volume this engine wrote."""
