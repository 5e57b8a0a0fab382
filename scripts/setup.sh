#!/usr/bin/env bash
# Set up everything cnnvis needs on Debian 12, idempotently (a second run takes seconds):
#   Debian's ParaView 5.11 and its Python, Xvfb for rendering tests, and a virtual environment
#   over Debian's /usr/bin/python3 with system site packages, so that one interpreter holds
#   ParaView and torch, with this project installed from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  paraview python3-paraview python3-venv python3-dev
  xvfb xauth x11-apps x11-utils imagemagick  # rendering and GUI tests under a virtual screen (xwininfo)
  netcdf-bin                                 # ncdump: the exports' test reads them as any user would
  openmpi-bin python3-mpi4py                 # mpiexec and mpi4py: the statistics on ParaView's MPI engine
  e2fsprogs                                  # chattr: the hostile-output tests make immutable files
  cmake paraview-dev                         # CMakeLists.txt: find_package(ParaView), CTest
  fonts-dejavu-core                          # DejaVu Sans for the text of cnnvis explain pictures
  # find_package(ParaView) from paraview-dev also needs these (see PLATFORM_NOTES)
  qtbase5-dev qttools5-dev libqt5svg5-dev libqt5x11extras5-dev qtxmlpatterns5-dev-tools libutfcpp-dev
  libhdf5-openmpi-dev libnetcdf-dev libgdal-dev libopenmpi-dev libcgns-dev libprotobuf-dev protobuf-compiler
  libeigen3-dev libglew-dev libgl2ps-dev libpugixml-dev libjsoncpp-dev libdouble-conversion-dev libtheora-dev
  libavcodec-dev libavformat-dev libswscale-dev
)
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
  # The peers extra (benchmarks/bench_peers.py only) goes in as pinned, without dependency
  # resolution: see pyproject.toml.
  mapfile -t peers < <(.venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["peers"]))')
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "${peers[@]}"
  echo "$wanted" > "$stamp"
fi

# The Python 3.11 fix for Debian's ParaView 5.11 Python plugins, where Debian's Python (and so
# ParaView, started any way) imports it at start-up: a .pth line in its site-packages.
site_dir="$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')"
if ! cmp -s plugin/shim/cnnvis_paraview_shim.py "$site_dir/cnnvis_paraview_shim.py"; then
  echo "setup: installing the ParaView Python 3.11 plugin shim into $site_dir"
  $SUDO mkdir -p "$site_dir"
  $SUDO cp plugin/shim/cnnvis_paraview_shim.py "$site_dir/cnnvis_paraview_shim.py"
  echo "import cnnvis_paraview_shim" | $SUDO tee "$site_dir/cnnvis-paraview-shim.pth" >/dev/null
fi

# CMake: configure once (and again when CMakeLists.txt changes) for the ParaView tests and install.
if [ ! -f build/CMakeCache.txt ] || [ CMakeLists.txt -nt build/CMakeCache.txt ]; then
  echo "setup: configuring CMake in build/"
  cmake -S . -B build -DBUILD_TESTING=ON >build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
  rm -f build-configure.log
fi

.venv/bin/python - <<'PY'
import paraview, torch, torchvision, numpy, cnn_engine
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: ParaView's matplotlib needs numpy 1.x"
print(f"setup: ready (ParaView {paraview.__version__ if hasattr(paraview, '__version__') else '5.11'}, "
      f"torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {numpy.__version__}, "
      f"cnn_engine {cnn_engine.__version__})")
PY
