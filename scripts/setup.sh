#!/usr/bin/env bash
# Set up everything cnnvis needs on Debian 12, idempotently (a second run takes seconds):
#   Debian's ParaView 5.11 and its Python, Xvfb for rendering tests, and a virtual environment
#   over Debian's /usr/bin/python3 with system site packages, so that one interpreter holds
#   ParaView and torch, with this project installed from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(paraview python3-paraview python3-venv python3-dev xvfb xauth x11-apps imagemagick)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ParaView's compiled modules belong to Debian's Python: name that interpreter explicitly.
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv over /usr/bin/python3 (with system site packages, for ParaView)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.cnnvis-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "setup: installing the project and its Python dependencies into .venv (torch is large: minutes the first time)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
  echo "$wanted" > "$stamp"
fi

.venv/bin/python - <<'PY'
import paraview, torch, torchvision, numpy, cnn_engine
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: ParaView's matplotlib needs numpy 1.x"
print(f"setup: ready (ParaView {paraview.__version__ if hasattr(paraview, '__version__') else '5.11'}, "
      f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {numpy.__version__}, "
      f"cnn_engine {cnn_engine.__version__})")
PY
