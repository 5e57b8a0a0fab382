"""CNN Perturbation Sweep: one image perturbed step by step, the severities as time steps (Sources > CNN).

One image, one perturbation of :data:`cnn_engine.PERTURBATIONS` and a row of severities
(Steps 0: the perturbation's default sweep, with the clean image; else Steps values evenly from
From to To). ParaView's time steps are the severities themselves (``TimestepValues``, increasing),
and the information property ``TimeLabelAnnotation`` names them ("blur sigma"), so the Time
widget reads "blur sigma" and the severity. A decreasing request (From > To: stronger first,
as for JPEG quality 100 down to 1) is swept in that order, which is the order the engine's
summary follows (``flip_severity`` of a perturbation without a clean value is the first step
that flips), and shown in increasing time like any other: step p of the time steps is the p-th
smallest severity.

Outputs at the time step (the severity) asked for:

* port 0, the volume of the perturbed picture (``vtkImageData`` as CNN Activation Volume's), its
  channels the clean picture's top K on every level, so that slices compare across steps; field
  data as CNN Image Set's (``set_index`` is the time step, ``set_size`` the number of steps) plus
  ``step_label`` ("blur sigma 2.5"), ``severity``, ``perturbation``, ``clean_probability``,
  ``target_probability`` (NaN without Target Class) and ``step_drift`` (one value per level).
  A CNN Caption with Content ``Image`` shows ``blur sigma 2.5  5/9 cat.jpg  top-1: tabby 41%``;
* port 1, the perturbed picture: 2-D image data, upright, point array ``image_rgb`` (RGB,
  unsigned char: shown with its own colours), field data ``step_label`` and ``severity``;
* port 2, the step's top-5 predictions (``vtkTable``: rank, class_index, label, probability);
* port 3, the table over all steps, one row per severity in increasing order (``vtkTable``):
  the columns of ``Sweep.rows()`` (severity, label, clean_probability, target_probability,
  top1_index, top1_label, top1_probability, ``drift LEVEL`` per level), then ``relative_l2
  LEVEL`` per level and ``shown_step`` (the clean class's probability at the time step shown,
  NaN at the others: a marker that moves with the Time slider); field data: ``perturbation``,
  ``parameter``, ``unit``, ``clean_label``, ``clean_class``, ``target_label``, ``flip_severity``
  and ``half_severity`` (NaN: none), ``level_name``. For line charts against ``severity``;
* port 4, drift as a 2-D image: one cell per (step, level), X the time step (0 ... N-1, severity
  increasing), Y the level index; cell arrays ``drift`` and ``relative_l2``, field data
  ``severity`` and ``level_name``.

Costs: the sweep (every perturbed picture through the network, in batches:
``cnn_engine.sweep(..., volumes=False)``) runs once per setting that decides it (``SweepRuns``
counts them); a step's volume is one more forward pass (``Sweep.volume``), and the last
:data:`CACHE_STEPS` steps are kept, so stepping back to one runs no network (``ForwardPasses``
counts the step volumes made). Level Spacing changes nothing computed.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from cnn_engine.images import IMAGE_EXTENSIONS
from cnn_engine.options import OCCLUDERS, OPTIONS
from cnn_engine.perturbations import PERTURBATIONS, Perturbation, check_severities
from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData, vtkTable
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

from .base import (
    SLICE_BY_DEFAULT, default_index, engine_value, inherit_properties, last_error_property, resolve_path, strings,
)
from .model_properties import _ModelProperties, model_settings
from .xml import Enumeration, IntRange, documentation

#: Steps kept, most recently shown first out (about 35 MB each for ResNet-50 ``blocks``, K=4, at 224 px).
CACHE_STEPS = 8
#: The default perturbation, and the ends of its default sweep for From and To.
DEFAULT_PERTURBATION = "blur"
#: Ports.
VOLUME, PICTURE, PREDICTIONS, TABLE, DRIFT = range(5)
#: Values closer than this (relative to the sweep's span) are the same time step.
_TIME_TOLERANCE = 1e-9


class _FiniteNumber:
    """Any finite number (the perturbation's own range is checked when the sweep is planned, with a
    message that says it): the setter's check of From and To."""

    def __init__(self, name: str) -> None:
        self.name = name

    def xml(self) -> str:
        return ""

    def accept(self, value: Any) -> float | None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None

    def allowed(self) -> str:
        return "a finite number"


