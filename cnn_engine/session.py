"""Keeping the last model and the last volume, so that asking again costs nothing.

Interactive front ends (the ParaView source, notebooks) ask for volumes over and over with
mostly the same settings. A :class:`Session` rebuilds the model only when model, weights (for a
file: its path, size and modification time) or device change, runs the network only when the
image (likewise) or a setting that shapes the result changes, and counts its forward passes so
that callers and tests can see what was re-run. Settings that cannot change the result do not
count: level spacing (it only places the levels), the target class while neither an evidence
map nor a class ranking (``effect``, ``ablation``) is asked for, ``auto`` against the device it
resolves to, and trusting TorchScript for weights that are not a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .compute import Progress, compute_volume, default_level_spacing
from .models import DEFAULT_MODEL, CnnModel, default_model_name, load_default_model, load_model
from .options import default
from .preprocess import Preprocessing, input_grid
from .ranking import CLASS_RANKINGS
from .volume import ActivationVolume
from .weights import RANDOM, looks_like_path

# (model name, layer selection) -> number of levels, shared by all sessions of the process.
_LEVEL_COUNTS: dict[tuple[str, Any], int] = {}


@dataclass(frozen=True)
class VolumeRequest:
    """Everything that decides a volume (see :func:`cnn_engine.compute_volume`)."""

    image: str
    # Defaults from the one description of the options (cnn_engine.options).
    model: str = default("model")
    weights: str | None = default("weights")
    device: str = default("device")
    layers: str = default("layers")
    top_k: int = default("top_k")
    rank_by: str = default("rank_by")
    input_size: int = default("input_size")
    fit: str = default("fit")
    interpolation: str = default("interpolation")
    level_spacing: float | None = default("level_spacing")
    evidence: str | None = default("evidence")  # cam, gradcam, occlusion, layercam (see cnn_engine.evidence)
    target: str | int | None = default("target")  # class index or label; None: the top-1 class
    #: With the default model and weights (model DEFAULT_MODEL, weights None): run the trained
    #: offline model when the default weights cannot be had (see models.load_default_model).
    allow_offline: bool = False
    #: Load a TorchScript weights file, which runs code stored in it (see weights.load_state_dict_file).
    trust_torchscript: bool = False

    def model_key(self) -> tuple[Any, ...]:
        """What decides the model: a different key rebuilds it, an equal key reuses it."""
        weights_file = self.weights is not None and self.weights != RANDOM and looks_like_path(self.weights)
        # A weights file is known by its content's identity (a file saved again at the same path
        # must be read again); trusting TorchScript matters only for a file.
        weights = _file_identity(str(Path(self.weights).expanduser())) if weights_file else self.weights
        return (self.model, weights, _device_key(self.device), self.offline_allowed(),
                self.trust_torchscript and weights_file)

    def offline_allowed(self) -> bool:
        return self.allow_offline and self.model == DEFAULT_MODEL and self.weights is None

    def activation_key(self) -> tuple[Any, ...]:
        """What decides the network's output: a different key runs the network again.

        Level spacing only places the levels, and the target class is used only by an evidence
        map and the class rankings (``effect``, ``ablation``): neither counts where it cannot
        change the result. Input size counts even with fit ``native`` (which ignores it for the
        grid): the volume's provenance records it.
        """
        target = self.target if self.evidence or self.rank_by in CLASS_RANKINGS else None
        return (self.model_key(), _file_identity(self.image), self.layers, self.top_k, self.rank_by,
                self.input_size, self.fit, self.interpolation, self.evidence, target)


def _device_key(device: str) -> str:
    # "auto" runs where it resolves to (models.resolve_device): switching to that device by
    # name changes nothing. Other names are kept as given; load_model reports unusable ones.
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _file_identity(path: str) -> tuple[Any, ...]:
    try:
        stat = os.stat(path)
    except OSError:
        return (path,)  # compute_volume will report the missing file
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


class Session:
    """The last model and volume, reused while the request allows it."""

    def __init__(self) -> None:
        self.forward_passes = 0
        self.model_builds = 0
        self._model: CnnModel | None = None
        self._model_key: tuple[Any, ...] | None = None
        self._volume: ActivationVolume | None = None
        self._volume_key: tuple[Any, ...] | None = None

    @property
    def current_model(self) -> CnnModel | None:
        """The model built last (None before the first), e.g. to show which one really ran."""
        return self._model

    def model(self, request: VolumeRequest) -> CnnModel:
        if self._model is None or self._model_key != request.model_key():
            self._model, self._volume, self._volume_key = None, None, None  # free the old one first
            if request.offline_allowed():
                self._model = load_default_model(device=request.device)
            else:
                self._model = load_model(request.model, weights=request.weights, device=request.device,
                                         trust_torchscript=request.trust_torchscript)
            self._model_key = request.model_key()
            self.model_builds += 1
        return self._model

    def grid(self, request: VolumeRequest) -> tuple[int, int, int, float]:
        """(levels, height, width, level spacing) of the volume in VTK (the evidence map adds the top
        level) for ``request``, without running the network."""
        if self._volume is not None and self._volume_key == request.activation_key():
            levels, height, width = self._volume.shape
        else:
            levels = self._level_count(request)
            # The header is enough: RequestData decodes the image once, in compute_volume.
            width, height = input_grid(request.image, Preprocessing(fit=request.fit, size=request.input_size))
        spacing = request.level_spacing or default_level_spacing(height, width, levels)
        if request.evidence:
            levels += 1  # the evidence map is the volume's top level in VTK (see vtk_export)
        return levels, height, width, spacing

    def _level_count(self, request: VolumeRequest) -> int:
        # The levels depend on the architecture only: no weights are loaded to count them. With the
        # offline stand-in allowed, whether the default weights can be had decides the architecture.
        if self._model is not None and self._model_key == request.model_key():
            return len(self._model.levels(request.layers))
        name = default_model_name() if request.offline_allowed() else request.model
        key = (name, request.layers if isinstance(request.layers, str) else tuple(request.layers))
        if key not in _LEVEL_COUNTS:
            _LEVEL_COUNTS[key] = len(load_model(name, weights=RANDOM, device="cpu").levels(request.layers))
        return _LEVEL_COUNTS[key]

    def volume(self, request: VolumeRequest, progress: Progress | None = None) -> ActivationVolume:
        """The volume for ``request``, computing only what changed since the last call."""
        key = request.activation_key()
        if self._volume is None or self._volume_key != key:
            model = self.model(request)
            self._volume = None
            self._volume = compute_volume(
                model, request.image, layers=request.layers, top_k=request.top_k, rank_by=request.rank_by,
                input_size=request.input_size, fit=request.fit, interpolation=request.interpolation,
                progress=progress, evidence=request.evidence, target=request.target,
            )
            self._volume_key = key
            self.forward_passes += 1
        volume = self._volume
        if request.level_spacing is not None and request.level_spacing != volume.level_spacing:
            volume = replace(volume, level_spacing=float(request.level_spacing))
        return volume
