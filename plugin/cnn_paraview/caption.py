"""CNN Caption: a text that follows a volume, shown like ParaView's Text source."""

from __future__ import annotations

from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkTable

from .base import CAPTIONS, Domains, _AttributeSettings, last_error_property, strings
from .xml import documentation


@smproxy.filter(name="CNNCaption", label="CNN Caption")
@smhint.xml('<ShowInMenu category="CNN"/><OutputPort name="Output" index="0" type="text"/>')
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkImageData"], composite_data_supported=False)
class CNNCaption(_AttributeSettings, VTKPythonAlgorithmBase):
    """A text that follows the volume: a level's name, channel and grid, the model and its
    predictions, or the image of a set (``cnn_engine.captions``). Shown like ParaView's Text source."""

    label = "CNN Caption"
    c00_GetLastError = last_error_property("c00_GetLastError", panel_visibility="default")

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=1, inputType="vtkImageData",
                                        outputType="vtkTable")
        self._content = CAPTIONS[0]
        self._level = 0

    @smproperty.intvector(name="Content", default_values=0)
    @smdomain.xml(Domains.Content.xml() + documentation(
        "Level: the name, shown channel and grid of the level chosen by Level; "
        "Predictions: the model, its weights and the top-5 predictions; "
        "Image: for a CNN Image Set, the image of the time step, e.g. "
        "'3/25 cat_1.jpg  true: tabby  top-1: tabby 83%' (its position from 1, file name, true class, "
        "top-1 prediction); for a CNN Perturbation Sweep, the step first: "
        "'blur sigma 2.5  5/9 cat.jpg  top-1: tabby 41%'."))
    def c01_SetContent(self, index):
        self._set_checked("_content", index, Domains.Content)

    @smproperty.intvector(name="Level", default_values=0)
    @smdomain.xml(documentation("The level index (0 is the input picture; -1 the last level)."))
    def c02_SetLevel(self, level):
        self._set("_level", int(level))

    def RequestData(self, request, inInfo, outInfo):
        def work() -> int:
            from cnn_engine.captions import image_caption, level_caption, predictions_caption
            from cnn_engine.vtk_export import metadata_from_vtk, set_fields_from_vtk

            data = vtkImageData.GetData(inInfo[0], 0)
            metadata = metadata_from_vtk(data) or {}
            if self._content == "Level":
                text = level_caption(metadata, self._level)
            elif self._content == "Predictions":
                text = predictions_caption(metadata)
            else:
                fields = set_fields_from_vtk(data) or {}
                text = image_caption(metadata, fields.get("set_size"), fields.get("true_label") or None)
                step = data.GetFieldData().GetAbstractArray("step_label")  # a CNN Perturbation Sweep's step
                if text and step is not None and step.GetNumberOfValues():
                    text = f"{step.GetValue(0)}  {text}"
            column = strings([text])
            column.SetName("Text")
            vtkTable.GetData(outInfo, 0).AddColumn(column)
            return 1

        return self._guarded(work)
