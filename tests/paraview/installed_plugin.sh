#!/usr/bin/env bash
# cmake --install puts the plugin in its own folder; plain pvpython (no PV_PLUGIN_PATH, started
# from elsewhere) loads that copy by path and computes a volume with the project's engine.
set -euo pipefail
BUILD="${1:?usage: installed_plugin.sh BUILD_DIR}"
ROOT="${CNNVIS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
PREFIX="$(mktemp -d)"
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
PLUGIN="$(find "$PREFIX" -name cnn_activations.py)"
[ -n "$PLUGIN" ] || { echo "FAIL: nothing installed under $PREFIX"; exit 1; }
echo "installed: ${PLUGIN#$PREFIX/}"
cd /
env -u PV_PLUGIN_PATH -u PYTHONPATH pvpython - "$PLUGIN" "$ROOT/sample_images/cat.jpg" <<'PY'
import os
import sys

from paraview import simple

simple.LoadPlugin(sys.argv[1], remote=False, ns=globals())
source = CNNActivationVolume(FileName=sys.argv[2], Weights="random", TopK=1)
source.UpdatePipeline()
points = source.GetDataInformation(0).GetNumberOfPoints()
ok = points == 337 * 224 * 19
print(f"{'PASS' if ok else 'FAIL'}: installed plugin gave {points} points")
print(f"{int(ok)} passed, {int(not ok)} failed")
sys.stdout.flush()
os._exit(0 if ok else 1)
PY
