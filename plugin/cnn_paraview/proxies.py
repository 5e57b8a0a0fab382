"""The ParaView proxies. They convert; cnn_engine computes.

* ``CNNActivationVolume`` (source, Sources > CNN) and ``CNNActivationVolumeReader`` (the same
  algorithm registered as a reader of image files, for File > Open): output port 0 is the
  activation volume as ``vtkImageData`` (see ``cnn_engine.volume`` for layout and orientation),
  port 1 the top-5 predictions as a ``vtkTable``, port 2 the class evidence map (2-D image
  data on the same X/Y, empty unless Evidence is set).
* ``CNNLayerNormalize`` (filter): one normalised ``activation`` array from the ranked channels
  (or the ``layercam`` array).
* ``CNNNetCDFWriter`` (writer, ``*.nc``): the engine's netCDF format.

ParaView 5.11 orders the property panel by method name, hence the ``aNN_``/``bNN_`` prefixes.
Errors are reported with ``paraview.print_error`` (Output Messages in the GUI) and make the
request fail cleanly; a property value out of its domain is refused the same way, and the
property keeps its last allowed value. ``last_error`` on the algorithm object keeps the message
for scripts, and the information property ``LastError`` carries it to clients (the algorithm
object lives on the server in client/server mode).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonCore import vtkStringArray
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData, vtkTable
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

from .xml import Domain, DoubleRange, Enumeration, IncreasingPair, IntRange, documentation

IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "gif", "webp"]
LAYER_SETS = ["blocks", "convs", "all"]
# Enumerations are saved by index in state files: new values are appended, never inserted.
RANK_BY = ["mean", "max", "l2", "effect", "ablation"]
FITS = ["short-side", "center-crop", "native"]
INTERPOLATIONS = ["nearest", "bilinear"]
DEVICES = ["auto", "cpu", "cuda"]
EVIDENCE = ["None", "CAM", "GradCAM", "Occlusion", "LayerCAM"]
NORMALIZATIONS = ["PerLevelMinMax", "PerLevelPercentile", "PerLevelZScore", "Global", "None"]
CHANNELS = ["Top1", "Rank", "MeanTopK", "MaxTopK", "LayerCAM"]
CAPTIONS = ["Level", "Predictions"]
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


class Domains:
    """Each checked property's allowed values: the XML domain of its widget and its setter's check."""

    LayerSet = Enumeration("LayerSet", LAYER_SETS)
    TopK = IntRange("TopK", 1, 16)
    RankBy = Enumeration("RankBy", RANK_BY)
    InputSize = IntRange("InputSize", 16, 1024)
    Fit = Enumeration("Fit", FITS)
    Interpolation = Enumeration("Interpolation", INTERPOLATIONS)
    LevelSpacing = DoubleRange("LevelSpacing", 0.0, 100.0)
    Device = Enumeration("Device", DEVICES)
    Evidence = Enumeration("Evidence", EVIDENCE)
    Normalization = Enumeration("Normalization", NORMALIZATIONS)
    PercentileRange = IncreasingPair("PercentileRange", 0.0, 100.0)
    Channels = Enumeration("Channels", CHANNELS)
    Rank = IntRange("Rank", 0, 15)
    Content = Enumeration("Content", CAPTIONS)


class _Reporting:
    """Error reporting shared by the proxies: one clear message, empty outputs, no crash.

    A failed request reports its message once and then completes with empty outputs. Returning
    failure (0) instead would add VTK's dump of the pipeline request to Output Messages, and
    every downstream update would run the failed request, and print its message, again.

    A property value outside its domain is refused in its setter, with one message, and the
    property keeps its last allowed value (an exception raised in a setter would only be printed
    by the server manager, and the value half applied or silently ignored).
    """

    label = "CNN"
    _failure: str | None = None  # the message of the last request, if it failed

    @property
    def last_error(self) -> str | None:
        """The message of the failed last request, else of the latest refused property value that
        is still set (a later allowed value of that property clears it); None when all is well."""
        refusals = self.__dict__.get("_refusals") or {}
        return self._failure or next(reversed(refusals.values()), None)

    def _report(self, message: str) -> None:
        from paraview import print_error

        print_error(f"{self.label}: {message}")

    def _fail(self, message: str) -> int:
        self._failure = message
        self._report(message)
        for port in range(self.GetNumberOfOutputPorts()):
            output = self.GetOutputDataObject(port)
            if output is not None:
                output.Initialize()
        return 1

    def _checked(self, domain: Domain, value: Any, current: Any) -> Any:
        """``value`` as the setter stores it when ``domain`` allows it; else None, after one message
        naming the property, the value, what is allowed and the value ``current`` that stays."""
        refusals = self.__dict__.setdefault("_refusals", {})
        accepted = domain.accept(value)
        refusals.pop(domain.name, None)
        if accepted is None:
            shown = tuple(value) if isinstance(value, (list, tuple)) else value
            refusals[domain.name] = (f"{domain.name} = {shown!r} refused: it must be {domain.allowed()}; "
                                     f"{domain.name} stays {current!r}")
            self._report(refusals[domain.name])
        return accepted

    def _guarded(self, work) -> int:
        from cnn_engine import CnnEngineError

        self._failure = None
        try:
            return work()
        except CnnEngineError as exc:
            return self._fail(str(exc))
        except Exception as exc:  # a bug, but ParaView must keep running
            traceback.print_exc()
            return self._fail(f"unexpected {type(exc).__name__}: {exc}")


class _AttributeSettings(_Reporting):
    """Setters of proxies that keep each property in an attribute of its own (the filters)."""

    def _set(self, attribute: str, value) -> None:
        if getattr(self, attribute) != value:
            setattr(self, attribute, value)
            self.Modified()

    def _set_checked(self, attribute: str, value: Any, domain: Domain) -> None:
        """Set ``attribute`` to ``value`` if ``domain`` allows it; else report it and keep the attribute."""
        accepted = self._checked(domain, value, getattr(self, attribute))
        if accepted is not None:
            self._set(attribute, accepted)


def _inherit_properties(cls):
    """The decorators read only the class's own methods: copy the decorated ones of its bases."""
    for base in cls.__mro__[1:]:
        for name, value in vars(base).items():
            if name not in vars(cls) and hasattr(value, "_pv_original_func"):
                setattr(cls, name, value)
    return cls


