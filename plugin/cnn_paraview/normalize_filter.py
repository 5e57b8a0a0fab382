"""CNN Layer Normalize: one normalised ``activation`` array from a volume's ranked channels."""

from __future__ import annotations

import numpy as np
from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonCore import vtkStringArray
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

from .base import CHANNELS, Domains, _AttributeSettings, last_error_property, upstream_netcdf
from .xml import documentation


@smproxy.filter(name="CNNLayerNormalize", label="CNN Layer Normalize")
@smhint.xml('<ShowInMenu category="CNN"/>')
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkImageData"], composite_data_supported=False)
class CNNLayerNormalize(_AttributeSettings, VTKPythonAlgorithmBase):
    """One ``activation`` array from the volume's ranked channels (or its ``layercam`` array),
    normalised per level.

    Input: the CNN Activation Volume or CNN Image Set, or an exported .nc opened with ParaView's
    NetCDF reader.
    """

    label = "CNN Layer Normalize"
    b00_GetLastError = last_error_property("b00_GetLastError", panel_visibility="default")

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=1,
                                        inputType="vtkImageData", outputType="vtkImageData")
        self._normalization = Domains.Normalization.entries[0]
        self._percentiles = (1.0, 99.0)
        self._channels = CHANNELS[0]
        self._rank = 0
        self._first, self._last = 0, -1

    @smproperty.intvector(name="Normalization", default_values=0)
    @smdomain.xml(Domains.Normalization.xml() + documentation(
        "PerLevelMinMax: each level to [0, 1]; PerLevelPercentile: each level "
        "clipped to the Percentile Range, then [0, 1]; PerLevelZScore: zero mean, unit deviation "
        "per level; Global: the whole volume to [0, 1]; None: raw values (keeps a CNN Image Set's "
        "set-wide scale)."))
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
        path = upstream_netcdf(algorithm)
        if path is not None:
            from cnn_engine.netcdf import read_metadata

            add_metadata_fields(output.GetFieldData(), read_metadata(path))
    first = vtkStringArray()
    first.SetName("kept_levels")
    first.InsertNextValue(f"{kept.start}:{kept.stop}")
    output.GetFieldData().AddArray(first)
