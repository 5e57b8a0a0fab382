"""ParaView plugin: look inside a CNN. Load it with

    LoadPlugin("plugin/cnn_activations.py", ns=globals())     # pvpython
    Tools > Manage Plugins > Load New...                      # the GUI
    PV_PLUGIN_PATH=<this folder> paraview                     # at start-up

It adds the source "CNN Activation Volume" (Sources > CNN, and a reader of image files for
File > Open), the filters "CNN Layer Normalize" and "CNN Caption" (Filters > CNN) and the writer "CNN NetCDF
Writer" (File > Save Data, *.nc). The code lives in the cnn_paraview package beside this file and
in the cnn_engine package of the project; this file only finds them. Keep its name: state files
and the proxy names depend on it.
"""

import sys
from pathlib import Path

# A copy installed elsewhere (by CMake) has the project folder written here.
PROJECT_ROOT = None

_root = Path(PROJECT_ROOT) if PROJECT_ROOT else Path(__file__).resolve().parent.parent
if str(_root / "plugin") not in sys.path:
    sys.path.insert(0, str(_root / "plugin"))

from cnn_paraview.environment import use_project_environment  # noqa: E402

use_project_environment(_root)

from cnn_paraview.proxies import (  # noqa: E402,F401
    CNNActivationNetCDFReader,
    CNNActivationVolume,
    CNNActivationVolumeReader,
    CNNCaption,
    CNNLayerNormalize,
    CNNNetCDFWriter,
)
from cnn_paraview.scripting import raise_on_failed_writes  # noqa: E402

raise_on_failed_writes()

paraview_plugin_name = "CNNActivations"
paraview_plugin_version = "0.1.0"