def _strings(values: Iterable[str]) -> vtkStringArray:
    array = vtkStringArray()
    for value in values:
        array.InsertNextValue(value)
    return array


def _last_error_property(method: str, panel_visibility: str):
    """The information property ``LastError``, to be bound in a proxy's class body as ``method``
    (the name sets its place in the panel): ``last_error`` as clients read it, also from a server
    (``proxy.UpdatePropertyInformation(); proxy.GetPropertyValue("LastError")``); "" when all is well.

    Always one element: after an empty array the property was seen holding its XML default, the text "None".
    """

    @smproperty.stringvector(name="LastError", label="Last Error", command=method, information_only="1",
                             number_of_elements=1, default_values="", panel_visibility=panel_visibility)
    @smdomain.xml("<StringArrayHelper/>" + documentation(
        "Why the last update failed or a property value was refused (also in Output Messages); "
        "empty when all is well."))
    @smhint.xml('<Widget type="one_liner_wrapped"/>')
    def get_last_error(self):
        return _strings([self.last_error or ""])

    return get_last_error


class _ActivationVolumeBase(_Reporting, VTKPythonAlgorithmBase):
    label = "CNN Activation Volume"

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=0, nOutputPorts=3, outputType="vtkImageData")
        try:
            from cnn_engine.session import Session
        except ImportError as exc:  # no .venv, or an incomplete one: say so on every update
            self.session = None
            self._setup_error = (f"the cnnvis Python environment is not usable here ({exc}); run scripts/setup.sh "
                                 "in the project folder, or set CNNVIS_VENV to its virtual environment")
        else:
            self.session = Session()
            self._setup_error = None
        self._settings = {
            "image": "", "model": "resnet50", "weights": "default", "layers": "blocks", "top_k": 4,
            "rank_by": "mean", "input_size": 224, "fit": "short-side", "interpolation": "nearest",
            "level_spacing": 0.0, "device": "auto", "evidence": "None", "target": "",
            "trust_torchscript": False,
        }
        self._announced = -1  # the model build whose stand-in was last announced

    @property
    def forward_passes(self) -> int:
        """How often the network ran (a script or test can check that nothing re-ran)."""
        return self.session.forward_passes if self.session is not None else 0

    def _set(self, key: str, value) -> None:
        if self._settings[key] != value:
            self._settings[key] = value
            self.Modified()

    def _set_checked(self, key: str, value: Any, domain: Domain) -> None:
        """Set ``key`` to ``value`` if ``domain`` allows it; else report it and keep the setting."""
        accepted = self._checked(domain, value, self._settings[key])
        if accepted is not None:
            self._set(key, accepted)

    def _announce(self, volume) -> None:
        """Say once per model that a stand-in runs (the offline model for resnet50's missing weights).

        Said as information, not as a warning: a warning would pop the Output Messages window up
        over the first picture, which says it too (see scenes.py).
        """
        from vtkmodules.vtkCommonCore import vtkOutputWindow

        substitution = volume.extra.get("substitution")
        if substitution and self._announced != self.session.model_builds:
            self._announced = self.session.model_builds
            # paraview.print_info fails in 5.11's GUI (its handler asks vtkLogger for a missing
            # VERBOSITY_DEBUG): plain text goes straight to the output window.
            vtkOutputWindow.GetInstance().DisplayText(f"{self.label}: {substitution}\n")

    # Shown in the panel: it explains an empty output.
    a00_GetLastError = _last_error_property("a00_GetLastError", panel_visibility="default")

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
            return _strings([])
        return _strings([f"{model.name}, weights {model.weights}"
                         + (f" ({model.substitution})" if model.substitution else "")])

    def FillOutputPortInformation(self, port, info):
        info.Set(vtkDataObject.DATA_TYPE_NAME(), "vtkTable" if port == 1 else "vtkImageData")
        return 1

    @smproperty.stringvector(name="FileName", default_values="")
    @smdomain.filelist()
    @smhint.filechooser(extensions=IMAGE_EXTENSIONS, file_description="Images")
    @smdomain.xml(documentation(
        "The image to run the network on (png, jpg, bmp, tif, gif, webp). A relative path is looked up "
        "from the current folder, then from the cnnvis project folder (for the example state files)."))
    def a01_SetFileName(self, name):
        self._set("image", name or "")

    @smproperty.stringvector(name="ModelNames", information_only="1")
    @smdomain.xml("<StringArrayHelper/>")
    def a02_GetModelNames(self):
        from cnn_engine import available_models

        return _strings(available_models())

    @smproperty.stringvector(name="Model", number_of_elements=1, default_values="resnet50")
    @smdomain.xml(
        '<StringListDomain name="list"><RequiredProperties>'
        '<Property name="ModelNames" function="ArrayList"/></RequiredProperties></StringListDomain>'
        + documentation("The network: any torchvision classification model, or efficientnet_lite0 "
                        "(trained ImageNet weights available offline). Changing it rebuilds the model."))
    def a03_SetModel(self, name):
        self._set("model", name)

    @smproperty.stringvector(name="Weights", number_of_elements=1, default_values="default")
    @smdomain.xml(documentation(
        "default (IMAGENET1K_V1 for resnet50, packaged for efficientnet_lite0, torchvision's DEFAULT "
        "otherwise), a torchvision weights name such as IMAGENET1K_V2, random (seeded, untrained), or the "
        "path of a state-dict or TorchScript file. Pretrained weights come from the torch cache or are downloaded."))
    def a04_SetWeights(self, weights):
        self._set("weights", weights or "default")

    @smproperty.intvector(name="LayerSet", label="Layer Set", default_values=0)
    @smdomain.xml(Domains.LayerSet.xml() + documentation(
        "Which layer outputs become levels: blocks (the building blocks; "
        "19 for ResNet-50), convs (every convolution), all (every spatial operation)."))
    def a05_SetLayerSet(self, index):
        self._set_checked("layers", index, Domains.LayerSet)

    @smproperty.intvector(name="TopK", label="Top K", default_values=4)
    @smdomain.xml(Domains.TopK.xml() + documentation(
        "How many of each layer's best channels (by Rank By) to keep: arrays rank0 ... rank{K-1}."))
    def a06_SetTopK(self, k):
        self._set_checked("top_k", k, Domains.TopK)

    @smproperty.intvector(name="RankBy", label="Rank By", default_values=0)
    @smdomain.xml(Domains.RankBy.xml() + documentation(
        "How channels are ranked: mean activation, max activation, or L2 norm of the map; or by what "
        "they do for the Target Class (empty: the top-1 class): effect, the first-order effect on its "
        "log-probability (sum over the map of gradient x activation; one backward pass), or ablation, the "
        "measured drop of its probability when the channel is set to zero (one forward pass per channel: "
        "slow on big layer sets, minutes for convs or all; best for blocks or a few layers). The field "
        "data's rank_by and channel_score say which ranking made the scores."))
    def a07_SetRankBy(self, index):
        self._set_checked("rank_by", index, Domains.RankBy)

    @smproperty.intvector(name="InputSize", label="Input Size", default_values=224)
    @smdomain.xml(Domains.InputSize.xml() + documentation(
        "Network input size in pixels (the short side, or the crop side for center-crop)."))
    def a08_SetInputSize(self, size):
        self._set_checked("input_size", size, Domains.InputSize)

    @smproperty.intvector(name="Fit", default_values=0)
    @smdomain.xml(Domains.Fit.xml() + documentation(
        "How the image meets the input size: short-side (whole image, no crop), "
        "center-crop (the classic ImageNet crop), native (the image's own size, capped)."))
    def a09_SetFit(self, index):
        self._set_checked("fit", index, Domains.Fit)

    @smproperty.intvector(name="Interpolation", default_values=0)
    @smdomain.xml(Domains.Interpolation.xml() + documentation(
        "Resampling of coarse layers onto the input grid: nearest "
        "(an exact block repeat of each feature cell) or bilinear."))
    def a10_SetInterpolation(self, index):
        self._set_checked("interpolation", index, Domains.Interpolation)

    @smproperty.doublevector(name="LevelSpacing", label="Level Spacing", default_values=0.0)
    @smdomain.xml(Domains.LevelSpacing.xml() + documentation(
        "Z distance between levels in input pixels; 0 makes the volume about as deep as the "
        "image's short side. Changing it does not re-run the network."))
    def a11_SetLevelSpacing(self, spacing):
        self._set_checked("level_spacing", spacing, Domains.LevelSpacing)

    @smproperty.intvector(name="Device", default_values=0)
    @smdomain.xml(Domains.Device.xml() + documentation(
        "Where the network runs: auto (CUDA when present), cpu, cuda."))
    def a12_SetDevice(self, index):
        self._set_checked("device", index, Domains.Device)

    @smproperty.intvector(name="Evidence", default_values=0)
    @smdomain.xml(Domains.Evidence.xml() + documentation(
        "Class evidence map for the Target Class, added as the volume's top level "
        "and as output port 2 (2-D, on the same X/Y): CAM (models ending in global pooling and "
        "one linear layer), GradCAM (any model), Occlusion (drop of the class probability when a "
        "32-pixel patch is hidden; hundreds of forward passes), LayerCAM (at every level: a point "
        "array layercam beside the ranks, each level's evidence drawn on its receptive fields; the "
        "top level is the deepest level's map; one backward pass)."))
    def a13_SetEvidence(self, index):
        self._set_checked("evidence", index, Domains.Evidence)

    @smproperty.stringvector(name="TargetClass", label="Target Class", number_of_elements=1, default_values="")
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

    def _request(self):
        from cnn_engine.session import VolumeRequest

        s = self._settings
        if not s["image"]:
            from cnn_engine import ImageError

            raise ImageError("no image chosen: set File Name")
        return VolumeRequest(
            image=_resolve_image(s["image"]), model=s["model"],
            weights=None if s["weights"] == "default" else s["weights"], device=s["device"],
            layers=s["layers"], top_k=s["top_k"], rank_by=s["rank_by"], input_size=s["input_size"],
            fit=s["fit"], interpolation=s["interpolation"], level_spacing=s["level_spacing"] or None,
            evidence=None if s["evidence"] == "None" else s["evidence"].lower(), target=s["target"] or None,
            trust_torchscript=s["trust_torchscript"],
            allow_offline=True,  # resnet50 with default weights runs efficientnet_lite0 when offline
        )

    def RequestInformation(self, request, inInfo, outInfo):
        # Downstream filters (Slice) need the grid before any data exists: the session knows it
        # from the image size and the layer set, without weights and without running the network.
        # Errors stay quiet here: paraview.simple sets File Name before the other properties, so
        # this also runs on half-set sources; RequestData reports what is really wrong, once.
        # Without a grid the image ports say "empty" (an old extent would lie about the data
        # RequestData fails to make); the table on port 1 has no extent.
        grid = self._grid()
        for port in (0, 2):
            outInfo.GetInformationObject(port).Set(Pipeline.WHOLE_EXTENT(), 0, -1, 0, -1, 0, -1)
        if grid is None:
            return 1
        levels, height, width, spacing = grid
        info = outInfo.GetInformationObject(0)
        info.Set(Pipeline.WHOLE_EXTENT(), 0, width - 1, 0, height - 1, 0, levels - 1)
        info.Set(vtkDataObject.SPACING(), 1.0, 1.0, spacing)
        info.Set(vtkDataObject.ORIGIN(), 0.0, 0.0, 0.0)
        if self._settings["evidence"] != "None":
            outInfo.GetInformationObject(2).Set(Pipeline.WHOLE_EXTENT(), 0, width - 1, 0, height - 1, 0, 0)
        return 1

    def _grid(self) -> tuple[int, int, int, float] | None:
        """(levels, height, width, level spacing) of the volume the settings ask for, or None
        when they cannot make one (RequestData says why)."""
        if not self._settings["image"] or self.session is None:
            return None
        try:
            return self.session.grid(self._request())
        except Exception:  # whatever it is, RequestData meets it again and reports it, once
            return None

    def RequestData(self, request, inInfo, outInfo):
        if self._setup_error:
            return self._fail(self._setup_error)

        def work() -> int:
            from cnn_engine.vtk_export import evidence_image, predictions_table

            request = self._request()
            slow = " (ablation ranking: one pass per channel)" if request.rank_by == "ablation" else ""
            self.SetProgressText(f"CNN: running the network on {Path(request.image).name}{slow}")
            self.UpdateProgress(0.0)
            volume = self.session.volume(request, progress=lambda done, total: self.UpdateProgress(0.9 * done / total))
            self._announce(volume)
            vtkImageData.GetData(outInfo, 0).ShallowCopy(volume.to_vtk())
            vtkTable.GetData(outInfo, 1).ShallowCopy(predictions_table(volume))
            vtkImageData.GetData(outInfo, 2).ShallowCopy(evidence_image(volume))
            self.UpdateProgress(1.0)
            return 1

        return self._guarded(work)


