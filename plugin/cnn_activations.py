"""ParaView plugin: look inside a CNN. Load it with

    LoadPlugin("plugin/cnn_activations.py", ns=globals())     # pvpython
    Tools > Manage Plugins > Load New...                      # the GUI
    PV_PLUGIN_PATH=<this folder> paraview                     # at start-up

It adds the sources "CNN Activation Volume" (Sources > CNN, and a reader of image files for
File > Open), "CNN Image Set" (a set of images as time steps), "CNN Channel Statistics"
(which channel responds to which class or feature) and "CNN Perturbation Sweep" (one image
perturbed step by step, the severities as time steps), the filters "CNN Layer
Normalize" and "CNN Caption" (Filters > CNN), the reader "CNN Activation Volume NetCDF Reader"
(File > Open, *.nc) and the writer "CNN NetCDF Writer" (File > Save Data, *.nc). The code lives in
the cnn_paraview package beside this file (one module per proxy) and in the cnn_engine package of
the project; this file only finds them. Keep its name: state files and the proxy names depend on it.
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

# ParaView registers the proxy classes found in this module's namespace.
from cnn_paraview.caption import CNNCaption  # noqa: E402,F401
from cnn_paraview.image_set_source import CNNImageSet  # noqa: E402,F401
from cnn_paraview.netcdf_reader import CNNActivationNetCDFReader  # noqa: E402,F401
from cnn_paraview.normalize_filter import CNNLayerNormalize  # noqa: E402,F401
from cnn_paraview.statistics_source import CNNChannelStatistics  # noqa: E402,F401
from cnn_paraview.sweep_source import CNNPerturbationSweep  # noqa: E402,F401
from cnn_paraview.volume_source import CNNActivationVolume, CNNActivationVolumeReader  # noqa: E402,F401
from cnn_paraview.writer import CNNNetCDFWriter  # noqa: E402,F401
from cnn_paraview.scripting import raise_on_failed_writes  # noqa: E402

raise_on_failed_writes()

paraview_plugin_name = "CNNActivations"
paraview_plugin_version = "0.1.0"