class _Point:
    """Two finite numbers (x, y): the occluding patch's Position."""

    name = "Position"

    def xml(self) -> str:
        return ""

    def accept(self, values: Any) -> tuple[float, float] | None:
        try:
            x, y = (float(v) for v in values)
        except (TypeError, ValueError):
            return None
        return (x, y) if math.isfinite(x) and math.isfinite(y) else None

    def allowed(self) -> str:
        return "two finite numbers x y (negative: the picture centre)"


class SweepDomains:
    """This source's own checked properties (the model options' are in base.Domains). Saved by
    index in state files: entries are appended, never inserted."""

    Perturbation = Enumeration("Perturbation", tuple(PERTURBATIONS))
    From = _FiniteNumber("From")
    To = _FiniteNumber("To")
    Steps = IntRange("Steps", 0, 1000)
    Position = _Point()
    Occluder = Enumeration("Occluder", tuple(OCCLUDERS))
    Seed = IntRange("Seed", 0, 2 ** 31 - 1)
    # A sweep ranks channels on the clean picture by a map statistic: the first three rankings.
    RankBy = Enumeration("RankBy", OPTIONS["rank_by"].shown_choices()[:3])


def plan_severities(perturbation: Perturbation, start: float, stop: float, steps: int) -> tuple[float, ...]:
    """The severities of a sweep, in sweep order: ``perturbation``'s default sweep for ``steps``
    0, else ``steps`` values evenly from ``start`` to ``stop`` (decreasing when ``stop`` <
    ``start``), each checked against the perturbation's range. Raises CnnEngineError for a single
    step, equal ends and values out of range (saying the range)."""
    from cnn_engine.errors import CnnEngineError

    p = perturbation
    defaults = ", ".join(f"{v:g}" for v in p.default_values)
    if steps == 0:
        return check_severities(p, p.default_values)
    if steps == 1:
        raise CnnEngineError(f"Steps 1 is a single severity: a sweep needs at least two; set Steps to 2 or more "
                             f"(From to To), or to 0 for {p.name}'s default severities ({defaults} {p.unit})")
    if start == stop:
        raise CnnEngineError(f"From and To are both {start:g}: a sweep needs different severities; set them apart "
                             f"({p.name} {p.parameter}: {p.low:g} to {p.high:g} {p.unit}), or Steps to 0 for "
                             f"{p.name}'s default severities ({defaults})")
    # Rounded to 12 significant digits: 0.3, not 0.30000000000000004, on the Time widget.
    values = [float(f"{start + (stop - start) * i / (steps - 1):.12g}") for i in range(steps)]
    return check_severities(p, values)


@smproxy.source(name="CNNPerturbationSweep", label="CNN Perturbation Sweep")
@smhint.xml('<ShowInMenu category="CNN"/>' + SLICE_BY_DEFAULT)
@smproperty.xml(documentation(
    "Perturbs one image step by step (blur, noise, brightness, occlusion...): each severity is one time step, "
    "with its volume, picture and predictions, and a table of probabilities and per-level drift over all steps."))
