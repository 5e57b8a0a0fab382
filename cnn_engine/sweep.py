"""How an image property changes the decision: one image, one perturbation, a row of severities.

:func:`sweep` fits the image to the network input once, perturbs that picture at each severity
(:mod:`cnn_engine.perturbations`: pixel units are input pixels), and runs the clean picture and
the perturbed ones through the network in batches (the forward runner). Per step it keeps:

``predictions``
    the top-5 classes, as in a volume;
``clean_probability``
    the probability of the clean picture's top-1 class ("clean class");
``target_probability``
    the probability of ``target`` (an index or a label; None when not asked for);
``drift`` (one value per level)
    1 - cosine similarity between the level's whole activation (every channel, row and column,
    as one vector) on the perturbed picture and on the clean one: 0 = the same direction,
    1 = orthogonal (NaN where the clean activation is all zero);
``relative_l2`` (one value per level)
    ||a_step - a_clean|| / ||a_clean||, the size of the change relative to the clean activation;
and, with ``volumes=True`` (the default), the step's activation volume, whose channels are the
clean picture's top-k on every level (ranked by ``rank_by`` on the clean picture), so that slices
compare across steps.

A severity equal to the perturbation's identity (brightness 1, blur 0...) is the clean picture
itself: it is computed once, and its drift is exactly 0. Summary:
:attr:`Sweep.flip_severity` is the severity nearest the clean picture (the perturbation's
``mildest``: its identity; for JPEG, quality 100; a tie goes to the lower severity) at which the
top-1 class is no longer the clean class, :attr:`Sweep.half_severity` the nearest at which the clean class's probability falls below
half its clean value; None when no step does.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .builder import VolumeBuilder
from .compute import (
    Progress, _as_model, _check_top_k, _top_predictions, assemble_volume, available_memory, check_options, creation_time,
    default_level_spacing,
)
from .errors import CnnEngineError
from .evidence import resolve_target
from .images import LoadedImage, load_image
from .layers import LayerSelection, LevelSpec
from .models import CnnModel
from .perturbations import Perturbation, check_severities, perturbation as find_perturbation
from .preprocess import Preprocessing, fitted_input, network_input
from .runner import Item, default_batch_size, forward
from .volume import ActivationVolume, Prediction

#: How many predictions a step keeps.
TOP_PREDICTIONS = 5


@dataclass(frozen=True)
class SweepStep:
    """One severity of a sweep (see the module docstring); ``drift`` and ``relative_l2`` have one
    value per level, in the sweep's level order."""

    severity: float
    label: str
    predictions: tuple[Prediction, ...]
    clean_probability: float
    target_probability: float | None
    drift: tuple[float, ...]
    relative_l2: tuple[float, ...]

    @property
    def top1(self) -> Prediction:
        return self.predictions[0]


