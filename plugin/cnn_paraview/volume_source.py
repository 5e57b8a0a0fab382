"""CNN Activation Volume: one image through a CNN, its layer outputs stacked into a volume.

``CNNActivationVolume`` (Sources > CNN) and ``CNNActivationVolumeReader`` (the same algorithm
registered as a reader of image files, for File > Open). Output port 0 is the activation volume
as ``vtkImageData`` (see ``cnn_engine.volume`` for layout and orientation), port 1 the top-5
predictions as a ``vtkTable``, port 2 the class evidence map (2-D image data on the same X/Y,
empty unless Evidence is set). The session (``cnn_engine.session``) keeps the model and the last
volume, so a filter or level spacing change never re-runs the network.
"""

from __future__ import annotations

from pathlib import Path

from cnn_engine.images import IMAGE_EXTENSIONS
from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData, vtkTable

from .base import SLICE_BY_DEFAULT, declare_grid, inherit_properties, last_error_property, resolve_path
from .model_properties import _ModelProperties, model_settings
from .xml import documentation


class _ActivationVolumeBase(_ModelProperties, VTKPythonAlgorithmBase):
    label = "CNN Activation Volume"

    def __init__(self) -> None:
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=0, nOutputPorts=3, outputType="vtkImageData")
        self._start_session()
        self._settings = {"image": "", **model_settings()}

    @property
    def forward_passes(self) -> int:
        """How often the network ran (a script or test can check that nothing re-ran)."""
        return self.session.forward_passes if self.session is not None else 0

    # Shown in the panel: it explains an empty output.
    a00_GetLastError = last_error_property("a00_GetLastError", panel_visibility="default")

    def FillOutputPortInformation(self, port, info):
        info.Set(vtkDataObject.DATA_TYPE_NAME(), "vtkTable" if port == 1 else "vtkImageData")
        return 1

    @smproperty.stringvector(name="FileName", default_values="")
    @smdomain.filelist()
    @smhint.filechooser(extensions=list(IMAGE_EXTENSIONS), file_description="Images")
    @smdomain.xml(documentation(
        "The image to run the network on (png, jpg, bmp, tif, gif, webp). A relative path is looked up "
        "from the current folder, then from the cnnvis project folder (for the example state files)."))
    def a01_SetFileName(self, name):
        self._set("image", name or "")

    def _request(self):
        if not self._settings["image"]:
            from cnn_engine import ImageError

            raise ImageError("no image chosen: set File Name")
        return self._model_request(resolve_path(self._settings["image"]))

    def RequestInformation(self, request, inInfo, outInfo):
        # Downstream filters (Slice) need the grid before any data exists: the session knows it
        # from the image size and the layer set, without weights and without running the network.
        # Errors stay quiet here: paraview.simple sets File Name before the other properties, so
        # this also runs on half-set sources; RequestData reports what is really wrong, once.
        # Without a grid the image ports say "empty" (an old extent would lie about the data
        # RequestData fails to make); the table on port 1 has no extent.
        declare_grid(outInfo, self._grid(), self._settings["evidence"] != "None")
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


@smproxy.source(name="CNNActivationVolume", label="CNN Activation Volume")
@smhint.xml('<ShowInMenu category="CNN"/>' + SLICE_BY_DEFAULT)
@smproperty.xml(documentation("Runs a CNN on an image and stacks its layer outputs into a volume."))
@inherit_properties
class CNNActivationVolume(_ActivationVolumeBase):
    """Sources > CNN > CNN Activation Volume."""


# A proxy with a reader hint is left out of the Sources menu, so the reader is a second proxy.
@smproxy.reader(name="CNNActivationVolumeReader", label="CNN Activation Volume Reader",
                extensions=list(IMAGE_EXTENSIONS), file_description="CNN Activation Volume")
@smhint.xml(SLICE_BY_DEFAULT)
@inherit_properties
class CNNActivationVolumeReader(_ActivationVolumeBase):
    """File > Open on an image: the same algorithm as CNNActivationVolume."""