@inherit_properties
class CNNPerturbationSweep(_ModelProperties, VTKPythonAlgorithmBase):
    """Sources > CNN > CNN Perturbation Sweep."""

    label = "CNN Perturbation Sweep"

    # A sweep has no evidence map (a13_SetEvidence: left out of this proxy; inherit_properties
    # copies only what the class does not define itself).
    a13_SetEvidence = None

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=0, nOutputPorts=5, outputType="vtkImageData")
        self._start_session()
        default = PERTURBATIONS[DEFAULT_PERTURBATION]
        self._settings = {
            "image": "", "perturbation": DEFAULT_PERTURBATION, "from": default.default_values[0],
            "to": default.default_values[-1], "steps": 0, "position": (-1.0, -1.0), "occluder": OCCLUDERS[0],
            "seed": 0, "layer_list": "", **model_settings(),
        }
        self.forward_passes = 0  # step volumes made: one forward pass each
        self.sweep_runs = 0  # sweeps computed: every picture of the sweep through the network
        self.result = None  # the last cnn_engine Sweep
        self._result_key: tuple | None = None
        self._steps: OrderedDict[int, tuple[Any, Any, Any]] = OrderedDict()  # time position -> outputs 0-2
        self._table = None  # port 3 of the result, without the shown_step column
        self._drift = None  # port 4 of the result
        self._extents: dict[int, tuple[int, ...]] = {}  # declared in RequestInformation
        self._spacing = 1.0
        self._failed: tuple | None = None  # (settings snapshot, message) of the last failed request

    def FillOutputPortInformation(self, port, info):
        info.Set(vtkDataObject.DATA_TYPE_NAME(), "vtkTable" if port in (PREDICTIONS, TABLE) else "vtkImageData")
        return 1

    # --- properties ------------------------------------------------------------------------------

    a00_GetLastError = last_error_property("a00_GetLastError", panel_visibility="default")

    @smproperty.doublevector(name="TimestepValues", information_only="1", si_class="vtkSITimeStepsProperty")
    def a00_GetTimestepValues(self):
        return list(self._times())

    # The Time widget's label ("blur sigma" instead of "Time"), from the output information.
    @smproperty.stringvector(name="TimeLabelAnnotation", information_only="1", si_class="vtkSITimeLabelProperty")
    def a00_GetTimeLabelAnnotation(self):
        return self._time_label()

    @smproperty.intvector(name="SweepRuns", information_only="1", panel_visibility="never",
                          number_of_elements=1, default_values=0)
    @smdomain.xml(documentation("How many sweeps were computed (sweep_runs)."))
    def a00_GetSweepRuns(self):
        return self.sweep_runs

    @smproperty.stringvector(name="Summary", information_only="1", number_of_elements=1, default_values="")
    @smdomain.xml("<StringArrayHelper/>" + documentation(
        "The sweep's summary: the clean class, the severity nearest the clean picture at which the top-1 class "
        "changes and where the clean class falls below half its clean probability."))
    @smhint.xml('<Widget type="one_liner_wrapped"/>')
    def a00_GetSummary(self):
        return strings([self._summary()])

    @smproperty.stringvector(name="FileName", default_values="")
    @smdomain.filelist()
    @smhint.filechooser(extensions=list(IMAGE_EXTENSIONS), file_description="Images")
    @smdomain.xml(documentation(
        "The image to perturb (png, jpg, bmp, tif, gif, webp). A relative path is looked up from the current "
        "folder, then from the cnnvis project folder (for the example state files)."))
    def a01_SetFileName(self, name):
        self._set("image", name or "")

    @smproperty.intvector(name="Perturbation", default_values=tuple(PERTURBATIONS).index(DEFAULT_PERTURBATION))
    @smdomain.xml(SweepDomains.Perturbation.xml() + documentation(
        "What changes, on the picture the network sees (pixel units are input pixels): brightness, contrast, "
        "saturation (factors, 1 = clean), gamma (1 = clean), hue (shift in degrees), blur (Gaussian sigma in "
        "input pixels), noise (Gaussian sigma, fraction of full scale, seeded), jpeg (quality 1-100), rotation "
        "(degrees), scale (factor), translation (input pixels), occlusion (patch side in input pixels, at "
        "Position, filled by Occluder). The README's sweep section has the table of ranges."))
    def a01a_SetPerturbation(self, index):
        self._set_checked("perturbation", index, SweepDomains.Perturbation)

    @smproperty.doublevector(name="From", number_of_elements=1,
                             default_values=PERTURBATIONS[DEFAULT_PERTURBATION].default_values[0])
    @smdomain.xml(documentation(
        "The first severity, in the perturbation's unit, when Steps is 2 or more (Steps 0: not used)."))
    def a01b_SetFrom(self, value):
        self._set_checked("from", value, SweepDomains.From)

    @smproperty.doublevector(name="To", number_of_elements=1,
                             default_values=PERTURBATIONS[DEFAULT_PERTURBATION].default_values[-1])
    @smdomain.xml(documentation(
        "The last severity, when Steps is 2 or more. Below From: the sweep runs from stronger to weaker (as for "
        "JPEG quality 100 down to 1); the time steps still increase."))
    def a01c_SetTo(self, value):
        self._set_checked("to", value, SweepDomains.To)

    @smproperty.intvector(name="Steps", number_of_elements=1, default_values=0)
    @smdomain.xml(SweepDomains.Steps.xml() + documentation(
        "0: the perturbation's default severities, with the clean image (blur: sigma 0, 0.5, 1, 1.5, 2, 3, 4, 6, "
        "8); 2 or more: that many severities evenly from From to To. Each severity is one time step."))
    def a01d_SetSteps(self, steps):
        self._set_checked("steps", steps, SweepDomains.Steps)

    @smproperty.doublevector(name="Position", number_of_elements=2, default_values=[-1.0, -1.0])
    @smdomain.xml(documentation(
        "Perturbation occlusion: the patch centre (x, y) in input pixels from the left and from the top; "
        "a negative value: the picture centre."))
    def a01e_SetPosition(self, x, y):
        self._set_checked("position", (x, y), SweepDomains.Position)

    @smproperty.intvector(name="Occluder", default_values=0)
    @smdomain.xml(SweepDomains.Occluder.xml() + documentation(
        "Perturbation occlusion: what fills the patch: mean (the normalisation's mean colour), blur (the "
        "picture blurred as wide as the patch), noise (seeded)."))
    def a01f_SetOccluder(self, index):
        self._set_checked("occluder", index, SweepDomains.Occluder)

    @smproperty.intvector(name="Seed", default_values=0, panel_visibility="advanced")
    @smdomain.xml(SweepDomains.Seed.xml() + documentation(
        "Fixes the noise (perturbation noise, occluder noise): the same seed gives the same pictures."))
    def a01g_SetSeed(self, seed):
        self._set_checked("seed", seed, SweepDomains.Seed)

    @smproperty.stringvector(name="Layers", number_of_elements=1, default_values="")
    @smdomain.xml(documentation(
        "Layer names, comma-separated (e.g. _blocks.0,_blocks.8,_blocks.15, or layer1.0,layer4.2): the volume's "
        "levels and the table's drift columns. Empty: the Layer Set."))
    def a05a_SetLayers(self, text):
        self._set("layer_list", (text or "").strip())

    @smproperty.intvector(name="RankBy", label="Rank By", default_values=default_index("rank_by"))
    @smdomain.xml(SweepDomains.RankBy.xml() + documentation(
        "How each level's Top K channels are chosen, on the clean picture (every step shows those channels): "
        "mean activation, max activation or L2 norm of the map."))
    def a07_SetRankBy(self, index):
        self._set_checked("rank_by", index, SweepDomains.RankBy)

    @smproperty.stringvector(name="TargetClass", label="Target Class", number_of_elements=1, default_values="")
    @smdomain.xml(documentation(
        "A class whose probability every step records (the table's target_probability): a label (tiger cat) or "
        "class index (282); empty: none. The clean class (the clean picture's top-1) is always recorded."))
    def a14_SetTargetClass(self, target):
        self._set("target", (target or "").strip())

    # --- the plan: severities and grids, without running the network -----------------------------

    def _perturbation(self) -> Perturbation:
        return PERTURBATIONS[self._settings["perturbation"]]

    def _values(self) -> tuple[float, ...]:
        """The severities in sweep order (raises what is wrong with them)."""
        s = self._settings
        return plan_severities(self._perturbation(), s["from"], s["to"], s["steps"])

    def _times(self) -> tuple[float, ...]:
        """The time steps: the severities, increasing; none when they are wrong (RequestData says why)."""
        try:
            return tuple(sorted(self._values()))
        except Exception:
            return ()

    def _time_label(self) -> str:
        p = self._perturbation()
        return f"{p.name} {p.parameter}"

    def _layers(self) -> str:
        return self._settings["layer_list"] or engine_value("layers", self._settings["layers"])

    def _request(self):
        if not self._settings["image"]:
            from cnn_engine import ImageError

            raise ImageError("no image chosen: set File Name")
        return self._model_request(resolve_path(self._settings["image"]), layers=self._layers())

    def _options(self) -> dict[str, Any]:
        """The perturbation's options (only occlusion takes any here)."""
        if self._settings["perturbation"] != "occlusion":
            return {}
        x, y = self._settings["position"]
        return {"position": None if x < 0 or y < 0 else (x, y), "occluder": self._settings["occluder"]}

    def _declare(self, outInfo) -> None:
        """Time steps and the time label on every port; the image ports' extents (empty when the
        settings cannot make a sweep: RequestData then says why, once)."""
        from paraview.modules.vtkPVVTKExtensionsCore import vtkPVInformationKeys

        times = self._times()
        for port in range(self.GetNumberOfOutputPorts()):
            info = outInfo.GetInformationObject(port)
            info.Remove(Pipeline.TIME_STEPS())
            info.Remove(Pipeline.TIME_RANGE())
            for time in times:
                info.Append(Pipeline.TIME_STEPS(), time)
            if times:
                info.Append(Pipeline.TIME_RANGE(), times[0])
                info.Append(Pipeline.TIME_RANGE(), times[-1])
        outInfo.GetInformationObject(0).Set(vtkPVInformationKeys.TIME_LABEL_ANNOTATION(), self._time_label())
        self._extents = {port: (0, -1, 0, -1, 0, -1) for port in (VOLUME, PICTURE, DRIFT)}
        grid = self._grid() if times else None
        if grid is not None:
            levels, height, width, self._spacing = grid
            self._extents = {VOLUME: (0, width - 1, 0, height - 1, 0, levels - 1),
                             PICTURE: (0, width - 1, 0, height - 1, 0, 0),
                             DRIFT: (0, len(times), 0, levels, 0, 0)}  # points around one cell per (step, level)
        for port, extent in self._extents.items():
            outInfo.GetInformationObject(port).Set(Pipeline.WHOLE_EXTENT(), *extent)
        if grid is not None:
            outInfo.GetInformationObject(VOLUME).Set(vtkDataObject.SPACING(), 1.0, 1.0, self._spacing)

    def _grid(self) -> tuple[int, int, int, float] | None:
        """(levels, height, width, level spacing) of the step volumes, from the image's header and the
        architecture (no weights, no network); None when the settings cannot make one."""
        if self.session is None or not self._settings["image"]:
            return None
        try:
            return self.session.grid(self._request())
        except Exception:  # RequestData meets it again and reports it, once
            return None

    # --- the sweep -------------------------------------------------------------------------------

    def _key(self, request, values) -> tuple:
        """What decides the sweep: a different key computes it again (Level Spacing does not count)."""
        from cnn_engine.session import _file_identity

        s = self._settings
        return (request.model_key(), _file_identity(request.image), request.layers, request.top_k, request.rank_by,
                request.input_size, request.fit, request.interpolation, s["perturbation"], values,
                s["target"] or None, tuple(sorted(self._options().items())), s["seed"])

    def _sweep(self):
        """The sweep for the current settings: computed once per key."""
        from cnn_engine import sweep

        values = self._values()
        request = self._request()
        key = self._key(request, values)
        if key == self._result_key:
            return self.result
        self.result, self._result_key, self._table, self._drift = None, None, None, None
        self._steps.clear()
        model = self.session.model(request)
        if model.substitution and self._announced != self.session.model_builds:
            self._announced = self.session.model_builds
            self._note(model.substitution)
        p = self._perturbation()
        self.SetProgressText(f"CNN: {p.name} sweep of {Path(request.image).name} ({len(values)} steps)")
        self.result = sweep(
            model, request.image, p.name, values, layers=request.layers, top_k=request.top_k, target=request.target,
            rank_by=request.rank_by, input_size=request.input_size, fit=request.fit,
            interpolation=request.interpolation, seed=self._settings["seed"], volumes=False,
            progress=lambda done, total: self.UpdateProgress(0.8 * done / max(total, 1)), **self._options())
        self._result_key = key
        self.sweep_runs += 1
        return self.result

    def _order(self, sw) -> list[int]:
        """The sweep's step indices in time order (severity increasing)."""
        return sorted(range(len(sw.steps)), key=lambda i: sw.steps[i].severity)

    def _step(self, sw, position: int) -> tuple[Any, Any, Any]:
        """Time step ``position``'s (volume, picture, predictions table), from the cache or computed."""
        if position in self._steps:
            self._steps.move_to_end(position)
            return self._steps[position]
        from cnn_engine.vtk_export import add_set_fields, predictions_table

        index = self._order(sw)[position]
        step = sw.steps[index]
        self.SetProgressText(f"CNN: the volume at {step.label}")
        volume = sw.volume(index)
        self.forward_passes += 1
        # The sweep's own predictions (its batch's float sums, as in the table); the caption's
        # position is the time step's.
        volume = replace(volume, predictions=list(step.predictions),
                         provenance=replace(volume.provenance, set_index=position))
        image = volume.to_vtk()
        field = image.GetFieldData()
        add_set_fields(field, volume, len(sw.steps))
        nan = float("nan")
        _add_field(field, "step_label", [step.label])
        _add_field(field, "severity", [step.severity])
        _add_field(field, "perturbation", [sw.perturbation])
        _add_field(field, "clean_probability", [step.clean_probability])
        _add_field(field, "target_probability", [nan if step.target_probability is None else step.target_probability])
        _add_field(field, "step_drift", list(step.drift))
        entry = (image, _picture(sw.images[index], step), predictions_table(volume))
        self._steps[position] = entry
        while len(self._steps) > CACHE_STEPS:
            self._steps.popitem(last=False)
        return entry

    # --- the pipeline ----------------------------------------------------------------------------

    def _position(self, info) -> int:
        """The time step asked for: the last severity at or below the update time."""
        times = self._times()
        if not times or not info.Has(Pipeline.UPDATE_TIME_STEP()):
            return 0
        time = info.Get(Pipeline.UPDATE_TIME_STEP())
        tolerance = _TIME_TOLERANCE * max(times[-1] - times[0], 1.0)
        return min(max(bisect.bisect_right(times, time + tolerance) - 1, 0), len(times) - 1)

    def RequestInformation(self, request, inInfo, outInfo):
        self._declare(outInfo)
        return 1

    def _snapshot(self) -> tuple:
        """The settings and the image file's identity: what a failure is remembered for."""
        from cnn_engine.session import _file_identity

        image = self._settings["image"]
        return tuple(sorted(self._settings.items())), _file_identity(resolve_path(image)) if image else None

    def RequestData(self, request, inInfo, outInfo):
        if self._setup_error:
            return self._fail(self._setup_error)
        position = self._position(outInfo.GetInformationObject(0))
        snapshot = self._snapshot()
        if self._failed is not None and self._failed[0] == snapshot:
            # Failed with these very settings, and said so: ParaView asks again on every render
            # (and time step) while a declared extent is not delivered; empty outputs, no new message.
            self._failure = self._failed[1]
            for port in range(self.GetNumberOfOutputPorts()):
                self.GetOutputDataObject(port).Initialize()
            return 1

        def work() -> int:
            self.UpdateProgress(0.0)
            sw = self._sweep()
            image, picture, predictions = self._step(sw, position)
            volume = vtkImageData.GetData(outInfo, VOLUME)
            volume.ShallowCopy(image)
            if self._settings["level_spacing"]:
                volume.SetSpacing(1.0, 1.0, self._settings["level_spacing"])
            vtkImageData.GetData(outInfo, PICTURE).ShallowCopy(picture)
            vtkTable.GetData(outInfo, PREDICTIONS).ShallowCopy(predictions)
            if self._table is None:
                self._table, self._drift = _steps_table(sw, self._order(sw)), _drift_image(sw, self._order(sw))
            table = vtkTable.GetData(outInfo, TABLE)
            table.ShallowCopy(self._table)
            table.AddColumn(_shown_step(sw, self._order(sw), position))
            vtkImageData.GetData(outInfo, DRIFT).ShallowCopy(self._drift)
            self.UpdateProgress(1.0)
            return 1

        result = self._guarded(work)
        self._failed = (snapshot, self._failure) if self._failure else None
        times = self._times()
        for port in range(self.GetNumberOfOutputPorts()):
            output = self.GetOutputDataObject(port)
            if output is not None and times:
                output.GetInformation().Set(vtkDataObject.DATA_TIME_STEP(), times[position])
        return result

    def _summary(self) -> str:
        sw = self.result
        if sw is None:
            return ""
        p = PERTURBATIONS[sw.perturbation]

        def at(value) -> str:
            return "never" if value is None else f"at {p.label(value)}"

        return (f"clean: {sw.clean_label} {sw.clean_probability:.2f}; top-1 changes {at(sw.flip_severity)}; "
                f"below half {at(sw.half_severity)}")