def _resolve_image(name: str) -> str:
    path = Path(name).expanduser()
    if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
        return str(PROJECT_ROOT / path)
    return str(path)


# Shown as a slice through the volume, not as ParaView's default outline of 3-D image data.
_SLICE_BY_DEFAULT = '<RepresentationType view="RenderView" type="Slice"/>'


@smproxy.source(name="CNNActivationVolume", label="CNN Activation Volume")
@smhint.xml('<ShowInMenu category="CNN"/>' + _SLICE_BY_DEFAULT)
@smproperty.xml(documentation("Runs a CNN on an image and stacks its layer outputs into a volume."))
@_inherit_properties
class CNNActivationVolume(_ActivationVolumeBase):
    """Sources > CNN > CNN Activation Volume."""


# A proxy with a reader hint is left out of the Sources menu, so the reader is a second proxy.
@smproxy.reader(name="CNNActivationVolumeReader", label="CNN Activation Volume Reader",
                extensions=IMAGE_EXTENSIONS, file_description="CNN Activation Volume")
@smhint.xml(_SLICE_BY_DEFAULT)
@_inherit_properties
class CNNActivationVolumeReader(_ActivationVolumeBase):
    """File > Open on an image: the same algorithm as CNNActivationVolume."""


# Named to sort first among the readers of *.nc: ParaView 5.11's reader dialog pre-selects the
# first matching reader by name (else "NetCDF CAM reader", which gives no image data).
@smproxy.reader(name="CNNActivationNetCDFReader", label="CNN Activation Volume NetCDF Reader",
                extensions=["nc"], file_description="CNN activation volume (netCDF)")
