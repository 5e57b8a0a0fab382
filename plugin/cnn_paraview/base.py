"""What every CNN proxy shares: error reporting, property domains built from the engine's option
descriptions, and small helpers for properties and the pipeline.

* :class:`_Reporting`: one clear message per failure or refused value, empty outputs, no crash.
* :class:`Domains`: each checked property's allowed values (the widget's XML domain and the
  setter's check). The model options' enumerations, defaults and ranges come from
  :data:`cnn_engine.options.OPTIONS` (one description for the CLI, ``Session`` and the plugin);
  the filter's and the caption's own lists are below.
* :func:`inherit_properties`, :func:`last_error_property`, :func:`strings`: building proxies.
* :func:`resolve_path`, :func:`upstream_error`, :func:`upstream_netcdf`: files and pipelines.

ParaView saves an enumeration property by the *index* of its entry in state files: entries are
only ever appended (examples/*.pvsm record the lists they were saved with; a test compares).
Importing this module imports ``cnn_engine.options`` only (no torch): ParaView loads the plugin
at start-up, and the network is loaded when a proxy first runs.
"""

from __future__ import annotations

import glob
import os
import traceback
from pathlib import Path
from typing import Any, Iterable

from cnn_engine.options import NORMALIZATIONS, OPTIONS, Option
from paraview.util.vtkAlgorithm import smdomain, smhint, smproperty
from vtkmodules.vtkCommonCore import vtkStringArray

from .xml import Domain, DoubleRange, Enumeration, IncreasingPair, IntRange, documentation

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

#: Shown as a slice through the volume, not as ParaView's default outline of 3-D image data.
SLICE_BY_DEFAULT = '<RepresentationType view="RenderView" type="Slice"/>'

# The filter's and the caption's own enumerations (not options of a volume). Saved by index in
# state files: new values are appended, never inserted.
CHANNELS = ("Top1", "Rank", "MeanTopK", "MaxTopK", "LayerCAM")  # spellings of cnn_engine.selection's
CAPTIONS = ("Level", "Predictions", "Image")


# --- the option descriptions, as ParaView properties ----------------------------------------------


def _values(option: Option) -> tuple:
    """The engine values of ``option``'s drop-down entries, in order, after ``paraview_none``."""
    return tuple(option.choices or option.paraview_choices or ())


def shown_entry(name: str, value: Any) -> str:
    """The drop-down entry of option ``name`` for the engine value ``value`` (``"cam"`` -> ``"CAM"``)."""
    option = OPTIONS[name]
    if value is None and option.paraview_none:
        return option.paraview_none
    spelled = option.paraview_choices or option.choices
    return spelled[_values(option).index(value)]


def engine_value(name: str, entry: str) -> Any:
    """The engine value of option ``name``'s drop-down entry ``entry`` (``"CAM"`` -> ``"cam"``, ``"None"`` -> None)."""
    option = OPTIONS[name]
    if option.paraview_none and entry == option.paraview_none:
        return None
    spelled = option.paraview_choices or option.choices
    return _values(option)[list(spelled).index(entry)]


def enumeration(name: str, entries: Iterable[str] | None = None) -> Enumeration:
    """Option ``name``'s drop-down list (``entries``: a leading part of it, where a proxy offers fewer)."""
    option = OPTIONS[name]
    return Enumeration(option.paraview, tuple(entries) if entries is not None else option.shown_choices())


def number_range(name: str) -> IntRange | DoubleRange:
    """Option ``name``'s bounds. An option whose default is worked out at run time (None) takes 0 for
    it in the plugin (Level Spacing 0, Batch Size 0: automatic), so 0 is then allowed too."""
    option = OPTIONS[name]
    low = 0 if option.default is None else option.minimum
    if option.kind is int:
        return IntRange(option.paraview, int(low), int(option.maximum))
    return DoubleRange(option.paraview, float(low), float(option.maximum))


def default_index(name: str, value: Any = ...) -> int:
    """The XML default of option ``name``'s drop-down: the index of its default (or of ``value``)."""
    option = OPTIONS[name]
    return list(option.shown_choices()).index(shown_entry(name, option.default if value is ... else value))


def default_number(name: str) -> int | float:
    """The XML default of number option ``name`` (0 where the option's default is None: automatic)."""
    option = OPTIONS[name]
    return option.kind(0 if option.default is None else option.default)


def option_label(name: str) -> str:
    """Option ``name``'s label in the property panel."""
    option = OPTIONS[name]
    return option.label or option.paraview


class Domains:
    """Each checked property's allowed values: the XML domain of its widget and its setter's check."""

    # The sources' model options.
    LayerSet = enumeration("layers")
    TopK = number_range("top_k")
    RankBy = enumeration("rank_by")
    InputSize = number_range("input_size")
    Fit = enumeration("fit")
    Interpolation = enumeration("interpolation")
    LevelSpacing = number_range("level_spacing")
    Device = enumeration("device")
    Evidence = enumeration("evidence")
    # The image set's.
    ChannelChoice = enumeration("channels")
    SetNormalization = enumeration("normalization")  # named Normalization, with Set (the set's ranges)
    BatchSize = number_range("batch_size")
    # CNN Layer Normalize scales one volume: the normalisations without Set, which needs the whole set.
    Normalization = enumeration("normalization", OPTIONS["normalization"].shown_choices()[:len(NORMALIZATIONS)])
    PercentileRange = IncreasingPair("PercentileRange", 0.0, 100.0)
    Channels = Enumeration("Channels", CHANNELS)
    Rank = IntRange("Rank", 0, int(OPTIONS["top_k"].maximum) - 1)  # a rank of the largest Top K
    # CNN Caption.
    Content = Enumeration("Content", CAPTIONS)


# --- reporting ------------------------------------------------------------------------------------


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

    def _note(self, message: str) -> None:
        """Say something worth knowing that is no failure (a stand-in model, skipped files).

        As plain text, not as a warning: a warning pops the Output Messages window up over the
        picture. (paraview.print_info fails in 5.11's GUI: its handler asks vtkLogger for a
        missing VERBOSITY_DEBUG.)
        """
        from vtkmodules.vtkCommonCore import vtkOutputWindow

        vtkOutputWindow.GetInstance().DisplayText(f"{self.label}: {message}\n")

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


class _DictSettings(_Reporting):
    """Setters of proxies that keep their properties in one dict, ``self._settings`` (the sources)."""

    _settings: dict[str, Any]

    def _set(self, key: str, value) -> None:
        if self._settings[key] != value:
            self._settings[key] = value
            self.Modified()

    def _set_checked(self, key: str, value: Any, domain: Domain) -> None:
        """Set ``key`` to ``value`` if ``domain`` allows it; else report it and keep the setting."""
        accepted = self._checked(domain, value, self._settings[key])
        if accepted is not None:
            self._set(key, accepted)


# --- building proxies -----------------------------------------------------------------------------


def inherit_properties(cls):
    """The decorators read only the class's own methods: copy the decorated ones of its bases."""
    for base in cls.__mro__[1:]:
        for name, value in vars(base).items():
            if name not in vars(cls) and hasattr(value, "_pv_original_func"):
                setattr(cls, name, value)
    return cls


def strings(values: Iterable[str]) -> vtkStringArray:
    array = vtkStringArray()
    for value in values:
        array.InsertNextValue(value)
    return array


def last_error_property(method: str, panel_visibility: str):
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
        return strings([self.last_error or ""])

    return get_last_error


# --- files and pipelines --------------------------------------------------------------------------


def _found(path: Path) -> bool:
    """``path`` exists, or as a glob pattern matches something."""
    text = str(path)
    if any(character in text for character in "*?["):
        return bool(glob.glob(text, recursive=True))
    return path.exists()


def resolve_path(name: str) -> str:
    """``name`` as given when it is absolute or found from the current folder; else from the cnnvis
    project folder when found there (example states name files relative to it); else as given."""
    path = Path(name).expanduser()
    if not path.is_absolute() and not _found(path) and _found(PROJECT_ROOT / path):
        return str(PROJECT_ROOT / path)
    return str(path)


def upstream(algorithm):
    """The algorithms feeding ``algorithm``'s first input, nearest first (at most 32)."""
    current = algorithm
    for _ in range(32):
        if current.GetNumberOfInputPorts() < 1 or current.GetNumberOfInputConnections(0) < 1:
            return
        current = current.GetInputAlgorithm(0, 0)
        yield current


def upstream_error(algorithm) -> str | None:
    """The message of the nearest failed CNN proxy upstream (ParaView may put filters in between)."""
    return next((a.last_error for a in upstream(algorithm) if getattr(a, "last_error", None)), None)


def upstream_netcdf(algorithm) -> str | None:
    """The .nc file of the nearest reader upstream, if any (the stock reader drops global attributes)."""
    for current in upstream(algorithm):
        for candidate in (current, getattr(current, "GetReader", lambda: None)()):
            name = getattr(candidate, "GetFileName", None) if candidate is not None else None
            try:
                value = name() if name is not None else None
            except TypeError:
                value = name(0)
            if value and str(value).endswith(".nc") and os.path.isfile(value):
                return str(value)
    return None


def declare_grid(outInfo, grid: tuple[int, int, int, float] | None, evidence: bool) -> None:
    """Declare the volume sources' output grids in RequestInformation: port 0 the volume
    (``grid`` = (levels, height, width, level spacing)), port 2 the evidence map's plane when
    ``evidence``; both empty when ``grid`` is None (the request then says why)."""
    from vtkmodules.vtkCommonDataModel import vtkDataObject
    from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

    for port in (0, 2):
        outInfo.GetInformationObject(port).Set(Pipeline.WHOLE_EXTENT(), 0, -1, 0, -1, 0, -1)
    if grid is None:
        return
    levels, height, width, spacing = grid
    info = outInfo.GetInformationObject(0)
    info.Set(Pipeline.WHOLE_EXTENT(), 0, width - 1, 0, height - 1, 0, levels - 1)
    info.Set(vtkDataObject.SPACING(), 1.0, 1.0, spacing)
    info.Set(vtkDataObject.ORIGIN(), 0.0, 0.0, 0.0)
    if evidence:
        outInfo.GetInformationObject(2).Set(Pipeline.WHOLE_EXTENT(), 0, width - 1, 0, height - 1, 0, 0)
