"""One forward pass, every level captured, ranked and resampled as it is produced."""

from __future__ import annotations

import datetime as _dt
import os
import re
import weakref
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import __version__
from .errors import CnnEngineError
from .evidence import EvidenceInfo, EvidenceSettings, Target, resolve_target
from .images import ImageSource, LoadedImage, load_image
from .layers import LayerSelection, LevelSpec
from .models import CnnModel, as_cnn_model, class_scores, set_module_options, settle_labels
from .preprocess import Preprocessing, network_input
from .evidence.gradcam import grad_cam
from .gradients import gradient_pass
from .ranking import CLASS_RANKINGS, RANK_BY
from .builder import VolumeBuilder, level_geometry  # noqa: F401  (level_geometry: the CLI asks here)
from .resample import INTERPOLATIONS, resampled
from .volume import ActivationVolume, Prediction, Provenance

#: Called as ``progress(done, total)`` while levels are captured (and, first, channels ablated).
Progress = Callable[[int, int], None]

# Plain modules passed to compute_volume keep their traced graphs between calls.
_wrapped: "weakref.WeakKeyDictionary[nn.Module, CnnModel]" = weakref.WeakKeyDictionary()


def compute_volume(
    model: CnnModel | nn.Module,
    image: ImageSource,
    layers: LayerSelection = "blocks",
    top_k: int = 4,
    rank_by: str = "mean",
    input_size: int = 224,
    fit: str = "short-side",
    interpolation: str = "nearest",
    level_spacing: float | None = None,
    max_side: int = 1024,
    progress: Progress | None = None,
    evidence: str | EvidenceSettings | None = None,
    target: Target = None,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: Mapping[str, Sequence[int]] | None = None,
) -> ActivationVolume:
    """Run ``model`` on ``image`` and stack the chosen layer outputs into an activation volume.

    ``image``: a path, a PIL image or an (H, W, 3) uint8 array. ``layers``: ``blocks``,
    ``convs``, ``all`` or layer names (see :mod:`cnn_engine.layers`). In each level the
    ``top_k`` channels ranked by ``rank_by`` (``mean``, ``max``, ``l2``, or by what they do for
    class ``target``: ``effect``, ``ablation``; see :mod:`cnn_engine.ranking`) are kept and drawn
    (``nearest`` or ``bilinear``) on the network input grid, fitted by ``fit`` at ``input_size``
    pixels (see :mod:`cnn_engine.preprocess`), each cell centred on its receptive field (see
    :mod:`cnn_engine.resample`; ``vol.levels[i]`` records stride, receptive field and offset). ``level_spacing`` is the z
    distance between levels in input pixels (default: the short side divided by the number
    of levels, so the volume is about as deep as it is wide). Arrays are raw activations,
    (levels, height, width), image order; memory holds one layer output at a time.

    ``evidence`` (``cam``, ``gradcam``, ``occlusion``, ``layercam``, or :class:`EvidenceSettings`
    for layer, patch and occluder options) adds ``vol.evidence``, the class evidence map (height,
    width) on the same grid, for class ``target`` (an index or label; default the top-1 class),
    with ``vol.evidence_info`` saying how it was made (see :mod:`cnn_engine.evidence`).
    ``layercam`` also adds ``vol.arrays["layercam"]`` (levels, height, width): LayerCAM at every
    level, drawn like the ranks; ``vol.evidence`` is then the deepest level's map.

    ``model`` is a :class:`CnnModel` from :func:`cnn_engine.load_model`, or a plain
    ``torch.nn.Module`` returning class scores (batch, classes). Nothing is assumed about a plain
    module's training: its provenance says ``trained=None`` (unknown). For a plain module only:
    ``labels``, its class names in output order (one per output); without them a 1000-class
    output gets the ImageNet labels (recorded as assumed) and any other output is labelled
    ``class 17`` with ``provenance.labels`` "unknown (not ImageNet-shaped)". ``mean``/``std``,
    its per-channel RGB input normalisation for pixel values in [0, 1] (default ImageNet's:
    (0.485, 0.456, 0.406) and (0.229, 0.224, 0.225)).

    ``channels`` ({level name: [channel index, ...]}, e.g. from
    :func:`cnn_engine.sets.parse_channel_list`) shows exactly those channels, in that order: the
    volume's levels are then the listed levels (in network order, ``layers`` is not used) and
    ``top_k`` the longest list; shorter lists get NaN maps and channel -1 on the missing ranks.
    """
    created = creation_time()  # a bad SOURCE_DATE_EPOCH fails here, before the network runs
    model = _as_model(model, labels, mean, std)
    check_options(top_k, rank_by, interpolation)
    preprocessing = Preprocessing(fit=fit, size=input_size, max_side=max_side)
    settings = EvidenceSettings(evidence, target) if isinstance(evidence, str) else evidence
    method = settings.method if settings is not None else None
    class_target = settings.target if settings is not None else target
    loaded = load_image(image)
    if channels is not None:
        levels, explicit, top_k = explicit_levels(model, channels)
        layers = [level.name for level in levels]
    else:
        levels, explicit = model.levels(layers), None
    _check_top_k(model, levels, top_k)
    evidence_node, linear = _evidence_layer(model, settings)
    graph = model.instrumented(levels + ([LevelSpec("evidence", evidence_node, "")] if evidence_node else []))
    net_in = network_input(loaded.image, preprocessing, model.mean, model.std)
    height, width = net_in.rgb.shape[:2]
    if level_spacing is None:
        level_spacing = default_level_spacing(height, width, len(levels))
    if not level_spacing > 0:
        raise CnnEngineError(f"level spacing must be positive, not {level_spacing}")

    _check_memory((top_k + (method == "layercam"), len(levels), height, width))
    builder = VolumeBuilder(model, levels, top_k, rank_by, interpolation, (height, width),
                            [explicit.get(level.name) for level in levels] if explicit else None)
    layercam = np.empty((len(levels), height, width), dtype=np.float32) if method == "layercam" else None
    geometry = builder.geometry
    kept_features: dict[str, torch.Tensor] = {}
    done_before = {"steps": 0}  # work reported before the levels (ablated channels), one progress scale

    def capture(index: int, output: torch.Tensor, scores: torch.Tensor | None = None) -> None:
        if index == len(levels):  # the evidence layer, kept whole (one tensor)
            kept_features["features"] = output
            return
        if output.dim() != 4:
            raise CnnEngineError(f"layer {levels[index].name!r} gave a {tuple(output.shape)} output, not a spatial map")
        builder.add(index, output[0], scores)
        if progress is not None:
            progress(done_before["steps"] + index + 1, done_before["steps"] + len(levels))

    x = net_in.tensor.to(model.device)
    chosen: dict[str, int] = {}

    def choose_target(logits: torch.Tensor) -> int:
        settle_labels(model, int(logits.shape[1]))  # a plain module's labels, from its output
        chosen["target"] = resolve_target(class_target, model.categories, int(logits[0].argmax()), int(logits.shape[1]))
        return chosen["target"]

    if method == "gradcam" and rank_by != "effect":
        # Gradients from the Grad-CAM layer on only: the levels below it are captured as in inference.
        from .evidence.gradcam import grad_cam_pass

        grad_cam_run = grad_cam_pass(graph, model.module, x, len(levels), choose_target, capture)
        logits, kept_features["gradcam"] = grad_cam_run.logits, grad_cam_run.map
    elif rank_by == "effect" or method in ("gradcam", "layercam"):
        def grad_cam_of(outputs: list[torch.Tensor], logits: torch.Tensor, target_index: int) -> None:
            kept_features["gradcam"] = grad_cam(outputs[len(levels)], logits[0, target_index])

        passed = gradient_pass(graph, model.module, x, len(levels) + (evidence_node is not None), choose_target,
                               effect=rank_by == "effect", layercam=method == "layercam",
                               extra=grad_cam_of if method == "gradcam" else None)
        logits = passed.logits
        for index, output in enumerate(passed.outputs):
            capture(index, output[None], passed.effect[index] if passed.effect and index < len(levels) else None)
        if layercam is not None:
            for index, values in enumerate(passed.layercam[: len(levels)]):
                cells = level_geometry(geometry, levels[index].node, values.shape, (height, width))
                layercam[index] = resampled(values[None], (height, width), interpolation, cells)[0].numpy()
            kept_features["layercam"] = passed.layercam[len(levels) - 1]
    else:
        scores_by_level: list[torch.Tensor] | None = None
        if rank_by == "ablation":
            from .ablation import ablation_scores

            with torch.inference_mode():
                target_index = choose_target(class_scores(model.module(x)))
            def ablated(done: int, total: int) -> None:
                done_before["steps"] = total
                if progress is not None:
                    progress(done, total + len(levels))

            scores_by_level = ablation_scores(model, x, levels, target_index, progress=ablated)
        with torch.inference_mode():
            logits = graph(x, lambda i, out: capture(i, out, scores_by_level[i] if scores_by_level and i < len(levels) else None))
        logits = class_scores(logits)
    if isinstance(logits, torch.Tensor) and logits.dim() == 2:
        settle_labels(model, int(logits.shape[1]))  # a plain module's labels, from its output
    predictions = _top_predictions(model, logits.detach() if isinstance(logits, torch.Tensor) else logits)
    evidence_map, evidence_info = (None, None)
    if settings is not None:
        node = levels[-1].node if method == "layercam" else evidence_node
        evidence_map, evidence_info = _evidence(model, settings, logits, kept_features, linear, node, x,
                                                geometry, (height, width))
    arrays = builder.arrays()
    if layercam is not None:
        arrays["layercam"] = layercam
    return assemble_volume(model, builder, arrays, predictions, loaded, preprocessing, net_in.rgb, layers, level_spacing,
                           created, chosen.get("target") if rank_by in CLASS_RANKINGS else None,
                           evidence_map, evidence_info)