@smhint.xml(_SLICE_BY_DEFAULT)
class CNNActivationNetCDFReader(_Reporting, VTKPythonAlgorithmBase):
    """File > Open of a volume exported by cnnvis: image data with every array and all metadata.

    Only files written by cnn_engine match (CanReadFile); other netCDF files go to ParaView's
    own readers.
    """

    label = "CNN Activation Volume NetCDF Reader"
    a00_GetLastError = _last_error_property("a00_GetLastError", panel_visibility="default")

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=0, nOutputPorts=1, outputType="vtkImageData")
        self._file_name = ""
        self._volume = None

    @smproperty.stringvector(name="FileName", panel_visibility="never", default_values="")
    @smdomain.filelist()
    @smhint.filechooser(extensions=["nc"], file_description="CNN activation volume (netCDF)")
    def SetFileName(self, name):
        if name != self._file_name:
            self._file_name = name or ""
            self._volume = None
            self.Modified()

    def CanReadFile(self, name) -> int:
        try:
            from cnn_engine.netcdf import read_metadata

            read_metadata(name)
        except Exception:  # any other file: not ours (ParaView counts an exception as "readable")
            return 0
        return 1

    def _read(self):
        from cnn_engine.netcdf import read_netcdf

        if self._volume is None:
            self._volume = read_netcdf(self._file_name)
        return self._volume

    def RequestInformation(self, request, inInfo, outInfo):
        info = outInfo.GetInformationObject(0)
        info.Set(Pipeline.WHOLE_EXTENT(), 0, -1, 0, -1, 0, -1)  # until the file is read: no old extent
        try:
            volume = self._read()
        except Exception:  # whatever it is, RequestData meets it again and reports it, once
            return 1
        levels, height, width = volume.shape
        levels += volume.evidence is not None  # the evidence map is the top level (see vtk_export)
        info.Set(Pipeline.WHOLE_EXTENT(), 0, width - 1, 0, height - 1, 0, levels - 1)
        info.Set(vtkDataObject.SPACING(), 1.0, 1.0, volume.level_spacing)
        return 1

    def RequestData(self, request, inInfo, outInfo):
        def work() -> int:
            vtkImageData.GetData(outInfo, 0).ShallowCopy(self._read().to_vtk())
            return 1

        return self._guarded(work)


