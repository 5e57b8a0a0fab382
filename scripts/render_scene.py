"""pvpython render_scene.py IMAGE PICTURE: the overview scene of IMAGE's volume, saved as PICTURE.

The scene is cnn_paraview.scenes.show_volume with its defaults (resnet50 or, offline, the trained
efficientnet_lite0), rendered at 1200 x 600 pixels. Needs the plugin on PV_PLUGIN_PATH and an X
display (tests/virtual_screen.py), as scripts/screenshots.sh sets up.
"""

import os
import sys

from paraview import simple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "..", "plugin"))
from cnn_paraview.scenes import show_volume  # noqa: E402

view = simple.CreateView("RenderView")
view.ViewSize = [1200, 600]
show_volume(sys.argv[1], view=view)
simple.SaveScreenshot(sys.argv[2], view, ImageResolution=[1200, 600])
sys.stdout.flush()
os._exit(0)  # pvpython 5.11 segfaults in sys.exit once a render view exists
