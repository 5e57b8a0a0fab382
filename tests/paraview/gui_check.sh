#!/usr/bin/env bash
# The real ParaView GUI on a virtual screen (tests/virtual_screen.py), started exactly as the README tells users to (never --dr):
#   gui_check.sh image        cnnvis paraview sample_images/cat.jpg
#   gui_check.sh state        cnnvis paraview --state examples/cat_efficientnet_lite0.pvsm
#   gui_check.sh load-plugin  plain paraview, no PV_PLUGIN_PATH or PYTHONPATH, loading the plugin
#                             file as Tools > Manage Plugins > Load New does, then the cat's scene
# Each mode starts twice with the same HOME: first fresh (no ParaView settings at all), then with
# the settings the first run left behind. Every run passes only when
#   - no window but ParaView's main window is on screen (no Welcome dialog, no Output Messages
#     window with an error, no other dialog), listed with xwininfo;
#   - a screenshot of the whole screen taken with `import -window root` (which, unlike xwd,
#     includes dialog windows) shows the scene: the view's background, the activation colours and
#     the picture's own colours;
#   - the GUI's own Python saw the whole pipeline (CNNVIS_GUI_REPORT).
# Screenshots and logs are kept in $CNNVIS_ARTIFACTS/gui_<mode>_<run>.png/.log.
set -euo pipefail
MODE="${1:?usage: gui_check.sh image|state|load-plugin}"
ROOT="${CNNVIS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
ARTIFACTS="${CNNVIS_ARTIFACTS:-$ROOT/tests/artifacts}"
mkdir -p "$ARTIFACTS"
unset PV_PLUGIN_PATH  # cnnvis paraview sets it
export TORCH_HOME="${TORCH_HOME:-$(mktemp -d)}"  # as in CI: no ImageNet weights, no internet

: "${DISPLAY:?run me on a screen of my own: python3 tests/virtual_screen.py bash $0 $MODE}"
USER_HOME="$(mktemp -d)"
cleanup() {
  [ -n "${paraview_pid:-}" ] && kill "$paraview_pid" 2>/dev/null || true
  pkill -P "${paraview_pid:-0}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$USER_HOME"
}
trap cleanup EXIT

if [ "$MODE" = load-plugin ]; then
  # Plain ParaView opens its own Welcome dialog until the user ticks "Don't show this window
  # again"; the plugin cannot change that. This user has ticked it.
  mkdir -p "$USER_HOME/.config/ParaView"
  printf '[General]\nGeneralSettings.ShowWelcomeDialog=false\n' > "$USER_HOME/.config/ParaView/ParaView5.11.0.ini"
fi

failures=0
RUNS=(first-start settings-left-behind)
[ "${CNNVIS_GUI_RUNS:-2}" = 1 ] && RUNS=(first-start)  # scripts/screenshots.sh needs one
for run in "${RUNS[@]}"; do
  report="$ARTIFACTS/gui_${MODE}_${run}_pipeline.txt"
  shot="$ARTIFACTS/gui_${MODE}_${run}.png"
  log="$ARTIFACTS/gui_${MODE}_${run}.log"
  rm -f "$report" "$shot"
  cd /tmp
  case "$MODE" in
    image)
      HOME="$USER_HOME" CNNVIS_GUI_REPORT="$report" "$ROOT/.venv/bin/cnnvis" paraview "$ROOT/sample_images/cat.jpg" >"$log" 2>&1 &
      ;;
    state)
      HOME="$USER_HOME" CNNVIS_GUI_REPORT="$report" "$ROOT/.venv/bin/cnnvis" paraview --state "$ROOT/examples/cat_efficientnet_lite0.pvsm" >"$log" 2>&1 &
      ;;
    load-plugin)
      env -u PYTHONPATH HOME="$USER_HOME" CNNVIS_GUI_REPORT="$report" CNNVIS_PLUGIN_FILE="$ROOT/plugin/cnn_activations.py" \
        CNNVIS_IMAGE="$ROOT/sample_images/cat.jpg" paraview --script="$ROOT/tests/paraview/gui_load_plugin.py" >"$log" 2>&1 &
      ;;
    *) echo "unknown mode $MODE"; exit 2 ;;
  esac
  paraview_pid=$!

  for _ in $(seq 1 240); do
    [ -s "$report" ] && break
    kill -0 "$paraview_pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ ! -s "$report" ]; then
    echo "FAIL ($run): the GUI never showed the scene"; tail -30 "$log"; failures=$((failures + 1))
    kill "$paraview_pid" 2>/dev/null || true; wait "$paraview_pid" 2>/dev/null || true
    continue
  fi
  sleep 3  # the Welcome dialog would come up a second after the window: give it time to show
  import -window root -display "$DISPLAY" "$shot"
  viewable=""
  while read -r id; do
    [ -n "$id" ] || continue
    if xwininfo -id "$id" -display "$DISPLAY" | grep -q "Map State: IsViewable"; then
      viewable+="$(xwininfo -id "$id" -display "$DISPLAY" | sed -n 's/^xwininfo: Window id: [^ ]* "\(.*\)"$/\1/p')"$'\n'
    fi
  done < <(xwininfo -root -children -display "$DISPLAY" | awk '/^ +0x/ {print $1}')

  # Quit the way a user does: ParaView then writes its settings, which the next run starts from.
  kill -TERM "$paraview_pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$paraview_pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$paraview_pid" 2>/dev/null || true
  wait "$paraview_pid" 2>/dev/null || true

  if ! "$ROOT/.venv/bin/python" "$ROOT/tests/paraview/gui_screen.py" "$report" "$shot" "$viewable" "$run"; then
    failures=$((failures + 1))
  fi
done
echo "$((${#RUNS[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
