"""Processes the tests start: free ports, MPI launchers and their environment, whole-session kills.

Plain Python (no ParaView, no torch): pytest imports it, and the pvpython tests through
tests/paraview/servers.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from typing import Mapping, Sequence

#: OpenMPI's own environment variables: were they left in, a nested mpiexec would wait silently.
_MPI_PREFIXES = ("OMPI_", "PMIX_", "ORTE_", "OPAL_")


def free_port() -> int:
    """A TCP port of this machine that nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mpi_launcher(ranks: int, exported: Sequence[str] = ("OMP_NUM_THREADS",)) -> list[str]:
    """``mpiexec -n RANKS`` on this machine, passing the ``exported`` variables to every rank."""
    launcher = [shutil.which("mpiexec") or "/usr/bin/mpiexec", "-n", str(ranks)]
    for name in exported:
        launcher += ["-x", name]
    if os.geteuid() == 0:
        launcher.append("--allow-run-as-root")  # OpenMPI refuses root without it (CI runs as root)
    if ranks > (os.cpu_count() or 1):
        launcher.append("--oversubscribe")  # more ranks than cores: OpenMPI refuses without it
    return launcher


def mpi_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment`` for an mpiexec started from here: without OpenMPI's own variables (pvpython
    is itself an MPI process, a singleton), one thread per rank, and no PV_PLUGIN_PATH."""
    clean = {name: value for name, value in environment.items() if not name.startswith(_MPI_PREFIXES)}
    clean["OMP_NUM_THREADS"] = "1"
    clean.pop("PV_PLUGIN_PATH", None)
    return clean


def kill_session(session: int) -> None:
    """SIGKILL every process of ``session`` (mpiexec puts each rank in a process group of its own,
    but they stay in the session that mpiexec was started in)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()  # after "pid (name)": state ppid pgrp session
            if int(fields[3]) == session:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile
