"""Write the example state files (run from the project folder):

    PV_PLUGIN_PATH=plugin xvfb-run -a pvpython examples/make_states.py

Each holds the overview scene of cnn_paraview.scenes (the input, an early, a middle and the last
level in a row, with captions, a legend and the predictions). The image is stored by relative
path (sample_images/...): the plugin looks such paths up from the project folder too, so
`cnnvis paraview --state examples/<name>.pvsm` opens them from anywhere.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugin"))

from paraview import simple  # noqa: E402

EXAMPLES = {
    # Works offline: the trained EfficientNet-Lite0 weights ship in a pip package.
    "cat_efficientnet_lite0.pvsm": dict(model="efficientnet_lite0", weights="default"),
    # The study's model: needs the ImageNet ResNet-50 weights (downloaded once into the torch cache).
    # Its scene is laid out with the offline model (same 19 levels, same grid), so that this file
    # can be written without those weights; the captions follow the model when it is opened.
    "cat_resnet50.pvsm": dict(model="resnet50", weights="IMAGENET1K_V1"),
}
IMAGE = "sample_images/cat.jpg"

for name, settings in EXAMPLES.items():
    simple.ResetSession()
    if not hasattr(simple, "CNNActivationVolume"):
        simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"))
    from cnn_paraview.scenes import show_volume

    view = simple.CreateView("RenderView")
    view.ViewSize = [1200, 600]
    # A view in a layout, or the GUI shows an empty tab.
    simple.AssignViewToLayout(view=view, layout=simple.CreateLayout("CNN"), hint=0)
    scene = show_volume(IMAGE, "efficientnet_lite0", "default", view=view)
    scene["source"].Model = settings["model"]
    scene["source"].Weights = settings["weights"]
    simple.SaveState(str(ROOT / "examples" / name))
    print("wrote", name)
