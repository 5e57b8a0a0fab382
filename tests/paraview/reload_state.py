"""pvpython reload_state.py STATE PREFIX: load a state, save arrays and the picture under PREFIX.

Prints a JSON summary (source names) as its last line. Also imported by pv_test_state.py for
``capture``, which records the current session the same way.
"""

import json
import sys
from pathlib import Path

import numpy as np


def _array(proxy, name):
    from paraview import servermanager
    from vtkmodules.util.numpy_support import vtk_to_numpy

    data = servermanager.Fetch(proxy)
    return vtk_to_numpy(data.GetPointData().GetArray(name)).copy()


def capture(prefix: Path) -> dict:
    from paraview import simple
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOImage import vtkPNGReader

    sources = {name: proxy for (name, _), proxy in simple.GetSources().items()}
    np.save(f"{prefix}_source_rank0.npy", _array(sources["CNN Activation Volume"], "rank0"))
    np.save(f"{prefix}_normalize_activation.npy", _array(sources["CNN Layer Normalize"], "activation"))
    np.save(f"{prefix}_panel_activation.npy", _array(sources["Middle Level"], "activation"))
    view = simple.GetActiveViewOrCreate("RenderView")
    simple.Render(view)
    png = f"{prefix}_picture.png"
    simple.SaveScreenshot(png, view, ImageResolution=[640, 480])
    reader = vtkPNGReader()
    reader.SetFileName(png)
    reader.Update()
    image = reader.GetOutput()
    np.save(f"{prefix}_picture.npy", vtk_to_numpy(image.GetPointData().GetScalars()).copy())
    return {"sources": sorted(sources)}


if __name__ == "__main__":
    from paraview import simple

    state, prefix = Path(sys.argv[1]), Path(sys.argv[2])
    simple.LoadState(str(state))
    # The state holds its camera; paraview.simple would reset it on the first Render of the process.
    simple._DisableFirstRenderCameraReset()
    # Without the plugin, LoadState only logs "Could not create a proxy": check they exist.
    for name in ("CNN Activation Volume", "CNN Layer Normalize", "Middle Level"):
        assert simple.FindSource(name) is not None, f"{name} missing after loading {state}"
    views = simple.GetViews()
    if views:
        simple.SetActiveView(views[0])
    print(json.dumps(capture(prefix)))
