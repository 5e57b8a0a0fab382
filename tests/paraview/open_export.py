"""Open an export with ParaView's stock NetCDF reader, default settings; print a JSON report.

Run with pvpython: pvpython open_export.py FILE.nc
"""

import json
import sys

from paraview.simple import NetCDFReader, servermanager

reader = NetCDFReader(FileName=[sys.argv[1]])
reader.UpdatePipeline()
data = servermanager.Fetch(reader)
points = data.GetPointData()
report = {"class": data.GetClassName(), "point_arrays": sorted(points.GetArrayName(i) for i in range(points.GetNumberOfArrays()))}
if data.IsA("vtkImageData"):
    extent = data.GetExtent()
    report["extent"] = list(extent)
    report["spacing"] = list(data.GetSpacing())
    rank0 = points.GetArray("rank0")
    report["rank0_range"] = list(rank0.GetRange())
    top_left = data.ComputePointId([0, extent[3], 5])
    report["rank0_level5_top_left"] = rank0.GetValue(top_left)
    layercam = points.GetArray("layercam")
    if layercam is not None:
        report["layercam_level5_top_left"] = layercam.GetValue(top_left)
print(json.dumps(report))
