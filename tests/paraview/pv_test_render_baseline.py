"""The overview scene of the cat's volume, rendered with SaveScreenshot, matches the stored baseline.

The baseline (tests/paraview/baselines/cat_lite0_scene.png) was rendered here with llvmpipe
on a virtual screen. Set CNNVIS_UPDATE_BASELINES=1 to rewrite it after an intended change of the picture.
"""

import os
import shutil
import sys

import numpy as np
from paraview import simple
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkIOImage import vtkPNGReader

import pvcheck

pvcheck.load_plugin(globals())
sys.path.insert(0, str(pvcheck.ROOT / "plugin"))
from cnn_paraview.scenes import show_volume  # noqa: E402

BASELINE = pvcheck.ROOT / "tests" / "paraview" / "baselines" / "cat_lite0_scene.png"
# Mean absolute difference per channel (0-255) allowed, and share of pixels allowed to differ by more than 64.
MEAN_TOLERANCE = 2.0
OUTLIER_SHARE = 0.01


def read_png(path):
    reader = vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    width, height, _ = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)[..., :3].astype(int)


def test_scene_matches_the_baseline():
    view = simple.CreateView("RenderView")
    view.ViewSize = [1200, 600]
    show_volume(str(pvcheck.SAMPLES / "cat.jpg"), model="efficientnet_lite0", weights="default", view=view)
    pvcheck.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rendered = pvcheck.ARTIFACTS / "cat_lite0_scene.png"
    simple.SaveScreenshot(str(rendered), view, ImageResolution=[1200, 600])
    if os.environ.get("CNNVIS_UPDATE_BASELINES") == "1":
        BASELINE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rendered, BASELINE)
    assert BASELINE.exists(), f"no baseline: render one with CNNVIS_UPDATE_BASELINES=1 (picture in {rendered})"
    new, old = read_png(rendered), read_png(BASELINE)
    assert new.shape == old.shape, (new.shape, old.shape)
    difference = np.abs(new - old)
    mean, outliers = difference.mean(), (difference.max(axis=2) > 64).mean()
    print(f"mean difference {mean:.3f}, outlier share {outliers:.4f}")
    assert mean <= MEAN_TOLERANCE and outliers <= OUTLIER_SHARE, (mean, outliers)
    assert new.std() > 10, "blank render"


pvcheck.run(globals())
