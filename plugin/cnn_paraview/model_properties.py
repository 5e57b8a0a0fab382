"""The model options both sources show (CNN Activation Volume, CNN Image Set): one definition.

:class:`_ModelProperties` holds the decorated property methods (Model, Weights, Layer Set, Top K,
Rank By, Input Size, Fit, Interpolation, Level Spacing, Device, Evidence, Target Class, Trust
TorchScript, and the read-only Forward Passes and Model In Use); a proxy class inherits them and
copies them into its own body with :func:`base.inherit_properties`. Their values live in
``self._settings`` under the engine's option names; enumerations hold the entry the panel shows
(``"CAM"``), which :func:`base.engine_value` turns into the engine's (``"cam"``). Defaults,
enumerations and ranges come from :data:`cnn_engine.options.OPTIONS`.

ParaView 5.11 orders the property panel by method name, hence the ``aNN_`` prefixes.
"""

from __future__ import annotations

from typing import Any

from cnn_engine.options import OPTIONS
from paraview.util.vtkAlgorithm import smdomain, smhint, smproperty

from .base import (
    Domains, _DictSettings, default_index, default_number, engine_value, option_label, shown_entry, strings,
)
from .xml import documentation

WEIGHTS_DEFAULT = "default"  # the Weights text for the option's None: the model's own default weights


def model_settings() -> dict[str, Any]:
    """The model options' defaults, as the settings store them (the XML defaults below say the same)."""
    return {
        "model": OPTIONS["model"].default, "weights": WEIGHTS_DEFAULT,
        "layers": shown_entry("layers", OPTIONS["layers"].default), "top_k": default_number("top_k"),
        "rank_by": shown_entry("rank_by", OPTIONS["rank_by"].default), "input_size": default_number("input_size"),
        "fit": shown_entry("fit", OPTIONS["fit"].default),
        "interpolation": shown_entry("interpolation", OPTIONS["interpolation"].default),
        "level_spacing": default_number("level_spacing"), "device": shown_entry("device", OPTIONS["device"].default),
        "evidence": shown_entry("evidence", OPTIONS["evidence"].default), "target": "",
        "trust_torchscript": False,
    }


