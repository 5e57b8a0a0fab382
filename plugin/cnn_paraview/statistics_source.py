"""CNN Channel Statistics: which channel responds to what, as tables and a picture (Sources > CNN).

Stimuli: ``ImageSet`` (the Images property, as CNN Image Set takes it: a labelled folder, a list
file, a pattern; :func:`cnn_engine.channel_statistics`) or ``FeatureProbes`` (synthetic gratings
and colour fields made on the fly; :func:`cnn_engine.probe_channels`). Model options as the
volume sources (Model, Weights, Layer Set, Input Size, Fit, Device, Trust TorchScript).

Outputs:

* port 0, a ``vtkTable`` with one row per (level, channel): the statistics' rows
  (``ChannelRow``: level, channel, preferred class and its name, selectivity, AUROC, mean, images)
  or the probes' rows (preferred orientation, OSI, preferred hue, HSI, label, ...), each with
  ``level_index`` beside ``level``. Shown in a spreadsheet view (click a column to sort).
* port 1, a ``vtkTable`` for the channel chosen by Level and Channel: its per-class means and
  standard deviations (``class_index``, ``class``, ``mean``, ``sd``, ``images``) or its tuning
  curves, for a line or bar chart view.
* port 2, the chosen level's exemplar atlas (:mod:`cnn_engine.atlas`) as 2-D image data, upright,
  with the point array ``atlas`` (RGB, unsigned char: shown with its own colours).

The statistics are computed once per setting that decides them and kept: Level and Channel only
pick rows (no network run; ``StatisticsRuns`` counts the computations). The read-only ``Chosen
Channel`` property holds the choice as ``LEVEL:CHANNEL`` (the level's name), the syntax of CNN
Image Set's Explicit Channels: a property link (see ``scenes.link_chosen_channel``) copies it
there, so the image set shows the chosen channel at every time step; ParaView saves that link in
state files.

Under MPI (a ``pvserver`` or ``pvbatch`` on several processes) each rank takes a share of the
images (:func:`mpi_communicator`), the statistics are reduced across ranks, and rank 0 alone
emits the tables and the atlas (the other ranks' outputs are empty, so ParaView's gather does not
repeat rows).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData, vtkTable
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

from .base import Domains, default_number, inherit_properties, last_error_property, resolve_path, strings
from .model_properties import _ModelProperties, model_settings
from .xml import Enumeration, IntRange, documentation

#: What the statistics are taken over. Saved by index in state files: append, never insert.
STIMULI = ("ImageSet", "FeatureProbes")
#: The exemplars kept per channel by default (a 3 x 3 atlas tile; cnn_engine.statistics.DEFAULT_TOP_N).
DEFAULT_TOP_N = 9


class StatisticsDomains:
    """This source's own checked properties (the model options' domains are in base.Domains)."""

    Stimuli = Enumeration("Stimuli", STIMULI)
    TopN = IntRange("TopN", 1, 100)
    Level = IntRange("Level", -1, 9999)  # -1: the last level; beyond the model's levels: RequestData says so
    Channel = IntRange("Channel", 0, 999999)


def _range_of(information: str) -> str:
    """The XML of an integer range read from the information property ``information`` (min, max):
    the slider follows the model's levels and channels. Setters check the static StatisticsDomains;
    the range only guides the widget. Its default is the minimum (-1: the last level; channel 0), as
    the XML default: ParaView sets a new proxy's properties to their domain's default."""
    return (f'<IntRangeDomain name="range" default_mode="min"><RequiredProperties>'
            f'<Property name="{information}" function="RangeInfo"/></RequiredProperties></IntRangeDomain>')


def _emitting(comm) -> bool:
    """Whether this process emits the outputs: alone, or rank 0 of ``comm`` (ParaView gathers the
    ranks' outputs: rows emitted by every rank would be repeated)."""
    return comm is None or comm.Get_rank() == 0


def mpi_communicator():
    """mpi4py's ``COMM_WORLD`` when ParaView runs on several processes (an MPI ``pvserver`` or
    ``pvbatch``), else None: what :func:`cnn_engine.channel_statistics` takes as ``comm``."""
    from vtkmodules.vtkParallelCore import vtkMultiProcessController

    controller = vtkMultiProcessController.GetGlobalController()
    if controller is None or controller.GetNumberOfProcesses() < 2:
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


@smproxy.source(name="CNNChannelStatistics", label="CNN Channel Statistics")
@smhint.xml('<ShowInMenu category="CNN"/>')
@smproperty.xml(documentation(
    "Which channel responds to what: per-channel class statistics over a labelled image set, or tuning "
    "to synthetic gratings and colours (feature probes), as a table, a chart of one channel and its exemplars."))
@inherit_properties
class CNNChannelStatistics(_ModelProperties, VTKPythonAlgorithmBase):
    """Sources > CNN > CNN Channel Statistics."""

    label = "CNN Channel Statistics"

    # Model options that mean nothing for statistics: left out of this proxy (inherit_properties
    # copies only what the class does not define itself).
    a00_GetForwardPasses = None
    a06_SetTopK = None
    a07_SetRankBy = None
    a10_SetInterpolation = None
    a11_SetLevelSpacing = None
    a13_SetEvidence = None
    a14_SetTargetClass = None

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=0, nOutputPorts=3, outputType="vtkTable")
        self._start_session()
        self._settings = {
            "stimuli": STIMULI[0], "images": (), **model_settings(), "top_n": DEFAULT_TOP_N,
            "batch_size": default_number("batch_size"), "level": -1, "channel": 0,
        }
        self.statistics_runs = 0  # computations of the statistics (or probes)
        self.result = None  # the last ChannelStatistics or ProbeResults
        self._result_key: tuple | None = None
        self._rows = None  # port 0 of that result (built once)
        self._atlases: dict[int, Any] = {}  # level index -> port 2 of that result
        self._chosen = ""  # LEVEL:CHANNEL of the last valid choice (see a00_GetChosenChannel)
        self._known: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())  # level names, channel counts

    def FillOutputPortInformation(self, port, info):
        info.Set(vtkDataObject.DATA_TYPE_NAME(), "vtkImageData" if port == 2 else "vtkTable")
        return 1

    # --- properties ------------------------------------------------------------------------------

    a00_GetLastError = last_error_property("a00_GetLastError", panel_visibility="default")

    @smproperty.intvector(name="StatisticsRuns", information_only="1", panel_visibility="never",
                          number_of_elements=1, default_values=0)
    @smdomain.xml(documentation("How often the statistics (or probes) were computed (statistics_runs)."))
    def a00_GetStatisticsRuns(self):
        return self.statistics_runs

    @smproperty.stringvector(name="ChosenChannel", label="Chosen Channel", information_only="1",
                             number_of_elements=1, default_values="", panel_visibility="default")
    @smdomain.xml("<StringArrayHelper/>" + documentation(
        "The channel chosen by Level and Channel as LEVEL:CHANNEL (the level's name), the syntax of CNN Image "
        "Set's Explicit Channels; a property link copies it there (see the example state)."))
    @smhint.xml('<Widget type="one_liner_wrapped"/>')
    def a00_GetChosenChannel(self):
        return strings([self._chosen])

    @smproperty.intvector(name="LevelRange", information_only="1", number_of_elements=2, default_values=[-1, 0])
    def a00_GetLevelRange(self):
        """-1 (the last level) to the last level's index: the Level slider's range."""
        return [-1, max(len(self._known[0]) - 1, 0)]

    @smproperty.intvector(name="ChannelRange", information_only="1", number_of_elements=2, default_values=[0, 0])
    def a00_GetChannelRange(self):
        """0 to the last channel of the level chosen by Level: the Channel slider's range."""
        levels, counts = self._known
        level = self._settings["level"]
        index = len(levels) - 1 if level == -1 else level
        return [0, counts[index] - 1 if 0 <= index < len(counts) else 0]

    @smproperty.intvector(name="Stimuli", default_values=0)
    @smdomain.xml(StatisticsDomains.Stimuli.xml() + documentation(
        "What the channels are measured on: ImageSet (the labelled images of Images: class means, selectivity, "
        "AUROC, exemplars) or FeatureProbes (synthetic oriented gratings and colour fields: tuning curves, "
        "preferred orientation and hue, OSI, HSI; Images is not used)."))
    def a01_SetStimuli(self, index):
        self._set_checked("stimuli", index, StatisticsDomains.Stimuli)

    @smproperty.xml(f"""
        <StringVectorProperty name="Images" command="a01_AddImages" clean_command="a01_ClearImages"
            repeat_command="1" number_of_elements_per_command="1" number_of_elements="0" animateable="0">
          <FileListDomain name="files"/>
          {documentation(
              "The labelled images (Stimuli ImageSet): a folder with one subfolder per class (named by a WordNet "
              "ID such as n02123045 or a class name), a list file (.csv or .txt, one path,label a line), a glob "
              "pattern, or several image files; as CNN Image Set takes them. A relative path is looked up from "
              "the current folder, then from the cnnvis project folder.")}
          <Hints><UseDirectoryName/></Hints>
        </StringVectorProperty>""")
    def a01_AddImages(self, name):
        self._set("images", self._settings["images"] + (str(name),))

    def a01_ClearImages(self):
        self._set("images", ())

    @smproperty.intvector(name="Level", default_values=-1)
    @smdomain.xml(_range_of("LevelRange") + documentation(
        "The level of the chosen channel, by index (the level_index column; -1: the last level). Choosing "
        "computes nothing again."))
    def a01a_SetLevel(self, index):
        self._set_checked("level", index, StatisticsDomains.Level)

    @smproperty.intvector(name="Channel", default_values=0)
    @smdomain.xml(_range_of("ChannelRange") + documentation(
        "The chosen channel of that level (the channel column): its class means or tuning curves go to output "
        "port 1, and Chosen Channel names it for CNN Image Set. Choosing computes nothing again."))
    def a01b_SetChannel(self, channel):
        self._set_checked("channel", channel, StatisticsDomains.Channel)

    @smproperty.intvector(name="TopN", label="Top N", default_values=DEFAULT_TOP_N)
    @smdomain.xml(StatisticsDomains.TopN.xml() + documentation(
        "Exemplars kept per channel: the images where the channel's map reaches its highest values (the atlas "
        "shows them)."))
    def a16_SetTopN(self, count):
        self._set_checked("top_n", count, StatisticsDomains.TopN)

    @smproperty.intvector(name="BatchSize", label="Batch Size", default_values=default_number("batch_size"))
    @smdomain.xml(Domains.BatchSize.xml() + documentation(
        "Images per batch through the network; 0: automatic (up to 16, fewer when memory is short). Changing "
        "it changes no result."))
    def a17_SetBatchSize(self, size):
        self._set_checked("batch_size", size, Domains.BatchSize)

    # --- what decides the result -----------------------------------------------------------------

    def _image_names(self) -> str | list[str]:
        """The Images property as cnn_engine takes it: one path or pattern, or a list."""
        names = [resolve_path(name) for name in self._settings["images"] if name.strip()]
        if not names:
            from cnn_engine import ImageError

            raise ImageError("no images chosen: set Images to a folder with one subfolder per class, a list file "
                             "(.csv/.txt, path,label a line), a pattern such as photos/*/*.jpg, or image files")
        return names[0] if len(names) == 1 else names

    def _probes(self) -> bool:
        return self._settings["stimuli"] == "FeatureProbes"

    def _key(self) -> tuple:
        """What decides the result: a different key computes it again. Level, Channel and the batch
        size do not count."""
        s = self._settings
        request = self._model_request()
        common = (s["stimuli"], request.model_key(), request.layers, s["input_size"])
        if self._probes():
            return common
        from cnn_engine import ImageSet

        names = self._image_names()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the set's problems are told when the statistics run
            paths = tuple(ImageSet(names).paths)  # new files in a folder count, not only the names
        return common + (names if isinstance(names, str) else tuple(names), paths, s["fit"], s["top_n"])

    def _model(self):
        model = self.session.model(self._model_request())
        if model.substitution and self._announced != self.session.model_builds:
            self._announced = self.session.model_builds
            self._note(model.substitution)
        return model

    def _compute(self, model, comm) -> Any:
        """The statistics (or probes) for the current settings, with progress and notes."""
        request = self._model_request()
        progress = lambda done, total: self.UpdateProgress(0.9 * done / max(total, 1))  # noqa: E731
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self._probes():
                from cnn_engine import probe_channels

                self.SetProgressText(f"CNN: feature probes through {model.name}")
                # A few hundred stimuli, the same on every rank: no share to split under MPI.
                result = probe_channels(model, layers=request.layers, input_size=request.input_size,
                                        batch_size=self._settings["batch_size"] or None, progress=progress)
            else:
                from cnn_engine import channel_statistics

                names = self._image_names()
                self.SetProgressText("CNN: channel statistics over the image set")
                result = channel_statistics(
                    model, names, layers=request.layers, top_n=self._settings["top_n"],
                    batch_size=self._settings["batch_size"] or None, input_size=request.input_size,
                    fit=request.fit, progress=progress, comm=comm)
        told = []
        for message in [str(w.message) for w in caught] + list(getattr(result, "notes", ()) or ()):
            if message not in told:  # a note is warned and kept in the result: say it once
                told.append(message)
                self._note(message)
        self.statistics_runs += 1
        return result

    def _levels(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The level names and channel counts of the current settings, without loading weights or
        running the network: the architecture decides them (see :func:`level_catalogue`)."""
        from cnn_engine.models import default_model_name

        request = self._model_request()
        return level_catalogue(default_model_name() if request.offline_allowed() else request.model, request.layers)

    def _choice(self, levels: Sequence[str], counts: Sequence[int]) -> tuple[int, int]:
        """(level index, channel) chosen by Level and Channel; a clear error when they do not exist."""
        from cnn_engine.channel_netcdf import check_channel
        from cnn_engine.errors import LayerError

        level = self._settings["level"]
        index = len(levels) - 1 if level == -1 else level
        if not 0 <= index < len(levels):
            raise LayerError(f"Level {level} does not exist: this model's layer set has {len(levels)} levels, "
                             f"0 to {len(levels) - 1} (-1: the last, {levels[-1]})")
        return index, check_channel(self._settings["channel"], counts[index], levels[index])

    # --- the pipeline ----------------------------------------------------------------------------

    def RequestInformation(self, request, inInfo, outInfo):
        # The chosen channel's name, for the property link to CNN Image Set: known from the model's
        # levels before anything is computed (a state file's link copies it on loading). Quiet
        # here: RequestData reports what is wrong, once; an invalid choice keeps the last valid
        # one (the image set keeps showing it).
        if self.session is not None:
            try:
                levels, counts = self._known = self._levels()
                index, channel = self._choice(levels, counts)
                self._chosen = f"{levels[index]}:{channel}"
            except Exception:
                pass
        # The atlas's canvas: its size follows from Top N alone, so it is known before anything is
        # computed (a 2-D image whose extent is declared later is not shown).
        width, height = self._canvas()
        outInfo.GetInformationObject(2).Set(Pipeline.WHOLE_EXTENT(), 0, width - 1, 0, height - 1, 0, 0)
        # Every rank of an MPI pvserver must run RequestData (each takes its share of the images and
        # joins the reduction): without this, VTK asks rank 0 alone for the one piece, and it waits.
        from vtkmodules.vtkCommonExecutionModel import vtkAlgorithm

        for port in range(3):
            outInfo.GetInformationObject(port).Set(vtkAlgorithm.CAN_HANDLE_PIECE_REQUEST(), 1)
        return 1

    def _canvas(self) -> tuple[int, int]:
        """(width, height) of port 2 here: the atlas canvas on the rank that emits, else nothing."""
        if self._probes() or not _emitting(mpi_communicator()):
            return 0, 0
        return atlas_canvas(self._settings["top_n"])

    def _fail(self, message: str) -> int:
        """Report ``message`` once, empty tables, and a blank atlas of the declared size: an image
        smaller than its declared extent would make every later request run this source again
        (and say the message again)."""
        super()._fail(message)
        self._blank_atlas()
        return 1

    def _blank_atlas(self) -> None:
        width, height = self._canvas()
        if width and height:
            import numpy as np
            from vtkmodules.util.numpy_support import numpy_to_vtk

            atlas = self.GetOutputDataObject(2)
            atlas.SetDimensions(width, height, 1)
            white = numpy_to_vtk(np.full((width * height, 3), 255, dtype=np.uint8), deep=True)
            atlas.GetPointData().SetScalars(_named(white, "atlas"))

    def RequestData(self, request, inInfo, outInfo):
        if self._setup_error:
            return self._fail(self._setup_error)

        def work() -> int:
            self.UpdateProgress(0.0)
            key = self._key()
            comm = mpi_communicator()
            if key != self._result_key:
                self.result, self._result_key, self._rows, self._atlases = None, None, None, {}
                self.result = self._compute(self._model(), comm)
                self._result_key = key
            result = self.result
            emit = _emitting(comm)
            if self._rows is None:
                self._rows = rows_table(result.rows())
            if emit:
                vtkTable.GetData(outInfo, 0).ShallowCopy(self._rows)
            levels, counts = tuple(result.levels), tuple(int(n) for n in result.channel_counts)
            try:
                index, channel = self._choice(levels, counts)
            except Exception as exc:
                # The table stays (it lists what exists); the chosen channel's outputs are empty.
                self._failure = str(exc)
                self._report(str(exc))
                self.GetOutputDataObject(1).Initialize()
                self._blank_atlas()
                return 1
            self._chosen = f"{levels[index]}:{channel}"
            if emit:
                vtkTable.GetData(outInfo, 1).ShallowCopy(self._chosen_table(result, index, channel))
                vtkImageData.GetData(outInfo, 2).ShallowCopy(self._atlas(result, index))
            self.UpdateProgress(1.0)
            return 1

        return self._guarded(work)

    def _chosen_table(self, result, index: int, channel: int) -> vtkTable:
        """Port 1: the chosen channel's per-class means (statistics) or tuning curves (probes)."""
        if hasattr(result, "class_mean"):
            table = columns_table({
                "class_index": ("int", list(result.classes)),
                "class": ("text", list(result.class_names)),
                "mean": ("float", list(result.class_mean[index][channel])),
                "sd": ("float", list(result.class_std[index][channel])),
                "images": ("int", [int(n) for n in result.class_counts]),
            })
        else:
            table = tuning_table(result.tuning(index, channel))
        table.GetFieldData().AddArray(_named(strings([f"{result.levels[index]}:{channel}"]), "chosen_channel"))
        return table

    def _atlas(self, result, index: int) -> vtkImageData:
        """Port 2: the level's exemplar atlas (made once per level and result); empty where there is none."""
        if index not in self._atlases:
            self.SetProgressText(f"CNN: exemplar atlas of {result.levels[index]}")
            self._atlases[index] = atlas_image(result, index, atlas_canvas(self._settings["top_n"]))
        return self._atlases[index]


# --- levels without weights ------------------------------------------------------------------------

#: (model name, layer set) -> (level names, channel counts), shared by all proxies of the process.
_CATALOGUES: dict[tuple[str, str], tuple[tuple[str, ...], tuple[int, ...]]] = {}


def _catalogue(model, layers: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``model``'s level names and channel counts for ``layers`` (from its traced layer catalogue)."""
    levels = model.levels(layers)
    shapes = model.catalog.reference_shapes
    return tuple(level.name for level in levels), tuple(int(shapes[level.node][1]) for level in levels)


def level_catalogue(name: str, layers: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The level names and channel counts of model ``name``'s layer set ``layers``: from its
    architecture with random weights (no download), kept for the process."""
    key = (name, layers)
    if key not in _CATALOGUES:
        from cnn_engine import load_model

        _CATALOGUES[key] = _catalogue(load_model(name, weights="random", device="cpu"), layers)
    return _CATALOGUES[key]


# --- building the outputs ---------------------------------------------------------------------------


def _named(array, name: str):
    array.SetName(name)
    return array


def columns_table(columns: dict[str, tuple[str, list]]) -> vtkTable:
    """A vtkTable of ``columns``: name -> (kind, values), kind ``int`` (int64), ``float`` (double,
    NaN where undefined) or ``text``."""
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk

    table = vtkTable()
    for name, (kind, values) in columns.items():
        if kind == "text":
            array = strings([str(v) for v in values])
        else:
            dtype = np.int64 if kind == "int" else np.float64
            array = numpy_to_vtk(np.asarray(values, dtype=dtype).reshape(-1), deep=True)
        table.AddColumn(_named(array, name))
    return table


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, int)) or type(value).__name__.startswith("int"):
        return "int"
    return "float"


def rows_table(rows: Sequence[Any]) -> vtkTable:
    """Port 0: one row per (level, channel) from ``rows`` (NamedTuples with ``level`` and ``channel``
    first), with ``level_index`` (the level's position in network order) after ``level``."""
    if not rows:
        return vtkTable()
    fields = type(rows[0])._fields
    index_of: dict[str, int] = {}
    level_index = [index_of.setdefault(row.level, len(index_of)) for row in rows]
    columns: dict[str, tuple[str, list]] = {}
    for name in fields:
        values = [getattr(row, name) for row in rows]
        columns[name] = (_kind(values[0]), values)
        if name == "level":
            columns["level_index"] = ("int", level_index)
    return columns_table(columns)


def tuning_table(tuning) -> vtkTable:
    """Port 1 for feature probes: the chosen channel's tuning curves (a ``ChannelTuning``), one pair
    of columns per curve: ``orientation_deg`` / ``orientation_response`` (at the preferred spatial
    frequency), ``frequency_cycles_per_pixel`` / ``frequency_response`` (at the best orientation),
    ``hue_deg`` / ``hue_response`` (at the best saturation and value). The curves have different
    lengths: shorter ones are padded with NaN (a line chart leaves those points out)."""
    import numpy as np

    curves = {"orientation_deg": tuning.orientations_deg, "orientation_response": tuning.orientation,
              "frequency_cycles_per_pixel": tuning.frequencies, "frequency_response": tuning.frequency,
              "hue_deg": tuning.hues_deg, "hue_response": tuning.hue}
    length = max(len(values) for values in curves.values())
    columns = {}
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        columns[name] = ("float", list(np.concatenate([values, np.full(length - len(values), np.nan)])))
    return columns_table(columns)


def atlas_canvas(top_n: int) -> tuple[int, int]:
    """(width, height) in pixels of port 2 for ``top_n`` exemplars a channel: the largest atlas
    :func:`cnn_engine.atlas.exemplar_atlas` makes with its defaults (the level's 16 most selective
    channels in a 4 x 4 grid, blocks of ceil(sqrt(top_n)) tiles a side). A smaller atlas (a level
    with fewer channels, a set with fewer images) is padded to it."""
    import math

    from cnn_engine.atlas import CAPTION_HEIGHT, DEFAULT_CHANNELS, DEFAULT_TILE, GAP

    block = math.ceil(math.sqrt(top_n)) * DEFAULT_TILE
    columns = math.ceil(math.sqrt(DEFAULT_CHANNELS))
    rows = math.ceil(DEFAULT_CHANNELS / columns)
    return columns * block + (columns + 1) * GAP, rows * (CAPTION_HEIGHT + block) + (rows + 1) * GAP


def atlas_image(result, index: int, canvas: tuple[int, int] | None = None) -> vtkImageData:
    """The exemplar atlas of level ``index`` (:func:`cnn_engine.atlas.exemplar_atlas`: the level's
    most selective channels, each with its top exemplars) as 2-D image data, upright (image row 0
    at the top), point array ``atlas`` (RGB, unsigned char), on a white ``canvas`` (width, height)
    with the atlas in its upper-left corner when given. Empty for feature probes, which have no
    exemplars."""
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk

    image = vtkImageData()
    if not hasattr(result, "exemplars"):
        return image
    from cnn_engine.atlas import exemplar_atlas

    rgb = exemplar_atlas(result, index).rgb
    if canvas is not None:
        padded = np.full((canvas[1], canvas[0], 3), 255, dtype=np.uint8)
        height, width = min(rgb.shape[0], canvas[1]), min(rgb.shape[1], canvas[0])
        padded[:height, :width] = rgb[:height, :width]
        rgb = padded
    height, width = rgb.shape[:2]
    image.SetDimensions(width, height, 1)
    # VTK's rows go up: flip so that the picture stands upright.
    array = numpy_to_vtk(np.ascontiguousarray(rgb[::-1]).reshape(-1, 3), deep=True)
    image.GetPointData().SetScalars(_named(array, "atlas"))
    return image
