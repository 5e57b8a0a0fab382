"""A pvserver on this machine for one pvpython client, and watchdogs on what the client waits for.

pvserver (alone, or under ``mpiexec``) listens on a free port and accepts only a client with its
random connect id; it runs in a session of its own, so that stopping it stops mpiexec and every
rank too. A call blocked in ParaView's C++ cannot be interrupted from Python, so every wait is
bounded by a watchdog process (:meth:`PvServer.bounded`): past its time it kills the server's
session, which makes the blocked call fail, and 10 s later this process.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from typing import Mapping, Sequence

import pvcheck

sys.path.insert(0, str(pvcheck.ROOT / "tests"))
from processes import free_port, kill_session  # noqa: E402


class PvServer:
    """``launcher + pvserver`` on a free port; ``name`` (the test's) prefixes its messages."""

    def __init__(self, name: str, launcher: Sequence[str] = (), environment: Mapping[str, str] | None = None,
                 stop_wait: float = 10) -> None:
        self.name = name
        self.stop_wait = stop_wait
        self.port = free_port()
        self.connect_id = random.randint(1, 2**31 - 1)
        environment = dict(os.environ if environment is None else environment)
        environment.pop("PV_PLUGIN_PATH", None)  # the plugin must come from LoadPlugin(remote=True)
        command = list(launcher) + [shutil.which("pvserver") or "pvserver", f"--server-port={self.port}",
                                    f"--connect-id={self.connect_id}"]
        self.process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.listening = threading.Event()
        threading.Thread(target=self._echo, daemon=True).start()

    def _echo(self) -> None:
        for line in self.process.stdout:  # read on, so that the server never blocks on a full pipe
            print(f"pvserver: {line.rstrip()}", flush=True)
            if line.startswith("Accepting connection"):
                self.listening.set()

    def stop(self) -> None:
        """Wait up to ``stop_wait`` seconds for the server to exit (it does once its client
        disconnects), then kill its whole session."""
        try:
            self.process.wait(timeout=self.stop_wait)
        except subprocess.TimeoutExpired:
            print(f"{self.name}: pvserver did not exit within {self.stop_wait:g} s: killing it", flush=True)
        kill_session(self.process.pid)  # the ranks too, should mpiexec have gone without them
        self.process.wait()

    @contextmanager
    def bounded(self, step: str, seconds: float):
        """Let the block take at most ``seconds``; past that, kill the server's session, then this process."""
        script = ('sleep "$1"; echo "$5: $2 took more than $1 s: stopping pvserver" >&2; '
                  'pkill -KILL -s "$3"; sleep 10; echo "$5: stopping the client" >&2; kill -KILL "$4"')
        watchdog = subprocess.Popen(["sh", "-c", script, "watchdog", str(seconds), step, str(self.process.pid),
                                     str(os.getpid()), self.name], start_new_session=True)
        try:
            yield
        finally:
            os.killpg(watchdog.pid, signal.SIGKILL)  # the watchdog's own session: its shell and its sleep
            watchdog.wait()

    def disconnect_and_stop(self) -> None:
        """The client's cleanup: disconnect (bounded), then stop the server in every case."""
        from paraview import servermanager, simple

        try:
            if servermanager.ActiveConnection is not None and servermanager.ActiveConnection.IsRemote():
                with self.bounded("disconnecting", 60):
                    simple.Disconnect()
        finally:
            self.stop()