# --- building the outputs ---------------------------------------------------------------------------


def _add_field(field, name: str, values: list) -> None:
    """A field array ``name`` of ``values`` (strings, or numbers as doubles)."""
    from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkStringArray

    array = vtkStringArray() if values and isinstance(values[0], str) else vtkDoubleArray()
    array.SetName(name)
    for value in values:
        array.InsertNextValue(value)
    field.AddArray(array)


def _picture(rgb, step) -> vtkImageData:
    """Port 1: the perturbed picture (image order, (H, W, 3) uint8) as upright 2-D image data."""
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk

    height, width = rgb.shape[:2]
    image = vtkImageData()
    image.SetDimensions(width, height, 1)
    pixels = numpy_to_vtk(np.ascontiguousarray(rgb[::-1]).reshape(-1, 3), deep=True)  # VTK rows go up
    pixels.SetName("image_rgb")
    image.GetPointData().SetScalars(pixels)
    _add_field(image.GetFieldData(), "step_label", [step.label])
    _add_field(image.GetFieldData(), "severity", [step.severity])
    return image


def _column(name: str, kind: str, values: list):
    from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkIntArray, vtkStringArray

    array = {"text": vtkStringArray, "int": vtkIntArray, "float": vtkDoubleArray}[kind]()
    array.SetName(name)
    for value in values:
        array.InsertNextValue(value)
    return array