def assemble_volume(model: CnnModel, builder: VolumeBuilder, arrays: dict[str, np.ndarray], predictions: list[Prediction],
                    loaded: LoadedImage, preprocessing: Preprocessing, rgb: np.ndarray, layers: LayerSelection,
                    level_spacing: float, created: str, rank_target: int | None = None,
                    evidence_map: np.ndarray | None = None, evidence_info: EvidenceInfo | None = None,
                    **set_fields) -> ActivationVolume:
    """The volume of one image from its builder and what the runner knows (one owner of the
    provenance record, for one image and for sets; ``set_fields``: ``set_index``, ``true_label``,
    ``true_label_name``)."""
    return ActivationVolume(
        arrays=arrays,
        levels=list(builder.infos),
        predictions=predictions,
        provenance=Provenance(
            image_path=loaded.path,
            image_sha256=loaded.sha256,
            model=model.name,
            weights=model.weights,
            trained=model.trained,
            labels=model.labels,
            preprocessing=preprocessing.describe(),
            input_size=tuple(int(v) for v in rgb.shape[:2]),
            layers=layers if isinstance(layers, str) else ",".join(layers),
            top_k=builder.top_k,
            rank_by=builder.rank_by,
            interpolation=builder.interpolation,
            device=str(model.device),
            engine_version=__version__,
            created=created,
            rank_target=rank_target,
            **set_fields,
        ),
        image=rgb,
        level_spacing=float(level_spacing),
        extra={"substitution": model.substitution} if model.substitution else {},
        evidence=evidence_map,
        evidence_info=evidence_info,
    )


