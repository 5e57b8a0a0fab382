"""What a ``cnnvis`` run gave, in this process (the ``cnnvis`` fixture of conftest.py) or as a process."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    """A run's exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str
