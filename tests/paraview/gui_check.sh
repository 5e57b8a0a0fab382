#!/usr/bin/env bash
# The real ParaView GUI under Xvfb, started the two ways a user does:
#   gui_check.sh state        cnnvis paraview --state examples/cat_efficientnet_lite0.pvsm
#                             (plugin auto-loaded from PV_PLUGIN_PATH, set by cnnvis)
#   gui_check.sh load-plugin  plain paraview, no PV_PLUGIN_PATH or PYTHONPATH, loading the plugin
#                             file as Tools > Manage Plugins > Load New does, then a cat volume
# Passes when the GUI's own Python sees the whole pipeline and a screenshot of the whole screen
# (kept in $CNNVIS_ARTIFACTS/gui_<mode>.png) shows a non-blank render in the activation colours.
set -euo pipefail
MODE="${1:?usage: gui_check.sh state|load-plugin}"
ROOT="${CNNVIS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
ARTIFACTS="${CNNVIS_ARTIFACTS:-$ROOT/tests/artifacts}"
mkdir -p "$ARTIFACTS"
unset PV_PLUGIN_PATH  # cnnvis paraview sets it
export CNNVIS_GUI_REPORT="$ARTIFACTS/gui_${MODE}_pipeline.txt"
SHOT="$ARTIFACTS/gui_${MODE}.png"
LOG="$ARTIFACTS/gui_${MODE}.log"
rm -f "$CNNVIS_GUI_REPORT" "$SHOT"

display=99
while [ -e "/tmp/.X${display}-lock" ]; do display=$((display + 1)); done
Xvfb ":$display" -screen 0 1280x1024x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
export DISPLAY=":$display"
cleanup() { kill "${paraview_pid:-}" "$xvfb" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
sleep 1

cd /tmp
case "$MODE" in
  state)
    "$ROOT/.venv/bin/cnnvis" paraview --state "$ROOT/examples/cat_efficientnet_lite0.pvsm" --no-settings >"$LOG" 2>&1 &
    ;;
  load-plugin)
    env -u PYTHONPATH CNNVIS_PLUGIN_FILE="$ROOT/plugin/cnn_activations.py" CNNVIS_IMAGE="$ROOT/sample_images/cat.jpg" \
      paraview --dr --script="$ROOT/tests/paraview/gui_load_plugin.py" >"$LOG" 2>&1 &
    ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac
paraview_pid=$!

for _ in $(seq 1 240); do
  [ -s "$CNNVIS_GUI_REPORT" ] && break
  kill -0 "$paraview_pid" 2>/dev/null || { echo "FAIL: paraview exited early"; tail -30 "$LOG"; exit 1; }
  sleep 0.5
done
[ -s "$CNNVIS_GUI_REPORT" ] || { echo "FAIL: the GUI never ran its report script"; tail -30 "$LOG"; exit 1; }
sleep 3  # let the GUI paint
xwd -root -silent -display "$DISPLAY" > "$SHOT.xwd"
# ImageMagick's own convert (a different 'convert' may come first on PATH).
/usr/bin/convert "$SHOT.xwd" "$SHOT"
rm -f "$SHOT.xwd"

"$ROOT/.venv/bin/python" - "$CNNVIS_GUI_REPORT" "$SHOT" <<'PY'
import sys
import numpy as np
from PIL import Image

report, shot = sys.argv[1], sys.argv[2]
sources = open(report).read().split("\n")
failures = []
for name in ("CNN Activation Volume", "CNN Layer Normalize", "Level Slice"):
    if name not in sources:
        failures.append(f"pipeline lacks {name!r}: {sources}")
pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
# The render view is right of the pipeline browser and below the toolbars: its colours must vary.
render = pixels[170:690, 300:1090]
distinct = len(np.unique(render.reshape(-1, 3), axis=0))
if render.std() < 10 or distinct < 50:
    failures.append(f"render looks blank: std {render.std():.1f}, {distinct} colours")
# The slice uses the Inferno colour map: orange/yellow pixels must be there.
warm = ((render[..., 0] > 150) & (render[..., 2] < 100)).mean()
if warm < 0.01:
    failures.append(f"no activation colours in the render ({warm:.4f} of pixels)")
print(f"pipeline: {', '.join(s for s in sources if s)}; render std {render.std():.1f}, {distinct} colours, warm share {warm:.3f}")
for failure in failures:
    print("FAIL:", failure)
print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
PY
