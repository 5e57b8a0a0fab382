"""Write the example state files (run from the project folder):

    PV_PLUGIN_PATH=plugin python3 tests/virtual_screen.py pvpython examples/make_states.py [NAME.pvsm ...]

(all of them, or only those named).

Each holds the overview scene of cnn_paraview.scenes (the input, an early, a middle and the last
level in a row, with captions, a legend and the predictions). The image is stored by relative
path (sample_images/...): the plugin looks such paths up from the project folder too, so
`cnnvis paraview --state examples/<name>.pvsm` opens them from anywhere.

image_set_efficientnet_lite0.pvsm holds the same row for a CNN Image Set over the list file
examples/sample_set.csv (five sample photographs with their ImageNet classes, written here too):
one image per time step, channels chosen and levels scaled over the whole set, and a caption
naming the image, its true class and the top-1 prediction.

channel_statistics.pvsm holds the channel study of the same five photographs
(cnn_paraview.scenes.show_channel_statistics): a CNN Channel Statistics (the table of every
level and channel in a spreadsheet, the chosen channel's class means as a bar chart, the level's
exemplar atlas) and a CNN Image Set showing the chosen channel at every time step, through a
property link from the statistics' Chosen Channel to the set's Explicit Channels (saved in the
state: change Level or Channel, Apply, and the set follows).

perturbation_sweep.pvsm holds a blur sweep of the cat photograph (cnn_paraview.scenes.show_sweep,
offline model): one severity per time step (the Time widget reads "blur sigma"), the overview row
of the volume at the step with a caption naming it, and below the probability of the clean class
and of tabby against sigma, the drift of every level against sigma, and the drift as a level x
step picture.
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
# The image set: five sample photographs, one ImageNet class each (paths relative to the list file).
SAMPLE_SET = "examples/sample_set.csv"
SAMPLE_SET_LINES = [
    "path,label",
    "../sample_images/cat.jpg,tabby",
    "../sample_images/coffee.jpg,espresso",
    "../sample_images/rocket.jpg,missile",
    "../sample_images/camera.png,tripod",
    "../sample_images/grace_hopper.jpg,military_uniform",
]

WANTED = set(sys.argv[1:])


# The room for views in ParaView 5.11's main window at its first-start size (1152 x 762; measured
# as the render view's ViewSize). The states are framed for it: `cnnvis paraview --state` and
# File > Load State keep a state's cameras, and a parallel camera keeps its height when the
# window grows, so larger windows show the same framing with more room at the sides.
GUI_VIEW_SIZE = (844, 527)
VIEW_TOOLBAR_PX = 28  # in a layout of several views each view has a toolbar of its own above it


def new_view():
    """A render view of the GUI's size, in a layout (without one the GUI shows an empty tab)."""
    view = simple.CreateView("RenderView")
    view.ViewSize = list(GUI_VIEW_SIZE)
    simple.AssignViewToLayout(view=view, layout=simple.CreateLayout("CNN"), hint=0)
    return view

for name, settings in EXAMPLES.items():
    if WANTED and name not in WANTED:
        continue
    simple.ResetSession()
    if not hasattr(simple, "CNNActivationVolume"):
        simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"))
    from cnn_paraview.scenes import show_volume

    view = new_view()
    scene = show_volume(IMAGE, "efficientnet_lite0", "default", view=view)
    scene["source"].Model = settings["model"]
    scene["source"].Weights = settings["weights"]
    simple.SaveState(str(ROOT / "examples" / name))
    print("wrote", name)

SET_STATE = "image_set_efficientnet_lite0.pvsm"
if not WANTED or SET_STATE in WANTED:
    (ROOT / SAMPLE_SET).write_text("\n".join(SAMPLE_SET_LINES) + "\n")
    simple.ResetSession()
    if not hasattr(simple, "CNNImageSet"):
        simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"))
    from cnn_paraview.scenes import show_image_set

    view = new_view()
    # Channel Choice and Normalization keep the source's defaults, Set: one choice and one scale
    # for the whole set. center-crop gives every image the same 224 x 224 grid (no empty margins).
    show_image_set(SAMPLE_SET, "efficientnet_lite0", "default", view=view, Fit="center-crop")
    simple.SaveState(str(ROOT / "examples" / SET_STATE))
    print("wrote", SET_STATE)

STUDY_STATE = "channel_statistics.pvsm"
if not WANTED or STUDY_STATE in WANTED:
    (ROOT / SAMPLE_SET).write_text("\n".join(SAMPLE_SET_LINES) + "\n")
    simple.ResetSession()
    if not hasattr(simple, "CNNChannelStatistics"):
        simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"))
    from cnn_paraview.scenes import show_channel_statistics

    layout = simple.CreateLayout("CNN Channel Statistics")
    # A middle level (level 9, _blocks.7: parts of objects, and exemplar tiles that show them) and its most
    # selective channel among the five classes; center-crop gives every image one 224 x 224 grid.
    show_channel_statistics(SAMPLE_SET, "efficientnet_lite0", "default", level=9, layout=layout, Fit="center-crop")
    simple.SaveState(str(ROOT / "examples" / STUDY_STATE))
    print("wrote", STUDY_STATE)

SWEEP_STATE = "perturbation_sweep.pvsm"
if not WANTED or SWEEP_STATE in WANTED:
    simple.ResetSession()
    if not hasattr(simple, "CNNPerturbationSweep"):
        simple.LoadPlugin(str(ROOT / "plugin" / "cnn_activations.py"))
    from cnn_paraview.scenes import SWEEP_TOP, show_sweep

    layout = simple.CreateLayout("CNN Perturbation Sweep")
    # Blur's default severities (Steps 0: sigma 0 to 8 input pixels, the clean image first).
    overview_px = (GUI_VIEW_SIZE[0], round(GUI_VIEW_SIZE[1] * SWEEP_TOP) - VIEW_TOOLBAR_PX)
    show_sweep(IMAGE, "blur", "efficientnet_lite0", "default", layout=layout, overview_px=overview_px,
               TargetClass="tabby")
    simple.SaveState(str(ROOT / "examples" / SWEEP_STATE))
    print("wrote", SWEEP_STATE)
