"""A private Xvfb screen for the tests that render or open the GUI: the one way they get a display.

    python3 tests/virtual_screen.py COMMAND [ARG ...]   # runs COMMAND with DISPLAY set, returns its status

or, from Python, ``with virtual_screen() as display: ...``.

Why not ``xvfb-run -a``: it picks the display number from the /tmp/.X*-lock files it sees and
stops the server without waiting for it, so a test starting while the previous test's server is
still going away can meet a half-dead screen (seen once in CI: "bad X server connection" at
the first render view). Here the X server picks a free number itself (``-displayfd``, which it
writes only once it accepts connections), never resets when its last client leaves
(``-noreset``), and is waited for when stopped.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

SCREEN = "1280x1024x24"
START_TIMEOUT = 60.0  # seconds: Xvfb is ready in well under one on an idle machine


@contextmanager
def virtual_screen(screen: str = SCREEN) -> Iterator[str]:
    """Start Xvfb with one screen of ``screen`` (WIDTHxHEIGHTxDEPTH); yield its DISPLAY (":N");
    stop it and wait for it on leaving. Raises RuntimeError, with Xvfb's own words, if it does
    not start."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile(mode="w+") as errors:
        server = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
        os.close(write_end)
        try:
            number = _read_display_number(read_end)
            if not number:
                try:  # it closed the pipe: exiting, or past the time limit
                    status = server.wait(timeout=5)
                    why = f"exited with status {status}"
                except subprocess.TimeoutExpired:
                    why = f"was not ready within {START_TIMEOUT:g} s"
                server.kill()
                server.wait()
                errors.seek(0)
                raise RuntimeError(f"Xvfb {why}: {_last_words(errors.read())}")
            yield f":{number}"
        finally:
            os.close(read_end)
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


def _read_display_number(fd: int) -> str:
    """The number Xvfb writes to ``fd`` when ready ("" if it exits or times out first)."""
    text = b""
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], START_TIMEOUT)
        if not ready:
            return ""
        chunk = os.read(fd, 64)
        if not chunk:
            return ""
        text += chunk
    return text.decode().strip()


def _last_words(output: str) -> str:
    """Xvfb's error lines (it prints its whole usage text before them)."""
    lines = [line.replace("(EE)", "").strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    return " ".join(lines[-2:]) or "(it printed nothing)"


def main(command: list[str]) -> int:
    if not command:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with virtual_screen() as display:
        return subprocess.call(command, env=dict(os.environ, DISPLAY=display))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
