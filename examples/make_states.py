"""Write the example state files (run from the project folder):

    PV_PLUGIN_PATH=plugin xvfb-run -a pvpython examples/make_states.py

The image is stored by relative path (sample_images/...): open the states from the project
folder, which `cnnvis paraview --state examples/<name>.pvsm` does for you.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugin"))

from paraview import simple  # noqa: E402

if not hasattr(simple, "CNNActivationVolume"):
    simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"), ns=globals())

from cnn_paraview.scenes import show_volume  # noqa: E402

EXAMPLES = {
    # Works offline: the trained EfficientNet-Lite0 weights ship in a pip package.
    "cat_efficientnet_lite0.pvsm": dict(image="sample_images/cat.jpg", model="efficientnet_lite0", weights="default"),
    # The study's model: needs the ImageNet ResNet-50 weights (downloaded once into the torch cache).
    "cat_resnet50.pvsm": dict(image="sample_images/cat.jpg", model="resnet50", weights="IMAGENET1K_V1"),
}

for name, settings in EXAMPLES.items():
    simple.ResetSession()
    if not hasattr(simple, "CNNActivationVolume"):
        simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"), ns=globals())
    view = simple.CreateView("RenderView")
    view.ViewSize = [800, 600]
    # A view in a layout, or the GUI shows an empty tab.
    simple.AssignViewToLayout(view=view, layout=simple.CreateLayout("CNN"), hint=0)
    show_volume(settings["image"], settings["model"], settings["weights"], level=4, view=view)
    simple.SaveState(str(ROOT / "examples" / name))
    print("wrote", name)