@smproxy.filter(name="CNNLayerNormalize", label="CNN Layer Normalize")
@smhint.xml('<ShowInMenu category="CNN"/>')
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkImageData"], composite_data_supported=False)
class CNNLayerNormalize(_AttributeSettings, VTKPythonAlgorithmBase):
    """One ``activation`` array from the volume's ranked channels (or its ``layercam`` array),
    normalised per level.

    Input: the CNN Activation Volume, or an exported .nc opened with ParaView's NetCDF reader.
    """

    label = "CNN Layer Normalize"
    b00_GetLastError = _last_error_property("b00_GetLastError", panel_visibility="default")

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=1,
                                        inputType="vtkImageData", outputType="vtkImageData")
        self._normalization = "PerLevelMinMax"
        self._percentiles = (1.0, 99.0)
        self._channels = "Top1"
        self._rank = 0
        self._first, self._last = 0, -1

    @smproperty.intvector(name="Normalization", default_values=0)
    @smdomain.xml(Domains.Normalization.xml() + documentation(
        "PerLevelMinMax: each level to [0, 1]; PerLevelPercentile: each level "
        "clipped to the Percentile Range, then [0, 1]; PerLevelZScore: zero mean, unit deviation "
        "per level; Global: the whole volume to [0, 1]; None: raw values."))
    def b01_SetNormalization(self, index):
        self._set_checked("_normalization", index, Domains.Normalization)

    @smproperty.doublevector(name="PercentileRange", label="Percentile Range", number_of_elements=2,
                             default_values=[1.0, 99.0])
    @smdomain.xml(Domains.PercentileRange.xml() + documentation(
        "Low and high percentiles for PerLevelPercentile (0 <= low < high <= 100)."))
    def b02_SetPercentileRange(self, low, high):
        self._set_checked("_percentiles", (low, high), Domains.PercentileRange)

    @smproperty.intvector(name="Channels", default_values=0)
    @smdomain.xml(Domains.Channels.xml() + documentation(
        "Top1: each layer's best channel (rank0); Rank: the channel of the chosen "
        "rank; MeanTopK / MaxTopK: mean or maximum over the kept channels; LayerCAM: the input's "
        "layercam array (the source with Evidence LayerCAM), where each level finds the class."))
    def b03_SetChannels(self, index):
        self._set_checked("_channels", index, Domains.Channels)

    @smproperty.intvector(name="Rank", default_values=0)
    @smdomain.xml(Domains.Rank.xml() + documentation(
        "The rank shown when Channels is Rank (0 is the best channel)."))
    def b04_SetRank(self, rank):
        self._set_checked("_rank", rank, Domains.Rank)

    @smproperty.intvector(name="FirstLevel", label="First Level", default_values=0)
    @smdomain.xml(documentation("First level kept (0 is the input image)."))
    def b05_SetFirstLevel(self, level):
        self._set("_first", int(level))

    @smproperty.intvector(name="LastLevel", label="Last Level", default_values=-1)
    @smdomain.xml(documentation("Last level kept; -1 keeps every level to the end."))
    def b06_SetLastLevel(self, level):
        self._set("_last", int(level))

    def _kept_levels(self, levels: int) -> slice:
        from cnn_engine.selection import level_range

        return level_range(levels, self._first, self._last)

    def RequestInformation(self, request, inInfo, outInfo):
        def work() -> int:
            whole = inInfo[0].GetInformationObject(0).Get(Pipeline.WHOLE_EXTENT())
            if whole is None or whole[5] < whole[4]:
                return 1  # nothing upstream yet (a failed source has said why)
            kept = self._kept_levels(whole[5] - whole[4] + 1)
            outInfo.GetInformationObject(0).Set(
                Pipeline.WHOLE_EXTENT(), whole[0], whole[1], whole[2], whole[3],
                whole[4] + kept.start, whole[4] + kept.stop - 1)
            return 1

        return self._guarded(work)

    def RequestUpdateExtent(self, request, inInfo, outInfo):
        # Every level is needed whatever part is shown: normalisation looks at whole levels.
        info = inInfo[0].GetInformationObject(0)
        info.Set(Pipeline.UPDATE_EXTENT(), info.Get(Pipeline.WHOLE_EXTENT()), 6)
        return 1

    def RequestData(self, request, inInfo, outInfo):
        def work() -> int:
            from cnn_engine.selection import layer_view
            from cnn_engine.volume import rank_names

            source = vtkImageData.GetData(inInfo[0], 0)
            if source.GetNumberOfPoints() == 0:
                return 1  # an empty input (a failed source has said why) gives an empty output
            width, height, levels = source.GetDimensions()
            points = source.GetPointData()
            names = [points.GetArrayName(i) for i in range(points.GetNumberOfArrays())]
            def stack(name: str) -> np.ndarray:
                return numpy_support.vtk_to_numpy(points.GetArray(name)).reshape(levels, height, width)

            ranks = [stack(n) for n in rank_names(names)]
            layercam = stack("layercam") if "layercam" in names else None
            activation, kept = layer_view(ranks, self._channels, self._rank, self._normalization,
                                          self._percentiles, self._first, self._last, layercam=layercam)
            output = vtkImageData.GetData(outInfo, 0)
            if kept.stop - kept.start == levels:
                output.ShallowCopy(source)  # every level kept: share the input arrays, copy nothing
            else:
                _crop_levels(source, output, kept)
            # A fresh array of ours: VTK may share it (deep=False keeps a reference to it).
            array = numpy_support.numpy_to_vtk(np.ascontiguousarray(activation).ravel(), deep=False)
            array.SetName("activation")
            output.GetPointData().AddArray(array)
            output.GetPointData().SetActiveScalars("activation")
            _attach_metadata(self, source, output, kept)
            return 1

        return self._guarded(work)


