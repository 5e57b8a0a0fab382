"""Run by ``cnnvis paraview IMAGE`` inside the ParaView GUI (--script): shows the image's volume.

Reads CNNVIS_IMAGE, CNNVIS_MODEL and CNNVIS_WEIGHTS from the environment.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnn_paraview.scenes import show_volume  # noqa: E402

show_volume(os.environ["CNNVIS_IMAGE"], model=os.environ.get("CNNVIS_MODEL", "resnet50"),
            weights=os.environ.get("CNNVIS_WEIGHTS", "default"))
