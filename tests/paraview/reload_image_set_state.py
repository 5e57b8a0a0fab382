"""pvpython reload_image_set_state.py STATE PREFIX: load an image set state, step through its time
steps, save a picture of each under PREFIX.

Prints a JSON summary as its last line: the source names, the time steps, and per step the
Image caption's text, the volume's rank0 range and the picture's spread of pixel values.
"""

import json
import sys
from pathlib import Path

import numpy as np


def step_summary(source, caption, view, picture: str) -> dict:
    from paraview import servermanager, simple
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOImage import vtkPNGReader

    volume = servermanager.Fetch(source)
    rank0 = vtk_to_numpy(volume.GetPointData().GetArray("rank0")) if volume.GetNumberOfPoints() else np.zeros(0)
    simple.Render(view)
    simple.SaveScreenshot(picture, view, ImageResolution=[960, 480])
    reader = vtkPNGReader()
    reader.SetFileName(picture)
    reader.Update()
    pixels = vtk_to_numpy(reader.GetOutput().GetPointData().GetScalars())
    return {"caption": servermanager.Fetch(caption).GetColumn(0).GetValue(0),
            "rank0": [float(np.nanmin(rank0)), float(np.nanmax(rank0))] if rank0.size else None,
            "picture_std": float(pixels.std())}


if __name__ == "__main__":
    from paraview import simple

    state, prefix = Path(sys.argv[1]), Path(sys.argv[2])
    simple.LoadState(str(state))
    simple._DisableFirstRenderCameraReset()  # the state holds its camera
    # Without the plugin, LoadState only logs "Could not create a proxy": check they exist.
    names = ("CNN Image Set", "CNN Layer Normalize", "Middle Level", "Image")
    for name in names:
        assert simple.FindSource(name) is not None, f"{name} missing after loading {state}"
    source, caption = simple.FindSource("CNN Image Set"), simple.FindSource("Image")
    view = simple.GetViews()[0]
    simple.SetActiveView(view)
    scene = simple.GetAnimationScene()
    times = list(scene.TimeKeeper.TimestepValues)
    steps = []
    for time in times:
        scene.AnimationTime = time
        steps.append(step_summary(source, caption, view, f"{prefix}_{int(time)}.png"))
    sources = sorted(name for (name, _), _ in simple.GetSources().items())
    print(json.dumps({"sources": sources, "times": times, "steps": steps}))
    sys.stdout.flush()
    import os

    os._exit(0)