class _ModelProperties(_DictSettings):
    """The model options of a source, and the session that keeps its model (``self.session``)."""

    def _start_session(self) -> None:
        """Set ``self.session`` (None, with ``self._setup_error`` saying why, without a usable environment)."""
        try:
            from cnn_engine.session import Session
        except ImportError as exc:  # no .venv, or an incomplete one: say so on every update
            self.session = None
            self._setup_error = (f"the cnnvis Python environment is not usable here ({exc}); run scripts/setup.sh "
                                 "in the project folder, or set CNNVIS_VENV to its virtual environment")
        else:
            self.session = Session()
            self._setup_error = None
        self._announced = -1  # the model build whose stand-in was last announced

    def _model_request(self, image: str = "", layers: str | None = None):
        """The session's request for ``image`` with these settings (``layers``: instead of the Layer Set)."""
        from cnn_engine.session import VolumeRequest

        s = self._settings
        return VolumeRequest(
            image=image, model=s["model"], weights=None if s["weights"] == WEIGHTS_DEFAULT else s["weights"],
            device=engine_value("device", s["device"]), layers=layers or engine_value("layers", s["layers"]),
            top_k=s["top_k"], rank_by=engine_value("rank_by", s["rank_by"]), input_size=s["input_size"],
            fit=engine_value("fit", s["fit"]), interpolation=engine_value("interpolation", s["interpolation"]),
            level_spacing=s["level_spacing"] or None, evidence=engine_value("evidence", s["evidence"]),
            target=s["target"] or None, trust_torchscript=s["trust_torchscript"],
            allow_offline=True,  # resnet50 with default weights runs efficientnet_lite0 when offline
        )

    def _announce(self, volume) -> None:
        """Say once per model that a stand-in runs (the offline model for resnet50's missing weights).

        Said as information, not as a warning: the first picture says it too (see scenes.py).
        """
        substitution = volume.extra.get("substitution")
        if substitution and self._announced != self.session.model_builds:
            self._announced = self.session.model_builds
            self._note(substitution)

    @smproperty.intvector(name="ForwardPasses", information_only="1", panel_visibility="never",
                          number_of_elements=1, default_values=0)
    @smdomain.xml(documentation("How often the network ran (forward_passes, for scripts and clients)."))
    def a00_GetForwardPasses(self):
        return self.forward_passes

    @smproperty.stringvector(name="ModelInUse", label="Model In Use", information_only="1", panel_visibility="default")
    @smdomain.xml("<StringArrayHelper/>")
    @smhint.xml('<Widget type="one_liner_wrapped"/>')
    def a00_GetModelInUse(self):
        """The model and weights that really made the volume (they differ from Model when offline)."""
        model = self.session.current_model if self.session is not None else None
        if model is None:
            return strings([])
        return strings([f"{model.name}, weights {model.weights}"
                        + (f" ({model.substitution})" if model.substitution else "")])

    @smproperty.stringvector(name="ModelNames", information_only="1")
    @smdomain.xml("<StringArrayHelper/>")
    def a02_GetModelNames(self):
        from cnn_engine import available_models

        return strings(available_models())

    @smproperty.stringvector(name="Model", number_of_elements=1, default_values=OPTIONS["model"].default)
    @smdomain.xml(
        '<StringListDomain name="list"><RequiredProperties>'
        '<Property name="ModelNames" function="ArrayList"/></RequiredProperties></StringListDomain>'
        + documentation("The network: any torchvision classification model, or efficientnet_lite0 "
                        "(trained ImageNet weights available offline). Changing it rebuilds the model."))
    def a03_SetModel(self, name):
        self._set("model", name)

    @smproperty.stringvector(name="Weights", number_of_elements=1, default_values=WEIGHTS_DEFAULT)
    @smdomain.xml(documentation(
        "default (IMAGENET1K_V1 for resnet50, packaged for efficientnet_lite0, torchvision's DEFAULT "
        "otherwise), a torchvision weights name such as IMAGENET1K_V2, random (seeded, untrained), or the "
        "path of a state-dict or TorchScript file. Pretrained weights come from the torch cache or are downloaded."))
    def a04_SetWeights(self, weights):
        self._set("weights", weights or WEIGHTS_DEFAULT)

    @smproperty.intvector(name="LayerSet", label=option_label("layers"), default_values=default_index("layers"))
    @smdomain.xml(Domains.LayerSet.xml() + documentation(
        "Which layer outputs become levels: blocks (the building blocks; "
        "19 for ResNet-50), convs (every convolution), all (every spatial operation)."))
    def a05_SetLayerSet(self, index):
        self._set_checked("layers", index, Domains.LayerSet)

    @smproperty.intvector(name="TopK", label=option_label("top_k"), default_values=default_number("top_k"))
    @smdomain.xml(Domains.TopK.xml() + documentation(
        "How many of each layer's best channels (by Rank By) to keep: arrays rank0 ... rank{K-1}."))
    def a06_SetTopK(self, k):
        self._set_checked("top_k", k, Domains.TopK)

    @smproperty.intvector(name="RankBy", label=option_label("rank_by"), default_values=default_index("rank_by"))
    @smdomain.xml(Domains.RankBy.xml() + documentation(
        "How channels are ranked: mean activation, max activation, or L2 norm of the map; or by what "
        "they do for the Target Class (empty: the top-1 class): effect, the first-order effect on its "
        "log-probability (sum over the map of gradient x activation; one backward pass), or ablation, the "
        "measured drop of its probability when the channel is set to zero (one forward pass per channel: "
        "slow on big layer sets, minutes for convs or all; best for blocks or a few layers). The field "
        "data's rank_by and channel_score say which ranking made the scores."))
    def a07_SetRankBy(self, index):
        self._set_checked("rank_by", index, Domains.RankBy)

    @smproperty.intvector(name="InputSize", label=option_label("input_size"),
                          default_values=default_number("input_size"))
    @smdomain.xml(Domains.InputSize.xml() + documentation(
        "Network input size in pixels (the short side, or the crop side for center-crop)."))
    def a08_SetInputSize(self, size):
        self._set_checked("input_size", size, Domains.InputSize)

    @smproperty.intvector(name="Fit", label=option_label("fit"), default_values=default_index("fit"))
    @smdomain.xml(Domains.Fit.xml() + documentation(
        "How the image meets the input size: short-side (whole image, no crop), "
        "center-crop (the classic ImageNet crop), native (the image's own size, capped)."))
    def a09_SetFit(self, index):
        self._set_checked("fit", index, Domains.Fit)

    @smproperty.intvector(name="Interpolation", label=option_label("interpolation"),
                          default_values=default_index("interpolation"))
    @smdomain.xml(Domains.Interpolation.xml() + documentation(
        "Resampling of coarse layers onto the input grid: nearest "
        "(an exact block repeat of each feature cell) or bilinear."))
    def a10_SetInterpolation(self, index):
        self._set_checked("interpolation", index, Domains.Interpolation)

    @smproperty.doublevector(name="LevelSpacing", label=option_label("level_spacing"),
                             default_values=default_number("level_spacing"))
    @smdomain.xml(Domains.LevelSpacing.xml() + documentation(
        "Z distance between levels in input pixels; 0 makes the volume about as deep as the "
        "image's short side. Changing it does not re-run the network."))
    def a11_SetLevelSpacing(self, spacing):
        self._set_checked("level_spacing", spacing, Domains.LevelSpacing)

    @smproperty.intvector(name="Device", label=option_label("device"), default_values=default_index("device"))
    @smdomain.xml(Domains.Device.xml() + documentation(
        "Where the network runs: auto (CUDA when present), cpu, cuda."))
    def a12_SetDevice(self, index):
        self._set_checked("device", index, Domains.Device)

    @smproperty.intvector(name="Evidence", label=option_label("evidence"), default_values=default_index("evidence"))
    @smdomain.xml(Domains.Evidence.xml() + documentation(
        "Class evidence map for the Target Class, added as the volume's top level "
        "and as output port 2 (2-D, on the same X/Y): CAM (models ending in global pooling and "
        "one linear layer), GradCAM (any model), Occlusion (drop of the class probability when a "
        "32-pixel patch is hidden; hundreds of forward passes), LayerCAM (at every level: a point "
        "array layercam beside the ranks, each level's evidence drawn on its receptive fields; the "
        "top level is the deepest level's map; one backward pass)."))
    def a13_SetEvidence(self, index):
        self._set_checked("evidence", index, Domains.Evidence)

    @smproperty.stringvector(name="TargetClass", label=option_label("target"), number_of_elements=1, default_values="")
    @smdomain.xml(documentation("The class to explain (Evidence) and to rank channels for (Rank By effect or "
                                "ablation): a label (tabby) or class index (281), as listed in the "
                                "predictions table (output port 1); empty for the top-1 class."))
    def a14_SetTargetClass(self, target):
        self._set("target", (target or "").strip())

    @smproperty.intvector(name="TrustTorchScript", label="Trust TorchScript", default_values=0,
                          panel_visibility="advanced")
    @smdomain.xml('<BooleanDomain name="bool"/>' + documentation(
        "Allow a TorchScript archive as Weights. Loading one runs code stored in it, so it is refused unless this "
        "is on: turn it on only for files from a source you trust, or re-save the weights as a plain state dict "
        "(torch.save(model.state_dict(), path)), which loads without running code."))
    def a15_SetTrustTorchScript(self, trust):
        self._set("trust_torchscript", bool(trust))
