"""Run inside a plain ParaView GUI (--script) by gui_check.sh load-plugin.

Loads the plugin file with the same call as Tools > Manage Plugins > Load New (the plugin
manager's LoadLocalPlugin, through paraview.simple so that its functions appear), then shows a volume of CNNVIS_IMAGE and writes the pipeline's source
names to CNNVIS_GUI_REPORT.
"""

import os
import sys

from paraview import simple

simple.LoadPlugin(os.environ["CNNVIS_PLUGIN_FILE"], remote=False)

from cnn_paraview.scenes import show_volume  # noqa: E402  (the plugin put it on sys.path)

show_volume(os.environ["CNNVIS_IMAGE"])  # the defaults, as a user starts
with open(os.environ["CNNVIS_GUI_REPORT"], "w") as report:
    report.write("\n".join(sorted(name for (name, _) in simple.GetSources())) + "\n")
sys.stdout.flush()
