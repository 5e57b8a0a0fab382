"""Starting the ParaView GUI for ``cnnvis paraview``: plugin path, start script, Welcome dialog.

ParaView 5.11 opens its modal Welcome dialog one second after the main window first shows, over
whatever ``cnnvis paraview`` opened, unless its Qt settings file says
``GeneralSettings.ShowWelcomeDialog=false`` (the dialog's own "Don't show this window again"
box). A script or plugin cannot change that in time: the setting is read before they run. So
the launcher writes that one line for the session and puts the user's own choice back when
ParaView exits; nothing else in the user's settings is touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from .errors import CnnEngineError

WELCOME_KEY = "GeneralSettings.ShowWelcomeDialog"
_PARAVIEW_VERSION = "5.11.0"


def settings_file(version: str = _PARAVIEW_VERSION, environ: Mapping[str, str] = os.environ) -> Path:
    """ParaView's Qt settings file: ``$XDG_CONFIG_HOME`` (default ``~/.config``)/ParaView/ParaView<version>.ini."""
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config) / "ParaView" / f"ParaView{version}.ini"


def _welcome_line(text: str) -> re.Match | None:
    return re.search(rf"^{re.escape(WELCOME_KEY)}=(.*)$", text, flags=re.MULTILINE)


def _with_welcome(text: str, value: str | None) -> str:
    """``text`` (an ini file) with the Welcome setting set to ``value``, or removed for None."""
    found = _welcome_line(text)
    if found is not None:
        line = "" if value is None else f"{WELCOME_KEY}={value}\n"
        end = found.end() + (1 if text[found.end():found.end() + 1] == "\n" else 0)
        return text[: found.start()] + line + text[end:]
    if value is None:
        return text
    line = f"{WELCOME_KEY}={value}\n"
    general = re.search(r"^\[General\]\s*$", text, flags=re.MULTILINE)
    if general is None:
        return f"[General]\n{line}" + (f"\n{text}" if text.strip() else "")
    start = general.end() + 1
    return text[:start] + line + text[start:]


@contextlib.contextmanager
def welcome_dialog_off(path: Path) -> Iterator[None]:
    """Keep ParaView's Welcome dialog closed while inside; restore the user's setting after."""
    try:
        before = path.read_text(encoding="utf-8") if path.is_file() else None
    except OSError:
        before = None
    found = _welcome_line(before or "")
    original = found.group(1).strip() if found else None
    if original == "false":
        yield  # the user turned it off already
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_with_welcome(before or "", "false"), encoding="utf-8")
    except OSError:
        yield  # an unwritable settings folder: the dialog shows, nothing breaks
        return
    try:
        yield
    finally:
        try:
            # ParaView rewrites the file when it exits: edit what it left, not what was before.
            after = path.read_text(encoding="utf-8")
            now = _welcome_line(after)
            if now is not None and now.group(1).strip() == "false":
                path.write_text(_with_welcome(after, original), encoding="utf-8")
        except OSError:
            pass


def launch(plugin_folder: Path, start_script: Path | None, environ: Mapping[str, str], cwd: Path,
           extra_arguments: Sequence[str] = ()) -> int:
    """Run the ``paraview`` GUI with the plugin on ``PV_PLUGIN_PATH`` and ``start_script`` as its
    ``--script``; returns ParaView's exit status."""
    executable = shutil.which("paraview")
    if executable is None:
        raise CnnEngineError("ParaView is not installed: run scripts/setup.sh (Debian package paraview)")
    env = dict(environ)
    env["PV_PLUGIN_PATH"] = os.pathsep.join(p for p in (str(plugin_folder), env.get("PV_PLUGIN_PATH", "")) if p)
    command = [executable, *extra_arguments]
    if start_script is not None:
        command.append(f"--script={start_script}")
    with welcome_dialog_off(settings_file(environ=env)):
        child = subprocess.Popen(command, cwd=str(cwd), env=env)
        # Closing the terminal or a kill of cnnvis ends ParaView too, and the settings are restored.
        forward = {sig: signal.signal(sig, lambda number, frame: child.send_signal(number))
                   for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    child.send_signal(signal.SIGINT)
        finally:
            for sig, handler in forward.items():
                signal.signal(sig, handler)
