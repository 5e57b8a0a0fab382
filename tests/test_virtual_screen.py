"""The private X screens that the rendering and GUI tests run on (tests/virtual_screen.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from virtual_screen import virtual_screen

SCRIPT = Path(__file__).with_name("virtual_screen.py")


def screen_size(display: str) -> str:
    info = subprocess.run(["xdpyinfo", "-display", display], capture_output=True, text=True, check=True).stdout
    return next(line.split()[1] for line in info.splitlines() if line.strip().startswith("dimensions:"))


def test_two_screens_at_once_get_two_displays_that_both_answer():
    with virtual_screen() as first, virtual_screen() as second:
        assert first != second
        assert screen_size(first) == screen_size(second) == "1280x1024"


def test_the_screen_is_gone_when_the_block_ends():
    with virtual_screen() as display:
        pass
    answer = subprocess.run(["xdpyinfo", "-display", display], capture_output=True, text=True)
    assert answer.returncode != 0


def test_the_command_line_runs_the_command_on_the_screen_and_returns_its_status():
    environment = {name: value for name, value in os.environ.items() if name != "DISPLAY"}
    done = subprocess.run([sys.executable, str(SCRIPT), "sh", "-c", 'xdpyinfo >/dev/null && echo "$DISPLAY"; exit 3'],
                          capture_output=True, text=True, env=environment)
    assert done.returncode == 3
    assert done.stdout.startswith(":")


def test_a_screen_xvfb_cannot_make_is_an_error_with_xvfbs_words():
    with pytest.raises(RuntimeError, match="^Xvfb exited with status 1: Fatal server error: Invalid screen configuration not-a-size for -screen 0$"):
        with virtual_screen("not-a-size"):
            pass
