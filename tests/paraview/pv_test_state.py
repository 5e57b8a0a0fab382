"""State files: source -> filter -> slice saved, reloaded in a fresh pvpython, bit-identical."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from paraview import simple

import pvcheck

pvcheck.load_plugin(globals())
sys.path.insert(0, str(pvcheck.ROOT / "plugin"))
from cnn_paraview.scenes import show_volume  # noqa: E402

FOLDER = Path(tempfile.mkdtemp(prefix="cnnvis-state-"))
RELOAD = Path(__file__).resolve().parent / "reload_state.py"


def reload_in_fresh_process(state: Path, prefix: Path) -> dict:
    """Load ``state`` in a new pvpython (plugin from PV_PLUGIN_PATH only); arrays and picture to ``prefix``."""
    env = dict(os.environ, PV_PLUGIN_PATH=str(pvcheck.ROOT / "plugin"))
    result = subprocess.run([sys.executable if sys.executable.endswith("pvpython") else "pvpython", str(RELOAD),
                             str(state), str(prefix)], capture_output=True, text=True, env=env, timeout=600,
                            cwd=str(pvcheck.ROOT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_saved_state_reloads_to_identical_arrays_and_picture():
    from reload_state import capture

    simple.ResetSession()
    pvcheck.load_plugin(globals())
    view = simple.CreateView("RenderView")
    view.ViewSize = [640, 480]
    proxies = show_volume(str(pvcheck.SAMPLES / "cat.jpg"), model="resnet50", weights="random", view=view)
    proxies["normalize"].Channels = "MeanTopK"
    state = FOLDER / "roundtrip.pvsm"
    simple.SaveState(str(state))
    before = capture(FOLDER / "before")
    after = reload_in_fresh_process(state, FOLDER / "after")
    assert after["sources"] == before["sources"], (after["sources"], before["sources"])
    for name in ("source_rank0", "normalize_activation", "panel_activation"):
        a, b = np.load(FOLDER / f"before_{name}.npy"), np.load(FOLDER / f"after_{name}.npy")
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), name
    picture_a = np.load(FOLDER / "before_picture.npy")
    picture_b = np.load(FOLDER / "after_picture.npy")
    assert picture_a.shape == picture_b.shape
    assert np.abs(picture_a.astype(int) - picture_b.astype(int)).max() <= 2


def test_shipped_example_state_opens_with_every_proxy():
    after = reload_in_fresh_process(pvcheck.ROOT / "examples" / "cat_efficientnet_lite0.pvsm", FOLDER / "example")
    expected = {"CNN Activation Volume", "CNN Layer Normalize", "Input Picture", "Early Level", "Middle Level",
                "Last Level", "Predictions", "Middle Level Caption"}
    assert expected <= set(after["sources"]), after
    activation = np.load(FOLDER / "example_normalize_activation.npy")
    assert activation.shape == (19 * 224 * 337,) and np.nanmax(activation) == 1.0
    picture = np.load(FOLDER / "example_picture.npy")
    assert picture.std() > 10, "the render is blank"


pvcheck.run(globals())
