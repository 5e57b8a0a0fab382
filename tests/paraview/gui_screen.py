"""Judge one GUI screenshot for gui_check.sh: argv = report, screenshot, viewable window names, run.

Passes when the GUI's Python saw the scene's pipeline, ParaView's main window is the only window
on screen, and the screenshot shows the overview scene: the render view's background, the
activation colours (Inferno: orange and yellow) and the picture's own colours (the cat's fur).
Prints one line per failure and exits 1 if there is any.
"""

import sys

import numpy as np
from PIL import Image

# ParaView 5.11's default render view background, (0.32, 0.34, 0.43).
BACKGROUND = np.array([82, 87, 110])
EXPECTED_SOURCES = {"CNN Activation Volume", "CNN Layer Normalize", "Input Picture", "Early Level", "Middle Level",
                    "Last Level", "Predictions"}

report, shot, viewable, run = sys.argv[1:5]
failures = []
sources = set(open(report).read().split("\n")) - {""}
if not EXPECTED_SOURCES <= sources:
    failures.append(f"the pipeline lacks {sorted(EXPECTED_SOURCES - sources)}: {sorted(sources)}")
windows = [name for name in viewable.split("\n") if name]
others = [name for name in windows if not name.startswith("ParaView")]
if others:
    failures.append(f"other windows are on screen (a dialog, or Output Messages with an error): {others}")

pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
background = (np.abs(pixels - BACKGROUND).max(axis=2) <= 3).mean()
if background < 0.05:
    failures.append(f"no render view on screen ({background:.3f} of the screen has its background colour)")
warm = ((pixels[..., 0] > 200) & (pixels[..., 1] > 120) & (pixels[..., 2] < 90)).mean()
if warm < 0.002:
    failures.append(f"no activation colours on screen ({warm:.4f} of pixels)")
# The input picture: the cat's brownish fur, red over green over blue, not in the Inferno map.
fur = ((pixels[..., 0] > 110) & (pixels[..., 0] < 200) & (pixels[..., 0] - pixels[..., 2] > 30)
       & (pixels[..., 1] - pixels[..., 2] > 15) & (pixels[..., 0] - pixels[..., 1] < 45)).mean()
if fur < 0.003:
    failures.append(f"the input picture is not on screen ({fur:.4f} of pixels look like the cat)")
print(f"{run}: windows {windows}; background {background:.3f}, activation colours {warm:.4f}, picture {fur:.4f}")
for failure in failures:
    print(f"FAIL ({run}): {failure}")
sys.exit(1 if failures else 0)
