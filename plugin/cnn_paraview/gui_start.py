"""Run inside the ParaView GUI by ``cnnvis paraview`` (as --script): open a state or an image.

Environment: CNNVIS_STATE (a .pvsm to load), or CNNVIS_IMAGE with CNNVIS_MODEL and
CNNVIS_WEIGHTS (an image to show as a volume with a slice). CNNVIS_GUI_REPORT, when set, names
a file that receives the pipeline's source names once everything is shown (used by the GUI test).
"""

import os

from paraview import simple

# The plugin, loaded from PV_PLUGIN_PATH before this script runs, has put cnn_paraview on sys.path
# (a --script has no __file__ to find it by).

if os.environ.get("CNNVIS_STATE"):
    simple.LoadState(os.environ["CNNVIS_STATE"])
elif os.environ.get("CNNVIS_IMAGE"):
    from cnn_paraview.scenes import show_volume

    show_volume(os.environ["CNNVIS_IMAGE"], model=os.environ.get("CNNVIS_MODEL", "resnet50"),
                weights=os.environ.get("CNNVIS_WEIGHTS", "default"))
simple.Render()

if os.environ.get("CNNVIS_GUI_REPORT"):
    with open(os.environ["CNNVIS_GUI_REPORT"], "w") as report:
        report.write("\n".join(sorted(name for (name, _) in simple.GetSources())) + "\n")
