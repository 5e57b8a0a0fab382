"""A tiny test runner for pvpython scripts: each test_* function runs, failures are counted.

The scripts are run by CTest on a virtual screen (tests/virtual_screen.py, see CMakeLists.txt) with the plugin on PV_PLUGIN_PATH.
Each prints one line per test and a closing 'N passed, N failed' line; the exit status is the
number of failures (0 = success).
"""

from __future__ import annotations

import io
import os
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(os.environ.get("CNNVIS_ROOT") or Path(__file__).resolve().parents[2])
ARTIFACTS = Path(os.environ.get("CNNVIS_ARTIFACTS") or ROOT / "tests" / "artifacts")
SAMPLES = ROOT / "sample_images"
PLUGIN = ROOT / "plugin" / "cnn_activations.py"


def load_plugin(namespace: dict) -> None:
    """Make the plugin's proxies available in ``namespace`` (paraview.simple style)."""
    from paraview import simple

    if not hasattr(simple, "CNNActivationVolume"):
        simple.LoadPlugin(str(PLUGIN), ns=namespace)
    for name in ("CNNActivationVolume", "CNNActivationVolumeReader", "CNNImageSet", "CNNLayerNormalize", "CNNCaption"):
        namespace[name] = getattr(simple, name)


class Captured:
    """What :func:`captured` collected, in ``text`` once the block has ended."""

    text = ""


@contextmanager
def captured():
    """Collect what reaches Output Messages (print_error, VTK errors) and stderr (tracebacks) meanwhile."""
    from vtkmodules.vtkCommonCore import vtkOutputWindow, vtkStringOutputWindow

    window, previous = vtkStringOutputWindow(), vtkOutputWindow.GetInstance()
    stderr, sys.stderr = sys.stderr, io.StringIO()
    vtkOutputWindow.SetInstance(window)
    result = Captured()
    try:
        yield result
    finally:
        vtkOutputWindow.SetInstance(previous)
        result.text = window.GetOutput() + sys.stderr.getvalue()
        sys.stderr = stderr


def run(namespace: dict, cleanup=None) -> None:
    """Run the tests; then ``cleanup()`` if given (the exit below skips ``finally`` blocks)."""
    tests = [(name, f) for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    passed = failed = 0
    try:
        for name, function in tests:
            start = time.time()
            try:
                function()
            except Exception:
                failed += 1
                print(f"FAIL {name} ({time.time() - start:.1f} s)")
                traceback.print_exc()
            else:
                passed += 1
                print(f"PASS {name} ({time.time() - start:.1f} s)")
            sys.stdout.flush()
    finally:
        if cleanup is not None:
            cleanup()
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: Debian's pvpython 5.11 segfaults in sys.exit once a render view exists (seen
    # with a bare Sphere, no plugin), which would turn a pass into a crash.
    os._exit(1 if failed else 0)
