"""CNN NetCDF Writer: ``SaveData("x.nc", proxy=source)`` or File > Save Data writes the engine's netCDF."""

from __future__ import annotations

from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smproperty, smproxy
from vtkmodules.vtkCommonDataModel import vtkImageData

from .base import _Reporting, last_error_property, upstream_error


@smproxy.writer(name="CNNNetCDFWriter", label="CNN NetCDF Writer", extensions=["nc"],
                file_description="CNN activation volume (netCDF)")
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkImageData"], composite_data_supported=False)
class CNNNetCDFWriter(_Reporting, VTKPythonAlgorithmBase):
    """Writes the CNN Activation Volume as the engine's netCDF (atomic; ParaView's NetCDF reader opens it)."""

    label = "CNN NetCDF Writer"
    # Not in the panel: a visible property would make File > Save Data open a configuration dialog.
    GetLastError = last_error_property("GetLastError", panel_visibility="never")

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
                upstream = upstream_error(self)
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