def _crop_levels(source, output, kept: slice) -> None:
    """Copy the levels ``kept`` of every point array of ``source`` into ``output`` (same grid)."""
    width, height, levels = source.GetDimensions()
    extent = source.GetExtent()
    count = kept.stop - kept.start
    output.SetExtent(extent[0], extent[1], extent[2], extent[3], extent[4] + kept.start, extent[4] + kept.stop - 1)
    output.SetSpacing(source.GetSpacing())
    output.SetOrigin(source.GetOrigin())
    points = source.GetPointData()
    for i in range(points.GetNumberOfArrays()):
        array = points.GetArray(i)
        if array is None:
            continue
        values = numpy_support.vtk_to_numpy(array).reshape(levels, height * width, -1)[kept]
        copy = numpy_support.numpy_to_vtk(np.ascontiguousarray(values).reshape(count * height * width, -1).squeeze(), deep=True)
        copy.SetName(array.GetName())
        output.GetPointData().AddArray(copy)
    output.GetFieldData().ShallowCopy(source.GetFieldData())


def _attach_metadata(algorithm, source, output, kept: slice) -> None:
    """Make sure the output says what its levels are, also when the input came from a .nc file."""
    from cnn_engine.vtk_export import add_metadata_fields, metadata_from_vtk

    if metadata_from_vtk(source) is None:
        path = _upstream_netcdf(algorithm)
        if path is not None:
            from cnn_engine.netcdf import read_metadata

            add_metadata_fields(output.GetFieldData(), read_metadata(path))
    first = vtkStringArray()
    first.SetName("kept_levels")
    first.InsertNextValue(f"{kept.start}:{kept.stop}")
    output.GetFieldData().AddArray(first)


