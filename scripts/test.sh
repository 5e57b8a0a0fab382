#!/usr/bin/env bash
# Run every test: the engine's pytest suite, including the ParaView checks it drives through
# pvpython. Run scripts/setup.sh first (the README's test command does both).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
.venv/bin/python -m pytest "$@"
