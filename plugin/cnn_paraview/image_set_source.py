"""CNN Image Set: a set of images as ParaView time steps, one volume per image (Sources > CNN).

Images: a folder, a list file (.csv/.txt), a glob pattern (a numbered file series) or several
image files, read by :class:`cnn_engine.ImageSet` (natural order; folder names give the true
class). Time step ``i`` is the set's image ``i``, counting from 0 (``TimestepValues`` 0 ... N-1),
so the VCR controls and the Time slider step through the images. Every step has the same grid,
the set's largest (see ``_set_grid``). Each step is one
:func:`cnn_engine.compute_volumes` call for that image (``indices=[i]``), with the set-wide
choice of channels and value ranges of a first pass over the whole set
(:func:`cnn_engine.scan_set`, made once per setting and shown in the progress bar).

Outputs as the CNN Activation Volume's: port 0 the volume (plus field data naming the image:
``image_name``, ``true_label``, ``top1_label``, ... see ``cnn_engine.vtk_export.add_set_fields``),
port 1 the predictions table, port 2 the evidence map. A CNN Caption with Content ``Image``
shows ``3/25 cat_1.jpg  true: tabby  top-1: tabby 83%``.

Costs: the model is built once (the session's model cache); the last :data:`CACHE_STEPS` steps
are kept (their VTK outputs), so stepping back to one costs no network run, and the cache is
dropped when a setting that changes the volumes changes (not for Level Spacing or Batch Size).
A step whose image cannot be read says so (one message naming the image), its outputs are
empty, and the other steps work.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cnn_engine.options import CLASS_RANKINGS
from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData, vtkTable
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

from .base import (
    declare_grid,
    SLICE_BY_DEFAULT, Domains, default_index, default_number, engine_value, inherit_properties, option_label,
    last_error_property, resolve_path, shown_entry,
)
from .model_properties import _ModelProperties, model_settings
from .xml import documentation

#: Time steps kept, most recently shown first out. One step of ResNet-50 ``blocks`` at 224 px
#: with Top K 4 holds about 35 MB (ranks, picture and luminance on 19 levels), so 8 steps about
#: 0.3 GB; a step outside the cache runs the network again.
CACHE_STEPS = 8

# A set is for comparing its images: this source's defaults choose one set of channels for the
# whole set and scale every level by its range over the set, so that rank r and a colour mean
# the same at every time step. (The engine's and the CLI's defaults, per-image channels and
# per-level min-max, are made for one image.) Written here once, for this source only.
SET_DEFAULTS = {"channels": "set", "normalization": "set"}


@smproxy.source(name="CNNImageSet", label="CNN Image Set")
@smhint.xml('<ShowInMenu category="CNN"/>' + SLICE_BY_DEFAULT)
@smproperty.xml(documentation(
    "Runs a CNN on every image of a set (a folder, a list file, a pattern): each image is one time step."))
@inherit_properties
class CNNImageSet(_ModelProperties, VTKPythonAlgorithmBase):
    """Sources > CNN > CNN Image Set."""

    label = "CNN Image Set"

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=0, nOutputPorts=3, outputType="vtkImageData")
        self._start_session()
        self._settings = {
            "images": (), **model_settings(),
            "channels": shown_entry("channels", SET_DEFAULTS["channels"]), "explicit": "",
            "normalization": shown_entry("normalization", SET_DEFAULTS["normalization"]),
            "batch_size": default_number("batch_size"),
        }
        self.forward_passes = 0  # steps computed: one image through the network each
        self.set_scans = 0  # first passes over the whole set
        self._paths: tuple[Path, ...] = ()  # the set as RequestInformation found it
        self._unlabelled = None  # that ImageSet (labels resolved against ImageNet)
        self._labelled = None  # (model, the ImageSet with labels resolved against the model's classes)
        self._told: tuple | None = None  # (paths, problems) of the set whose problems were told
        self._steps: OrderedDict[int, tuple[Any, Any, Any]] = OrderedDict()
        self._steps_key: tuple | None = None
        self._scan = None
        self._scan_key: tuple | None = None
        self._grid: tuple[int, int, int, float] | None = None  # see _set_grid
        self._sizes: list = []  # (path, (width, height)) of each image with a readable header
        self._sizes_key: tuple | None = None

    def FillOutputPortInformation(self, port, info):
        info.Set(vtkDataObject.DATA_TYPE_NAME(), "vtkTable" if port == 1 else "vtkImageData")
        return 1

    # --- properties ------------------------------------------------------------------------------

    a00_GetLastError = last_error_property("a00_GetLastError", panel_visibility="default")

    @smproperty.doublevector(name="TimestepValues", information_only="1", si_class="vtkSITimeStepsProperty")
    def a00_GetTimestepValues(self):
        return [float(i) for i in range(len(self._paths))]

    @smproperty.intvector(name="SetScans", information_only="1", panel_visibility="never",
                          number_of_elements=1, default_values=0)
    @smdomain.xml(documentation("How many first passes over the whole set were made (set_scans)."))
    def a00_GetSetScans(self):
        return self.set_scans

    @smproperty.xml(f"""
        <StringVectorProperty name="Images" command="a01_AddImages" clean_command="a01_ClearImages"
            repeat_command="1" number_of_elements_per_command="1" number_of_elements="0" animateable="0">
          <FileListDomain name="files"/>
          {documentation(
              "The images: a folder (every image under it, recursively; subfolders named by a WordNet ID such "
              "as n02123045 or by a class name give the true class), a list file (.csv or .txt, one "
              "path[,label] a line), a glob pattern (frames/frame_*.png: a numbered file series), or several "
              "image files. Time step i is image i+1 in natural order. The ... button picks a folder; type a "
              "list file or a pattern. A relative path is looked up from the current folder, then from the "
              "cnnvis project folder.")}
          <Hints><UseDirectoryName/></Hints>
        </StringVectorProperty>""")
    def a01_AddImages(self, name):
        self._set("images", self._settings["images"] + (str(name),))

    def a01_ClearImages(self):
        self._set("images", ())

    @smproperty.intvector(name="ChannelChoice", label=option_label("channels"),
                          default_values=default_index("channels", SET_DEFAULTS["channels"]))
    @smdomain.xml(Domains.ChannelChoice.xml() + documentation(
        "Which channels each level shows: PerImage (each image its own top K by Rank By), Set (the top K by "
        "the mean of Rank By's statistic over the whole set: rank r is the same channel at every time step; "
        "needs Rank By mean, max or l2), Explicit (the channels of Explicit Channels)."))
    def a16_SetChannelChoice(self, index):
        self._set_checked("channels", index, Domains.ChannelChoice)

    # immediate_update: a property link (CNN Channel Statistics' Chosen Channel) sets it from outside
    # the panel; pushed at once, the next render shows that channel without another Apply.
    @smproperty.stringvector(name="ExplicitChannels", label="Explicit Channels", number_of_elements=1,
                             default_values="", immediate_update="1")
    @smdomain.xml(documentation(
        "For Channel Choice Explicit: LEVEL:C,C;LEVEL:C, e.g. layer4.2:12,40;layer3.5:7 (channel indices from "
        "0). The volume's levels are then the listed levels, in network order."))
    def a17_SetExplicitChannels(self, text):
        self._set("explicit", (text or "").strip())

    @smproperty.intvector(name="Normalization", label=option_label("normalization"),
                          default_values=default_index("normalization", SET_DEFAULTS["normalization"]))
    @smdomain.xml(Domains.SetNormalization.xml() + documentation(
        "Scaling of the rank arrays: Set (each level from its minimum to its maximum over the whole set to "
        "[0, 1]: a colour means the same value at every time step), per image: PerLevelMinMax, "
        "PerLevelPercentile (1-99), PerLevelZScore, Global, or None (raw activations). Downstream, a CNN "
        "Layer Normalize with Normalization None keeps this scale."))
    def a18_SetNormalization(self, index):
        self._set_checked("normalization", index, Domains.SetNormalization)

    @smproperty.intvector(name="BatchSize", label=option_label("batch_size"),
                          default_values=default_number("batch_size"))
    @smdomain.xml(Domains.BatchSize.xml() + documentation(
        "Images per batch in the first pass over the set; 0: automatic (up to 16, fewer when memory is "
        "short). Changing it changes no result."))
    def a19_SetBatchSize(self, size):
        self._set_checked("batch_size", size, Domains.BatchSize)

    # --- the set ---------------------------------------------------------------------------------

    def _image_source(self):
        """The Images property as cnn_engine.ImageSet takes it: one path or pattern, or a list."""
        names = [resolve_path(name) for name in self._settings["images"] if name.strip()]
        if not names:
            from cnn_engine import ImageError

            raise ImageError("no images chosen: set Images to a folder, a list file (.csv/.txt), a pattern "
                             "such as frames/frame_*.png, or image files")
        return names[0] if len(names) == 1 else names

    def _find_images(self) -> None:
        """Read the set (names and order only: no image is opened) into ``self._unlabelled``."""
        from cnn_engine import ImageSet

        self._unlabelled, self._labelled, self._paths = None, None, ()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # labels are checked, and problems told, against the model's classes
            self._unlabelled = ImageSet(self._image_source())
        self._paths = tuple(self._unlabelled.paths)

    def _image_set(self, model):
        """The set with its labels resolved against ``model``'s classes; its problems told once."""
        from cnn_engine import ImageSet

        if self._unlabelled is None:
            self._find_images()
        if self._labelled is None or self._labelled[0] is not model:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # told below, as notes
                labelled = ImageSet(self._unlabelled, categories=model.categories or None)
            told = (self._paths, labelled.problems)
            if told != self._told:  # once, not again after every property change
                for problem in labelled.problems:
                    self._note(problem)
                self._told = told
            self._labelled = (model, labelled)
        return self._labelled[1]

    def _channels(self) -> str | dict[str, tuple[int, ...]]:
        """The channel choice as compute_volumes takes it (explicit channels parsed)."""
        choice = engine_value("channels", self._settings["channels"])
        if choice != "explicit":
            return choice
        if not self._settings["explicit"]:
            from cnn_engine import CnnEngineError

            raise CnnEngineError("Channel Choice Explicit needs Explicit Channels: LEVEL:C,C;LEVEL:C, "
                                 "e.g. layer4.2:12,40;layer3.5:7")
        from cnn_engine import parse_channel_list

        return parse_channel_list(self._settings["explicit"])

    def _result_key(self) -> tuple:
        """What decides the volumes: a different key drops the cached steps. Level spacing only
        places the levels and the batch size changes no result; the target class counts only
        where an evidence map or a class ranking uses it."""
        s = self._settings
        uses_target = s["evidence"] != "None" or engine_value("rank_by", s["rank_by"]) in CLASS_RANKINGS
        return (self._model_request().model_key(), self._paths, s["layers"], s["top_k"], s["rank_by"],
                s["input_size"], s["fit"], s["interpolation"], s["evidence"], s["target"] if uses_target else None,
                s["channels"], s["explicit"] if s["channels"] == "Explicit" else None, s["normalization"])

    def _first_pass(self, model, images, channels):
        """The set-wide channels and ranges (cnn_engine.scan_set), made once per setting that decides them."""
        from cnn_engine import scan_set

        s = self._settings
        request = self._model_request()
        explicit = tuple(sorted(channels.items())) if isinstance(channels, dict) else channels
        key = (request.model_key(), self._paths, request.layers, request.top_k, request.rank_by, explicit,
               request.input_size, request.fit)
        if self._scan_key == key:
            return self._scan
        self.SetProgressText(f"CNN: first pass over the set ({len(images)} images): set-wide channels and ranges")
        skipped: list[tuple[str, str]] = []
        scan = scan_set(model, images, layers=request.layers, top_k=request.top_k, rank_by=request.rank_by,
                        channels=channels, input_size=request.input_size, fit=request.fit,
                        batch_size=s["batch_size"] or None,
                        progress=lambda done, total: self.UpdateProgress(0.8 * done / max(total, 1)),
                        on_error=lambda path, error: skipped.append((path, str(error))))
        self.set_scans += 1
        if skipped:
            shown = "; ".join(f"{Path(path).name} ({message})" for path, message in skipped[:5])
            more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            self._note(f"{len(skipped)} of {len(images)} images could not be read and are left out of the "
                       f"set's channels and ranges: {shown}{more}")
        self._scan, self._scan_key = scan, key
        return scan

    def _step(self, index: int, width: int, height: int) -> tuple[Any, Any, Any]:
        """Step ``index``'s (volume image, predictions table, evidence image), from the cache or
        computed; the images on the set's ``width`` x ``height`` grid (which the key decides too)."""
        key = self._result_key()
        if key != self._steps_key:
            self._steps.clear()
            self._steps_key = key
        if index in self._steps:
            self._steps.move_to_end(index)
            return self._steps[index]
        from cnn_engine import ImageError, compute_volumes
        from cnn_engine.vtk_export import add_set_fields, evidence_image, predictions_table

        s = self._settings
        request = self._model_request()
        model = self.session.model(request)
        images = self._image_set(model)
        channels = self._channels()
        normalization = engine_value("normalization", s["normalization"])
        scan = self._first_pass(model, images, channels) if "set" in (channels, normalization) else None
        self.SetProgressText(f"CNN: running the network on {images.paths[index].name}")
        failed: list[Exception] = []
        volumes = list(compute_volumes(
            model, images, layers=request.layers, top_k=request.top_k, rank_by=request.rank_by, channels=channels,
            normalization=normalization, input_size=request.input_size, fit=request.fit,
            interpolation=request.interpolation, evidence=request.evidence, target=request.target,
            batch_size=s["batch_size"] or None, scan=scan, indices=[index],
            on_error=lambda path, error: failed.append(error)))
        if not volumes:
            # An image the first pass could not read is not reported again: its reason is in the scan.
            known = dict(scan.failures) if scan is not None else {}
            reason = failed[0] if failed else known.get(str(images.paths[index]), "no volume was made")
            raise ImageError(f"image {index + 1} of {len(images)} ({images.paths[index]}) cannot be shown: {reason}; "
                             "the other images of the set are not affected")
        self.forward_passes += 1
        volume = volumes[0]
        self._announce(volume)
        image = volume.to_vtk()
        add_set_fields(image.GetFieldData(), volume, len(images), model.categories or None)
        evidence = evidence_image(volume)
        if evidence.GetNumberOfPoints():
            evidence = _padded(evidence, width, height)
        entry = (_padded(image, width, height), predictions_table(volume), evidence)
        self._steps[index] = entry
        while len(self._steps) > CACHE_STEPS:
            self._steps.popitem(last=False)
        return entry

    # --- the pipeline ----------------------------------------------------------------------------

    def _index(self, info) -> int:
        """The image of the time step asked for: the last step at or before the update time."""
        if not self._paths or not info.Has(Pipeline.UPDATE_TIME_STEP()):
            return 0
        step = math.floor(info.Get(Pipeline.UPDATE_TIME_STEP()) + 1e-9)
        return min(max(step, 0), len(self._paths) - 1)

    def _set_grid(self, quiet: bool = True) -> tuple[int, int, int, float] | None:
        """(levels, height, width, level spacing) shared by every step; when the settings cannot
        make one, None (``quiet``: RequestInformation; RequestData asks again to say why) or the error.

        ParaView's pipeline keeps one extent for all time steps (filters downstream take it from
        RequestInformation only), so the grid is the set's largest: the widest and the tallest
        network input of its images, from their headers (no image is decoded); a smaller image
        fills its lower-left part (the points stay where its own volume has them) and the rest
        is NaN. The level spacing's default is worked out on that grid.
        """
        from cnn_engine.compute import default_level_spacing
        from cnn_engine.preprocess import Preprocessing, input_grid

        s = self._settings
        try:
            if not self._paths:
                self._find_images()  # raises what is wrong with Images
            fit, size = engine_value("fit", s["fit"]), s["input_size"]
            key = (self._paths, fit, size)
            if self._sizes_key != key:
                preprocessing = Preprocessing(fit=fit, size=size)
                sizes = []
                for path in self._paths:
                    try:
                        sizes.append((path, input_grid(path, preprocessing)))
                    except Exception:  # an unreadable image: its step says so
                        continue
                self._sizes, self._sizes_key = sizes, key
            if not self._sizes:
                from cnn_engine import ImageError

                raise ImageError(f"none of the {len(self._paths)} images of the set can be opened as an image "
                                 f"(the first: {self._paths[0]})")
            channels = self._channels()
            layers = ",".join(channels) if isinstance(channels, dict) else None  # explicit: the listed levels
            levels = self.session.grid(self._model_request(str(self._sizes[0][0]), layers=layers))[0]
            width = max(w for _, (w, _) in self._sizes)
            height = max(h for _, (_, h) in self._sizes)
            layer_levels = levels - (s["evidence"] != "None")  # the evidence map is the top level
            return levels, height, width, s["level_spacing"] or default_level_spacing(height, width, layer_levels)
        except Exception:
            if quiet:
                return None
            raise

    def RequestInformation(self, request, inInfo, outInfo):
        # The time steps are the images; errors stay quiet here (RequestData reports them once).
        try:
            self._find_images()
        except Exception:
            pass
        steps = [float(i) for i in range(len(self._paths))]
        for port in range(self.GetNumberOfOutputPorts()):
            info = outInfo.GetInformationObject(port)
            info.Remove(Pipeline.TIME_STEPS())
            info.Remove(Pipeline.TIME_RANGE())
            for step in steps:
                info.Append(Pipeline.TIME_STEPS(), step)
            if steps:
                info.Append(Pipeline.TIME_RANGE(), steps[0])
                info.Append(Pipeline.TIME_RANGE(), steps[-1])
        self._grid = self._set_grid()
        declare_grid(outInfo, self._grid, self._settings["evidence"] != "None")
        return 1

    def RequestData(self, request, inInfo, outInfo):
        index = self._index(outInfo.GetInformationObject(0))

        def work() -> int:
            self.UpdateProgress(0.0)
            self._grid = self._grid or self._set_grid(quiet=False)
            _, height, width, spacing = self._grid
            image, table, evidence = self._step(index, width, height)
            volume = vtkImageData.GetData(outInfo, 0)
            volume.ShallowCopy(image)
            volume.SetSpacing(1.0, 1.0, spacing)
            vtkTable.GetData(outInfo, 1).ShallowCopy(table)
            vtkImageData.GetData(outInfo, 2).ShallowCopy(evidence)
            self.UpdateProgress(1.0)
            return 1

        result = self._fail(self._setup_error) if self._setup_error else self._guarded(work)
        for port in range(self.GetNumberOfOutputPorts()):
            output = self.GetOutputDataObject(port)
            if output is not None and self._paths:
                output.GetInformation().Set(vtkDataObject.DATA_TIME_STEP(), float(index))
        return result