def check_options(top_k: int, rank_by: str, interpolation: str) -> None:
    """Refuse a ``top_k`` below 1, an unknown ranking or interpolation, by name."""
    if top_k < 1:
        raise CnnEngineError(f"top_k must be at least 1, not {top_k}")
    if rank_by not in RANK_BY:
        raise CnnEngineError(f"unknown ranking {rank_by!r}: use one of {', '.join(RANK_BY)}")
    if interpolation not in INTERPOLATIONS:
        raise CnnEngineError(f"unknown interpolation {interpolation!r}: use one of {', '.join(INTERPOLATIONS)}")


def explicit_levels(model: CnnModel, channels: Mapping[str, Sequence[int]]) -> tuple[list[LevelSpec], dict[str, tuple[int, ...]], int]:
    """The levels named in ``channels`` (network order), their channels, and the longest list's length."""
    if not channels or not all(len(c) for c in channels.values()):
        raise CnnEngineError("explicit channels need at least one level with at least one channel, "
                             "e.g. {'layer4.2': [12, 40]} (--channel-list 'layer4.2:12,40')")
    resolved = model.levels(list(channels))  # one level per name, in the order given
    explicit = {level.name: tuple(int(c) for c in given) for level, given in zip(resolved, channels.values())}
    order = {node.name: i for i, node in enumerate(model.catalog.nodes)}
    levels = sorted(resolved, key=lambda level: order.get(level.node, -1))  # the input first
    return levels, explicit, max(len(c) for c in explicit.values())


