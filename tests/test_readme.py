"""Every README snippet and command marked ``<!-- readme-test: KIND -->`` runs as written.

The blocks are read from README.md itself, so the README cannot drift from the code. KIND says
how a block runs:

* ``sh-in-project``: bash, in the project folder (the main command: set-up, then the demo);
* ``ci``: the test command; ``.ci/run`` must run exactly it (running it here would recurse);
* ``sh``, ``python``, ``pvpython``: in a fresh folder that holds links to the project's
  ``.venv``, ``plugin``, ``sample_images``, ``examples`` and ``benchmarks``, as if run from the
  project folder (the benchmarks only have to run here: their numbers mean nothing under load);
* ``gui``: each ``cnnvis paraview`` line under a virtual screen with a fresh ``HOME``: ParaView's
  main window must come up, alone (no dialog). The scenes they open are judged in detail by
  tests/paraview/gui_check.sh.

As everywhere in the tests, TORCH_HOME is an empty folder: no ImageNet weights, as offline.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from virtual_screen import virtual_screen

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- readme-test: (?P<kind>[\w-]+) -->\n```(?:sh|python)\n(?P<code>.*?)```", re.DOTALL)
BLOCKS = [(m.group("kind"), m.group("code")) for m in BLOCK.finditer((ROOT / "README.md").read_text())]


def blocks(kind: str) -> list[str]:
    return [code for k, code in BLOCKS if k == kind]


def test_the_readme_has_every_kind_of_tested_block():
    kinds = [kind for kind, _ in BLOCKS]
    assert sorted(set(kinds)) == ["ci", "gui", "pvpython", "python", "sh", "sh-in-project"], kinds


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    for name in (".venv", "plugin", "sample_images", "examples", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def run(command: list[str], cwd: Path, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ if env is None else env)
    environment.pop("PV_PLUGIN_PATH", None)
    result = subprocess.run(command, cwd=str(cwd), capture_output=True, text=True, timeout=timeout, env=environment)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_ci_runs_exactly_the_readme_test_command():
    (command,) = blocks("ci")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == [command.strip()]


def test_the_main_command_sets_up_and_runs_the_demo():
    (command,) = blocks("sh-in-project")
    result = run(["bash", "-c", command], ROOT)
    assert "top-5 predictions:" in result.stdout and "wrote out/cat.nc" in result.stdout.replace(str(ROOT) + "/", "")


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_snippet_runs(index, workdir):
    (workdir / "snippet.py").write_text(blocks("python")[index])
    run([sys.executable, "snippet.py"], workdir)


@pytest.mark.parametrize("index", range(len(blocks("pvpython"))))
def test_pvpython_snippet_runs_and_saves(index, workdir):
    code = blocks("pvpython")[index]
    (workdir / "snippet.py").write_text(code)
    result = run(["pvpython", "snippet.py"], workdir)
    if "cat.nc" in code:  # the first steps: a volume written
        assert (workdir / "cat.nc").stat().st_size > 0
        assert "efficientnet_lite0, weights packaged" in result.stdout
    elif "CNNChannelStatistics" in code:  # the chosen channel reaches the image set
        assert "_blocks.7:41" in result.stdout
    elif "CNNPerturbationSweep" in code:  # the severities are the time steps
        assert "[0.0, 0.1, 0.2, 0.3]" in result.stdout
    else:  # the image set: one time step per image
        assert "[0.0, 1.0, 2.0, 3.0, 4.0]" in result.stdout


@pytest.mark.parametrize("index", range(len(blocks("sh"))))
def test_shell_commands_run(index, workdir):
    run(["bash", "-e", "-c", blocks("sh")[index]], workdir)


def gui_lines() -> list[list[str]]:
    return [shlex.split(line.split("#")[0]) for code in blocks("gui") for line in code.splitlines() if line.strip()]


@pytest.mark.parametrize("words", gui_lines(), ids=lambda words: " ".join(words[1:]) or "paraview")
def test_gui_command_opens_paraview_alone(words, workdir, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with virtual_screen() as display:
        env = dict(os.environ, DISPLAY=display, HOME=str(home))
        env.pop("PV_PLUGIN_PATH", None)
        assert_paraview_opens_alone(words, workdir, env)


def assert_paraview_opens_alone(words: list[str], workdir: Path, env: dict) -> None:
    gui = subprocess.Popen(words, cwd=str(workdir), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        windows: list[str] = []
        deadline = time.time() + 120
        while time.time() < deadline and "ParaView 5.11.0" not in windows:
            assert gui.poll() is None, f"{words} exited early: {gui.stdout.read()[-2000:]}"
            time.sleep(1)
            windows = viewable_windows(env)
        time.sleep(3)  # the Welcome dialog would show one second after the main window
        windows = viewable_windows(env)
        assert windows == ["ParaView 5.11.0"], windows
    finally:
        gui.terminate()
        try:
            gui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gui.kill()


def viewable_windows(env: dict) -> list[str]:
    listing = subprocess.run(["xwininfo", "-root", "-children"], capture_output=True, text=True, env=env).stdout
    names = []
    for window in re.findall(r"^\s+(0x[0-9a-f]+)", listing, flags=re.MULTILINE):
        info = subprocess.run(["xwininfo", "-id", window], capture_output=True, text=True, env=env).stdout
        if "Map State: IsViewable" in info:
            names += re.findall(r'^xwininfo: Window id: \S+ "(.*)"$', info, flags=re.MULTILINE)
    return sorted(names)
