#!/usr/bin/env bash
# Remake the README's pictures (run after scripts/setup.sh; takes about a minute, offline):
#   docs/screenshots/gui_cat.png     the ParaView window as `cnnvis paraview sample_images/cat.jpg`
#                                    opens it (the GUI test's own start and screenshot)
#   docs/screenshots/scene_coffee.png  the same scene for the coffee photograph, rendered by pvpython
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
OUT="$ROOT/docs/screenshots"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
CNNVIS_ARTIFACTS="$WORK" CNNVIS_GUI_RUNS=1 python3 tests/virtual_screen.py bash tests/paraview/gui_check.sh image
# The screen is larger than ParaView's window: keep the window.
/usr/bin/convert "$WORK/gui_image_first-start.png" -trim +repage "$OUT/gui_cat.png"
PV_PLUGIN_PATH="$ROOT/plugin" python3 tests/virtual_screen.py pvpython "$ROOT/scripts/render_scene.py" \
  "$ROOT/sample_images/coffee.jpg" "$OUT/scene_coffee.png"
echo "wrote $OUT/gui_cat.png and $OUT/scene_coffee.png"