def _steps_table(sw, order: list[int]) -> vtkTable:
    """Port 3 without ``shown_step``: ``sw.rows()`` in time order, then relative L2 per level."""
    nan = float("nan")
    rows = sw.rows()
    table = vtkTable()
    for name in rows[0]:
        values = [rows[i][name] for i in order]
        if name in ("label", "top1_label"):
            table.AddColumn(_column(name, "text", values))
        elif name == "top1_index":
            table.AddColumn(_column(name, "int", values))
        else:
            table.AddColumn(_column(name, "float", [nan if v is None else float(v) for v in values]))
    for level, name in enumerate(sw.levels):
        table.AddColumn(_column(f"relative_l2 {name}", "float", [sw.steps[i].relative_l2[level] for i in order]))
    field = table.GetFieldData()
    for name, value in [("perturbation", sw.perturbation), ("parameter", sw.parameter), ("unit", sw.unit),
                        ("clean_label", sw.clean_label), ("target_label", sw.target_label or "")]:
        _add_field(field, name, [value])
    for name, value in [("clean_class", sw.clean_class), ("flip_severity", sw.flip_severity),
                        ("half_severity", sw.half_severity)]:
        _add_field(field, name, [nan if value is None else float(value)])
    _add_field(field, "level_name", list(sw.levels))
    return table


