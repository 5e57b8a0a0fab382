#!/usr/bin/env bash
# Run every test: the engine's pytest suite (with a pvpython check of the stock NetCDF reader),
# then the ParaView plugin tests through CTest (pvpython and the GUI under Xvfb). Run
# scripts/setup.sh first (the README's test command does both). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
status=0
.venv/bin/python -m pytest "$@" || status=$?
# Picks up new tests/paraview/pv_test_*.py files.
cmake -S . -B build -DBUILD_TESTING=ON >/dev/null
ctest --test-dir build --output-on-failure || status=$?
exit $status
