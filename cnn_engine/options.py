"""Every option of a volume, described once: name, choices, default, help and ParaView spelling.

The command line (:mod:`cnn_engine.cli`), the :class:`cnn_engine.session.VolumeRequest` of
interactive front ends and the ParaView plugin's properties are all built from :data:`OPTIONS`,
so a default, a choice or a help text is written here and nowhere else. The engine's modules
take their choice lists from here too (``ranking.RANK_BY`` is ``options.RANK_BY``).

This module imports nothing but the standard library: the plugin reads it while ParaView loads,
before (and without) torch.

ParaView saves an enumeration property by the *index* of its value in state files, so choices
are only ever appended, never inserted or reordered (a test checks the plugin's lists against
the order recorded in saved example states).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Model used when none is named, and the trained model that works offline (see models.py).
DEFAULT_MODEL = "resnet50"
OFFLINE_MODEL = "efficientnet_lite0"
DEVICES = ("auto", "cpu", "cuda")
LAYER_SETS = ("blocks", "convs", "all")
RANK_BY = ("mean", "max", "l2", "effect", "ablation")
#: Rankings made for a class (the target), by gradients or by switching channels off.
CLASS_RANKINGS = ("effect", "ablation")
#: How the channels of a level are chosen across a set of images (see cnn_engine.sets).
CHANNEL_CHOICES = ("per-image", "set", "explicit")
FITS = ("short-side", "center-crop", "native")
INTERPOLATIONS = ("nearest", "bilinear")
METHODS = ("cam", "gradcam", "occlusion", "layercam")
OCCLUDERS = ("mean", "blur", "noise")
#: Scalings of one volume's arrays (see cnn_engine.normalize).
NORMALIZATIONS = ("per-level-minmax", "per-level-percentile", "per-level-zscore", "global-minmax", "none")
#: ``set``: each level scaled by its range over the whole image set (needs a first pass).
SET_NORMALIZATIONS = NORMALIZATIONS + ("set",)


@dataclass(frozen=True)
class Option:
    """One option of a volume.

    ``name`` is the Python keyword (``top_k``), from which the command-line flag (``--top-k``)
    is made. ``choices`` are the allowed values (None: free), ``default`` the value used when
    none is given (None: worked out at run time, ``help`` says how). ``paraview`` is the
    property name in the plugin, ``label`` its panel label, and ``paraview_choices`` the
    spelling of ``choices`` in its drop-down list (same order; default: as ``choices``), with
    ``paraview_none`` the entry standing for None when None is allowed. ``minimum``/``maximum``
    bound a number in the plugin's slider (and ``minimum`` on the command line).
    """

    name: str
    help: str
    default: Any = None
    choices: tuple[str, ...] | None = None
    kind: type = str
    paraview: str | None = None
    label: str | None = None
    paraview_choices: tuple[str, ...] | None = None
    paraview_none: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    metavar: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def shown_choices(self) -> tuple[str, ...]:
        """The plugin's drop-down entries: ``paraview_none`` (if any) then each choice's spelling."""
        spelled = self.paraview_choices or self.choices or ()
        return ((self.paraview_none,) if self.paraview_none else ()) + tuple(spelled)

    def from_index(self, index: int) -> Any:
        """The engine value of the plugin's drop-down entry ``index`` (None for ``paraview_none``)."""
        if self.paraview_none:
            if index == 0:
                return None
            index -= 1
        return self.choices[index]

    def to_index(self, value: Any) -> int:
        """The plugin's drop-down index of the engine value ``value``."""
        if value is None and self.paraview_none:
            return 0
        return self.choices.index(value) + (1 if self.paraview_none else 0)


OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("model", f"torchvision model name or {OFFLINE_MODEL} (default {DEFAULT_MODEL}; without its ImageNet weights "
           f"and with no weights given, the trained offline {OFFLINE_MODEL})", DEFAULT_MODEL, paraview="Model"),
    Option("weights", "the model's default (IMAGENET1K_V1 for resnet50), another torchvision weights name, DEFAULT, "
           "random, or a .pth/TorchScript file", None, paraview="Weights"),
    Option("device", "where the network runs (auto: cuda when available, else cpu)", "auto", DEVICES,
           paraview="Device"),
    Option("layers", f"layer set ({', '.join(LAYER_SETS)}) or comma-separated layer names", "blocks",
           paraview="LayerSet", label="Layer Set", paraview_choices=LAYER_SETS),
    Option("top_k", "channels kept per layer", 4, kind=int, paraview="TopK", label="Top K", minimum=1, maximum=16),
    Option("rank_by", "channel ranking: mean, max, l2 activation, or effect / ablation on the target class "
           "(ablation runs the network once per channel: use few layers)", "mean", RANK_BY,
           paraview="RankBy", label="Rank By"),
    Option("channels", "which channels each level shows: per-image (each image its own top-k), set (the top-k by "
           "the ranking over the whole set: rank r is the same channel for every image) or explicit (given "
           "channel indices)", "per-image", CHANNEL_CHOICES, paraview="ChannelChoice", label="Channel Choice",
           paraview_choices=("PerImage", "Set", "Explicit")),
    Option("normalization", "scaling of the values: per level, over the whole array, none, or set (each level by "
           "its range over the whole image set)", "per-level-minmax", SET_NORMALIZATIONS,
           paraview="Normalization",
           paraview_choices=("PerLevelMinMax", "PerLevelPercentile", "PerLevelZScore", "Global", "None", "Set")),
    Option("input_size", "network input size in pixels", 224, kind=int, paraview="InputSize", label="Input Size",
           minimum=16, maximum=1024),
    Option("fit", "how the image meets the input size", "short-side", FITS, paraview="Fit"),
    Option("interpolation", "resampling of each level onto the input grid", "nearest", INTERPOLATIONS,
           paraview="Interpolation"),
    Option("level_spacing", "z distance between levels in input pixels (default: the short side over the number "
           "of levels)", None, kind=float, paraview="LevelSpacing", label="Level Spacing", minimum=0.0, maximum=100.0),
    Option("evidence", "class evidence map: cam (global-pooling + linear models), gradcam (any model), occlusion, "
           "layercam (every level, as the volume array layercam)", None, METHODS, paraview="Evidence",
           paraview_choices=("CAM", "GradCAM", "Occlusion", "LayerCAM"), paraview_none="None"),
    Option("target", "class label or index to explain, and to rank channels by with rank_by effect/ablation "
           "(default: the top-1 class)", None, paraview="TargetClass", label="Target Class"),
    Option("batch_size", "images per batch through the network (default: up to 16, fewer when memory is short)",
           None, kind=int, paraview="BatchSize", label="Batch Size", minimum=1, maximum=256),
    Option("channel_list", "the channels of channels explicit: LEVEL:C,C;LEVEL:C (channel indices from 0), e.g. "
           "'layer4.2:12,40;layer3.5:7'; the volume's levels are the listed levels", None,
           paraview="ExplicitChannels", label="Explicit Channels", metavar="LEVEL:C,C;LEVEL:C"),
    # The evidence map's own settings (cnn_engine.evidence.EvidenceSettings); command line only.
    Option("evidence_layer", "Grad-CAM layer (default: the last spatial block)", None),
    Option("patch", "occlusion patch side in pixels", 32, kind=int, minimum=1),
    Option("stride", "occlusion stride in pixels", 16, kind=int, minimum=1),
    Option("occluder", "what hides a patch in occlusion: its mean colour, a blur or noise", "mean", OCCLUDERS),
)}


def default(name: str) -> Any:
    """The default of option ``name``."""
    return OPTIONS[name].default


def help_text(name: str) -> str:
    """Option ``name``'s help, with its default appended when it has a fixed one."""
    option = OPTIONS[name]
    value = option.default
    return option.help if value is None else f"{option.help} (default {value})"