def _padded(image, width: int, height: int):
    """``image`` (a volume or a 2-D map) on a ``width`` x ``height`` grid: its points where they
    are (the lower-left part), the added ones NaN (0 in integer arrays: ``image_rgb`` black)."""
    import numpy as np
    from vtkmodules.util import numpy_support

    own_width, own_height, levels = image.GetDimensions()
    if (own_width, own_height) == (width, height):
        return image
    padded = vtkImageData()
    padded.SetDimensions(width, height, levels)
    padded.SetSpacing(image.GetSpacing())
    padded.SetOrigin(image.GetOrigin())
    points = image.GetPointData()
    for i in range(points.GetNumberOfArrays()):
        array = points.GetArray(i)
        components = array.GetNumberOfComponents()
        values = numpy_support.vtk_to_numpy(array).reshape(levels, own_height, own_width, components)
        grown = np.full((levels, height, width, components), np.nan if values.dtype.kind == "f" else 0, values.dtype)
        grown[:, :own_height, :own_width] = values
        copy = numpy_support.numpy_to_vtk(grown.reshape(-1, components) if components > 1 else grown.ravel(), deep=True)
        copy.SetName(array.GetName())
        padded.GetPointData().AddArray(copy)
    if points.GetScalars() is not None:
        padded.GetPointData().SetActiveScalars(points.GetScalars().GetName())
    padded.GetFieldData().ShallowCopy(image.GetFieldData())
    return padded