def _shown_step(sw, order: list[int], position: int):
    """The column ``shown_step``: the clean class's probability at the time step shown, NaN elsewhere."""
    nan = float("nan")
    return _column("shown_step", "float", [sw.steps[i].clean_probability if p == position else nan
                                           for p, i in enumerate(order)])


def _drift_image(sw, order: list[int]) -> vtkImageData:
    """Port 4: one cell per (time step, level), X the time step, Y the level; cells centred on whole numbers."""
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk

    levels, steps = len(sw.levels), len(order)
    image = vtkImageData()
    image.SetDimensions(steps + 1, levels + 1, 1)
    image.SetOrigin(-0.5, -0.5, 0.0)
    for name, per_step in (("drift", [sw.steps[i].drift for i in order]),
                           ("relative_l2", [sw.steps[i].relative_l2 for i in order])):
        values = np.ascontiguousarray(np.asarray(per_step, dtype=np.float64).T)  # (levels, steps): X fastest
        array = numpy_to_vtk(values.ravel(), deep=True)
        array.SetName(name)
        image.GetCellData().AddArray(array)
    image.GetCellData().SetActiveScalars("drift")
    _add_field(image.GetFieldData(), "severity", [sw.steps[i].severity for i in order])
    _add_field(image.GetFieldData(), "level_name", list(sw.levels))
    return image
