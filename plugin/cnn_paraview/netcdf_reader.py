"""CNN Activation Volume NetCDF Reader: File > Open of a volume exported by cnnvis (``*.nc``)."""

from __future__ import annotations

from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData
from vtkmodules.vtkCommonExecutionModel import vtkStreamingDemandDrivenPipeline as Pipeline

from .base import SLICE_BY_DEFAULT, _Reporting, last_error_property


# Named to sort first among the readers of *.nc: ParaView 5.11's reader dialog pre-selects the
# first matching reader by name (else "NetCDF CAM reader", which gives no image data).
@smproxy.reader(name="CNNActivationNetCDFReader", label="CNN Activation Volume NetCDF Reader",
                extensions=["nc"], file_description="CNN activation volume (netCDF)")
@smhint.xml(SLICE_BY_DEFAULT)
class CNNActivationNetCDFReader(_Reporting, VTKPythonAlgorithmBase):
    """File > Open of a volume exported by cnnvis: image data with every array and all metadata.

    Only files written by cnn_engine match (CanReadFile); other netCDF files go to ParaView's
    own readers.
    """

    label = "CNN Activation Volume NetCDF Reader"
    a00_GetLastError = last_error_property("a00_GetLastError", panel_visibility="default")

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