@dataclass
class Sweep:
    """A perturbation sweep of one image (see the module docstring)."""

    model_name: str
    image_path: str | None
    perturbation: str
    parameter: str
    unit: str
    values: tuple[float, ...]
    levels: tuple[str, ...]
    channels: dict[str, tuple[int, ...]]
    clean_class: int
    clean_label: str
    clean_probability: float
    target: int | None
    target_label: str | None
    steps: tuple[SweepStep, ...]
    images: tuple[np.ndarray, ...]
    options: dict[str, Any] = field(default_factory=dict)
    _volumes: list[ActivationVolume | None] = field(default_factory=list, repr=False)
    _rebuild: Any = field(default=None, repr=False)

    @property
    def flip_severity(self) -> float | None:
        """The severity nearest the clean picture whose top-1 class is not the clean class."""
        return self._nearest(lambda step: step.top1.index != self.clean_class)

    @property
    def half_severity(self) -> float | None:
        """The severity nearest the clean picture where the clean class's probability is below half its clean value."""
        return self._nearest(lambda step: step.clean_probability < self.clean_probability / 2)

    def volume(self, index: int) -> ActivationVolume:
        """The activation volume of step ``index`` (channels: the clean picture's top-k)."""
        if not -len(self.steps) <= index < len(self.steps):
            raise CnnEngineError(f"step {index} does not exist: the sweep has steps 0 to {len(self.steps) - 1}")
        index %= len(self.steps)
        if self._volumes and self._volumes[index] is not None:
            return self._volumes[index]
        if self._rebuild is None:
            raise CnnEngineError("this sweep was read from a file without its volumes")
        return self._rebuild(index)

    def table_only(self) -> "Sweep":
        """This sweep without its volumes and pictures (all a figure or a table needs): their memory is freed."""
        return replace(self, images=(), _volumes=[], _rebuild=None)

    def drift_table(self) -> np.ndarray:
        """Drift as a (levels, steps) float64 array: a level x severity picture."""
        return np.asarray([step.drift for step in self.steps], dtype=np.float64).T

    def rows(self) -> list[dict[str, Any]]:
        """The table over the steps: one dict per step (severity, label, probabilities, top-1, drift per level)."""
        rows = []
        for step in self.steps:
            row = {"severity": step.severity, "label": step.label, "clean_probability": step.clean_probability,
                   "target_probability": step.target_probability, "top1_index": step.top1.index,
                   "top1_label": step.top1.label, "top1_probability": step.top1.probability}
            row.update({f"drift {name}": value for name, value in zip(self.levels, step.drift)})
            rows.append(row)
        return rows

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rows` as a CSV table."""
        from .sweep_files import write_sweep_csv

        return write_sweep_csv(self, path)

    def to_netcdf(self, path: str | os.PathLike, format: str | None = None) -> Path:
        """One CF netCDF with a step per time step (ParaView's stock reader plays them), the
        volumes of every step and the table; see :mod:`cnn_engine.sweep_files`."""
        from .sweep_files import write_sweep_netcdf

        return write_sweep_netcdf(self, path, format)

    def _nearest(self, condition) -> float | None:
        mildest = find_perturbation(self.perturbation).mildest
        order = sorted(range(len(self.steps)), key=lambda i: (abs(self.steps[i].severity - mildest),
                                                               self.steps[i].severity))
        for i in order:
            if condition(self.steps[i]):
                return self.steps[i].severity
        return None


def sweep(model: CnnModel | nn.Module, image, perturbation: str, values: Sequence[float] | None = None,
          layers: LayerSelection = "blocks", top_k: int = 4, target=None, rank_by: str = "mean",
          input_size: int = 224, fit: str = "short-side", interpolation: str = "nearest", max_side: int = 1024,
          seed: int = 0, volumes: bool = True, batch_size: int | None = None, progress: Progress | None = None,
          **options) -> Sweep:
    """Perturb ``image`` at each of ``values`` (the perturbation's natural units; default its
    documented sweep, with the clean image) and measure predictions and drift per level.

    ``perturbation``: a name of :data:`cnn_engine.PERTURBATIONS`; ``options`` go to it (for
    ``occlusion``: ``position=(x, y)``, ``occluder``). ``target``: a class (index or label) whose
    probability every step records. ``seed``: for the noise. Options as
    :func:`cnn_engine.compute_volume` otherwise; ``rank_by`` is a map statistic (``mean``, ``max``,
    ``l2``) ranked on the clean picture. ``progress(done, total)`` counts pictures. Raises
    :class:`CnnEngineError` for an unknown perturbation (listing the known ones), severities out
    of range (saying the range), fewer than two steps, or an image that cannot be read.
    """
    created = creation_time()
    chosen = find_perturbation(perturbation)
    values = check_severities(chosen, chosen.default_values if values is None else values)
    if len(set(values)) < 2:
        raise CnnEngineError(f"a sweep needs at least two different severities, not {len(set(values))}: give a list "
                             f"or a range (for {chosen.name}: {chosen.low:g} to {chosen.high:g} {chosen.unit})")
    check_options(top_k, rank_by, interpolation)
    if rank_by not in ("mean", "max", "l2"):
        raise CnnEngineError(f"a sweep ranks channels on the clean picture by mean, max or l2, not {rank_by!r}")
    model = _as_model(model)
    levels = model.levels(layers)
    _check_top_k(model, levels, top_k)
    preprocessing = Preprocessing(fit=fit, size=input_size, max_side=max_side)
    if target is not None and model.categories:  # a wrong class is told before anything runs
        resolve_target(target, model.categories, 0, len(model.categories))
    loaded = load_image(image)
    clean = network_input(loaded.image, preprocessing, model.mean, model.std)
    pictures = [chosen.apply(clean.rgb, value, seed=seed, **options) if value != chosen.identity else clean.rgb
                for value in values]
    run = _Run(model, levels, top_k, rank_by, interpolation, clean.rgb.shape[:2], volumes)
    # The clean picture first (it fixes the channels and the reference), then each step's that differs.
    unique = [i for i, value in enumerate(values) if value != chosen.identity]
    inputs = [clean] + [fitted_input(pictures[i], model.mean, model.std) for i in unique]
    batch = batch_size or default_batch_size(model, levels, clean.rgb.shape[:2], top_k, available_memory())
    results: list[_Result] = []
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        items = [Item(start + i, None, None, loaded, net_in) for i, net_in in enumerate(chunk)]
        results.extend(run.batch(items))
        if progress is not None:
            progress(min(start + batch, len(inputs)), len(inputs))
    clean_result, by_step = results[0], {i: r for i, r in zip(unique, results[1:])}
    logits = clean_result.logits
    clean_class = int(logits.argmax())
    probabilities = torch.softmax(logits.float(), 0)
    target_index = None if target is None else resolve_target(target, model.categories, clean_class,
                                                                  int(logits.numel()))
    spacing = default_level_spacing(clean.rgb.shape[0], clean.rgb.shape[1], len(levels))
    layers_text = layers if isinstance(layers, str) else ",".join(level.name for level in levels)

    def volume_of(result: _Result, step: int, picture: np.ndarray) -> ActivationVolume:
        built = assemble_volume(model, result.builder, result.builder.arrays(),
                                _top_predictions(model, result.logits[None], TOP_PREDICTIONS), loaded,
                                preprocessing, picture, layers_text, spacing, created, set_index=step)
        return built

    steps, kept = [], []
    for i, value in enumerate(values):
        result = by_step.get(i, clean_result)
        p = torch.softmax(result.logits.float(), 0)
        same = result is clean_result
        steps.append(SweepStep(
            severity=float(value), label=chosen.label(value),
            predictions=tuple(_top_predictions(model, result.logits[None], TOP_PREDICTIONS)),
            clean_probability=float(p[clean_class]),
            target_probability=None if target_index is None else float(p[target_index]),
            drift=tuple(0.0 for _ in levels) if same else result.drift,
            relative_l2=tuple(0.0 for _ in levels) if same else result.relative_l2))
        kept.append(volume_of(result, i, pictures[i]) if volumes else None)

    outcome = Sweep(
        model_name=model.name, image_path=loaded.path, perturbation=chosen.name, parameter=chosen.parameter,
        unit=chosen.unit, values=tuple(float(v) for v in values), levels=tuple(level.name for level in levels),
        channels=dict(run.channels), clean_class=clean_class, clean_label=model.label(clean_class),
        clean_probability=float(probabilities[clean_class]), target=target_index,
        target_label=None if target_index is None else model.label(target_index), steps=tuple(steps),
        images=tuple(pictures), options={"seed": seed, "top_k": top_k, "rank_by": rank_by, "layers": layers_text,
                                         "preprocessing": preprocessing.describe(), **_plain(options)},
        _volumes=kept)

    def rebuild(index: int) -> ActivationVolume:
        again = _Run(model, levels, top_k, rank_by, interpolation, clean.rgb.shape[:2], True, run.channels,
                     run.clean_vectors)
        picture = pictures[index]
        (result,) = again.batch([Item(index, None, None, loaded, fitted_input(picture, model.mean, model.std))])
        return volume_of(result, index, picture)

    outcome._rebuild = rebuild
    return outcome


@dataclass
class _Result:
    logits: torch.Tensor
    builder: VolumeBuilder | None
    drift: tuple[float, ...]
    relative_l2: tuple[float, ...]


class _Run:
    """Runs batches of pictures; the first picture ever seen is the clean one: it fixes each
    level's channels (its top-k) and the reference activation of the drift."""

    def __init__(self, model: CnnModel, levels: Sequence[LevelSpec], top_k: int, rank_by: str, interpolation: str,
                 size: tuple[int, int], volumes: bool, channels: dict[str, tuple[int, ...]] | None = None,
                 clean_vectors: list[torch.Tensor] | None = None) -> None:
        self.model, self.levels, self.top_k, self.rank_by = model, list(levels), top_k, rank_by
        self.interpolation, self.size, self.volumes = interpolation, tuple(size), volumes
        self.channels: dict[str, tuple[int, ...]] = dict(channels or {})
        self.clean_vectors: list[torch.Tensor | None] = list(clean_vectors or [None] * len(self.levels))

    def batch(self, items: Sequence[Item]) -> list[_Result]:
        first = self.clean_vectors[0] is None
        builders = [self._builder(first and row == 0) if self.volumes or (first and row == 0) else None
                    for row in range(len(items))]
        drift = np.zeros((len(items), len(self.levels)))
        relative = np.zeros((len(items), len(self.levels)))

        def sink(index: int, output: torch.Tensor) -> None:
            level = self.levels[index]
            if output.dim() != 4:
                raise CnnEngineError(f"layer {level.name!r} gave a {tuple(output.shape)} output, not a spatial map")
            flat = output.detach().flatten(1)
            if self.clean_vectors[index] is None:
                self.clean_vectors[index] = flat[0].clone()
            clean = self.clean_vectors[index]
            clean_norm = float(clean.norm())
            norms = flat.norm(dim=1).double().numpy()
            dots = (flat @ clean).double().numpy()
            # ||b - a||^2 = ||b||^2 + ||a||^2 - 2 a.b: no copy of the level's outputs (rounding: ~1e-7 relative).
            distance = np.sqrt(np.maximum(norms ** 2 + clean_norm ** 2 - 2 * dots, 0.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                # Clipped: float32 dot products put identical activations a few 1e-7 off a cosine of 1.
                drift[:, index] = 1.0 - np.clip(dots / (norms * clean_norm), -1.0, 1.0) if clean_norm > 0 else np.nan
                relative[:, index] = distance / clean_norm if clean_norm > 0 else np.nan
            for row, builder in enumerate(builders):
                if builder is None:
                    continue
                builder.add(index, output[row])
                if level.name not in self.channels:  # the clean picture's builder ranked them: fix them for all
                    self.channels[level.name] = tuple(c for c in builder.infos[index].channels if c >= 0)
                    for other in builders[row + 1:]:
                        if other is not None:
                            other.channels[index] = self.channels[level.name]

        logits = forward(self.model, self.levels, items, sink)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            raise CnnEngineError("the model gives no class scores (a (batch, classes) output): a sweep follows "
                                 "the decision, so it needs a classifier")
        return [_Result(logits[row].detach().clone(), builders[row],
                        tuple(float(v) for v in drift[row]), tuple(float(v) for v in relative[row]))
                for row in range(len(items))]

    def _builder(self, is_clean: bool) -> VolumeBuilder:
        given = None if is_clean else [self.channels.get(level.name) for level in self.levels]
        return VolumeBuilder(self.model, self.levels, self.top_k, self.rank_by, self.interpolation, self.size, given)


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    return {key: (list(value) if isinstance(value, tuple) else value) for key, value in options.items()}