def _upstream(algorithm):
    """The algorithms feeding ``algorithm``'s first input, nearest first (at most 32)."""
    current = algorithm
    for _ in range(32):
        if current.GetNumberOfInputPorts() < 1 or current.GetNumberOfInputConnections(0) < 1:
            return
        current = current.GetInputAlgorithm(0, 0)
        yield current


def _upstream_error(algorithm) -> str | None:
    """The message of the nearest failed CNN proxy upstream (ParaView may put filters in between)."""
    return next((a.last_error for a in _upstream(algorithm) if getattr(a, "last_error", None)), None)


def _upstream_netcdf(algorithm) -> str | None:
    """The .nc file of the nearest reader upstream, if any (the stock reader drops global attributes)."""
    for current in _upstream(algorithm):
        for candidate in (current, getattr(current, "GetReader", lambda: None)()):
            name = getattr(candidate, "GetFileName", None) if candidate is not None else None
            try:
                value = name() if name is not None else None
            except TypeError:
                value = name(0)
            if value and str(value).endswith(".nc") and os.path.isfile(value):
                return str(value)
    return None


@smproxy.filter(name="CNNCaption", label="CNN Caption")
@smhint.xml('<ShowInMenu category="CNN"/><OutputPort name="Output" index="0" type="text"/>')
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkImageData"], composite_data_supported=False)
class CNNCaption(_AttributeSettings, VTKPythonAlgorithmBase):
    """A text that follows the volume: a level's name, channel and grid, or the model and its
    predictions (``cnn_engine.captions``). Shown like ParaView's Text source."""

    label = "CNN Caption"
    c00_GetLastError = _last_error_property("c00_GetLastError", panel_visibility="default")

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=1, inputType="vtkImageData",
                                        outputType="vtkTable")
        self._content = CAPTIONS[0]
        self._level = 0

    @smproperty.intvector(name="Content", default_values=0)
    @smdomain.xml(Domains.Content.xml() + documentation(
        "Level: the name, shown channel and grid of the level chosen by Level; "
        "Predictions: the model, its weights and the top-5 predictions."))
    def c01_SetContent(self, index):
        self._set_checked("_content", index, Domains.Content)

    @smproperty.intvector(name="Level", default_values=0)
    @smdomain.xml(documentation("The level index (0 is the input picture; -1 the last level)."))
    def c02_SetLevel(self, level):
        self._set("_level", int(level))

    def RequestData(self, request, inInfo, outInfo):
        def work() -> int:
            from cnn_engine.captions import level_caption, predictions_caption
            from cnn_engine.vtk_export import metadata_from_vtk

            metadata = metadata_from_vtk(vtkImageData.GetData(inInfo[0], 0)) or {}
            text = level_caption(metadata, self._level) if self._content == "Level" else predictions_caption(metadata)
            column = _strings([text])
            column.SetName("Text")
            vtkTable.GetData(outInfo, 0).AddColumn(column)
            return 1

        return self._guarded(work)


@smproxy.writer(name="CNNNetCDFWriter", label="CNN NetCDF Writer", extensions=["nc"],
                file_description="CNN activation volume (netCDF)")
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkImageData"], composite_data_supported=False)
class CNNNetCDFWriter(_Reporting, VTKPythonAlgorithmBase):
    """Writes the CNN Activation Volume as the engine's netCDF (atomic; ParaView's NetCDF reader opens it)."""

    label = "CNN NetCDF Writer"
    # Not in the panel: a visible property would make File > Save Data open a configuration dialog.
    GetLastError = _last_error_property("GetLastError", panel_visibility="never")

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=0, inputType="vtkImageData")
        self._file_name = ""
        # The plugin may have loaded before the script imported paraview.servermanager (pvpython
        # with PV_PLUGIN_PATH); by the time a writer exists, SaveData's module is there.
        from .scripting import raise_on_failed_writes

        raise_on_failed_writes()

    @smproperty.stringvector(name="FileName", panel_visibility="never", default_values="")
    @smdomain.filelist()
    def SetFileName(self, name):
        if name != self._file_name:
            self._file_name = name
            self.Modified()

    def RequestData(self, request, inInfo, outInfo):
        def work() -> int:
            from cnn_engine import OutputError
            from cnn_engine.netcdf import write_netcdf
            from cnn_engine.vtk_export import volume_from_vtk

            data = vtkImageData.GetData(inInfo[0], 0)
            if data is None or data.GetNumberOfPoints() == 0:
                upstream = _upstream_error(self)
                reason = f"its input failed: {upstream}" if upstream else "its input is empty"
                raise OutputError(f"nothing written to {self._file_name}: {reason}")
            write_netcdf(volume_from_vtk(data), self._file_name)
            return 1

        return self._guarded(work)

    def Write(self):
        # vtkSMWriterProxy calls Write() on the algorithm.
        self._failure = None  # a skipped RequestData must not leave an old message behind
        self.Modified()
        self.Update()