def creation_time() -> str:
    """The volume's creation time, UTC, ISO 8601 to the second (``2024-01-31T12:00:00+00:00``).

    Now, unless ``SOURCE_DATE_EPOCH`` is set (the reproducible-builds convention: seconds since
    1970-01-01 UTC, a whole number): then that time, so that two exports of the same input with
    the same settings give byte-identical files. An empty value counts as unset; any other value
    that is not a whole number of seconds is a :class:`CnnEngineError`.
    """
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        moment = _dt.datetime.now(_dt.timezone.utc)
    else:
        if not re.fullmatch(r"[0-9]+", value):
            raise CnnEngineError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds since 1970-01-01 "
                                 "UTC: set it like `date +%s` prints (e.g. 1700000000), or unset it")
        try:
            moment = _dt.datetime.fromtimestamp(int(value), _dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise CnnEngineError(f"SOURCE_DATE_EPOCH={value} is out of range (after the year 9999): "
                                 "set it like `date +%s` prints (e.g. 1700000000), or unset it") from None
    return moment.isoformat(timespec="seconds")


def _check_top_k(model: CnnModel, levels: Sequence[LevelSpec], top_k: int) -> None:
    """Refuse a ``top_k`` above the channel count of the widest chosen layer.

    Ranks past it would be NaN on every level: a mistake (``--top-k 100000``), not a wish, so it
    is refused with the largest useful value rather than clamped. A narrower layer among wider
    ones (the 3-channel input) still gets NaN maps for its missing ranks. Channel counts come from
    the layer catalog's probe at the reference size (taken when the model was loaded): no
    computing here.
    """
    widest, widest_name = 0, ""
    for level in levels:
        shape = model.catalog.reference_shapes.get(level.node)
        if shape is None or len(shape) != 4:
            return  # a channel count unknown before running: nothing to judge by
        if shape[1] > widest:
            widest, widest_name = int(shape[1]), level.name
    if top_k > widest > 0:
        raise CnnEngineError(
            f"top_k {top_k} is more than the {widest} channels of the widest chosen layer ({widest_name}): "
            f"use a top_k of at most {widest} (--top-k {widest}), or choose wider layers"
        )


def _check_memory(shape: tuple[int, int, int, int]) -> None:
    """Refuse an output buffer (top_k, levels, height, width) of float32 that memory cannot hold.

    The limit is the memory available now (``MemAvailable`` in /proc/meminfo; where that cannot
    be read, nothing is refused): numpy would otherwise fail half-way, or the system would swap.
    """
    needed = 4 * int(np.prod(shape, dtype=object))
    available = available_memory()
    if available is not None and needed > available:
        top_k, levels, height, width = shape
        raise CnnEngineError(
            f"the volume would need {_gib(needed)} of memory (top_k {top_k} x {levels} levels x {height} x {width} "
            f"pixels x 4 bytes), more than the {_gib(available)} available: lower top_k, choose fewer layers "
            "or a smaller input size"
        )


def available_memory() -> int | None:
    """Bytes of memory available for new allocations (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _evidence_layer(model: CnnModel, settings: EvidenceSettings | None) -> tuple[str | None, object]:
    """The graph operation whose output the evidence method needs whole, and CAM's classifier."""
    if settings is None or settings.method in ("occlusion", "layercam"):
        return None, None  # occlusion needs no layer; LayerCAM uses every level
    if settings.method == "cam":
        from .evidence.cam import cam_layers

        return cam_layers(model.module, model.catalog)
    layer = settings.layer or model.levels("blocks")[-1].name
    return model.levels([layer])[0].node, None


def _evidence(model, settings, logits, kept, linear, node, x, geometry, size) -> tuple[np.ndarray, EvidenceInfo]:
    from .evidence.cam import class_activation_map
    from .evidence.occlusion import occlusion_map

    probabilities = torch.softmax(logits.detach()[0].float(), dim=0)
    target = resolve_target(settings.target, model.categories, int(probabilities.argmax()), probabilities.numel())
    details: dict = {}
    if settings.method == "occlusion":
        values, images = occlusion_map(model.module, x, target, float(probabilities[target]), settings.patch,
                                       settings.stride, settings.occluder, settings.batch_size)
        details = {"patch": settings.patch, "stride": settings.stride, "occluder": settings.occluder, "images": images}
    else:
        if settings.method == "cam":
            with torch.no_grad():
                native = class_activation_map(kept["features"], linear, target)
        else:
            native = kept[settings.method]  # Grad-CAM's layer, or the deepest level's LayerCAM
        cells = level_geometry(geometry, node, native.shape, size)
        values = resampled(native[None], size, "bilinear", cells)[0]
    info = EvidenceInfo(
        method=settings.method,
        target_index=target,
        target_label=model.label(target),
        target_probability=float(probabilities[target]),
        layer=None if settings.method == "occlusion" else node,
        details=details,
    )
    return np.ascontiguousarray(values.detach().float().cpu().numpy()), info


def default_level_spacing(height: int, width: int, levels: int) -> float:
    """The short side over the number of levels: a volume about as deep as it is wide."""
    return float(min(height, width)) / levels


def _as_model(model: CnnModel | nn.Module, labels=None, mean=None, std=None) -> CnnModel:
    if isinstance(model, nn.Module):
        if model not in _wrapped:
            _wrapped[model] = as_cnn_model(model)
        wrapped = _wrapped[model]
        set_module_options(wrapped, labels, mean, std)  # this call's labels and normalisation
        return wrapped
    return as_cnn_model(model, labels, mean, std)


def _top_predictions(model: CnnModel, logits: object, count: int = 5) -> list[Prediction]:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        return []
    probabilities = torch.softmax(logits[0].float(), dim=0)
    values, indices = torch.topk(probabilities, min(count, probabilities.numel()))
    return [
        Prediction(rank=r + 1, index=int(i), label=model.label(int(i)), probability=float(p))
        for r, (p, i) in enumerate(zip(values.tolist(), indices.tolist()))
    ]
