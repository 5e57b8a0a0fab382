"""pvpython conveniences: a failed CNN NetCDF Writer raises, as a Python user expects.

ParaView 5.11 turns no pipeline failure into a Python exception: ``SaveData`` of a source that
failed (an unreadable image, missing weights) returns quietly and writes nothing, and an
exception raised in a Python writer's ``Write`` is printed and swallowed. The one call every
``SaveData`` makes on the writer's Python proxy is ``UpdatePipeline``; after it, this checks the
CNN NetCDF Writer's ``LastError`` information property and raises ``RuntimeError`` with its
message. Other proxies are untouched. The property is read the same way in a builtin session and
from a client of a remote server (where the writer's Python object is not reachable).
"""

from __future__ import annotations

import sys

WRITER = "CNNNetCDFWriter"


def raise_on_failed_writes() -> None:
    """Make ``SaveData`` (and ``writer.UpdatePipeline()``) raise when the CNN NetCDF Writer failed."""
    # Only where a script already uses paraview.servermanager (pvpython, pvbatch: paraview.simple
    # imports it before LoadPlugin). Importing it here, while the GUI loads its start-up plugins,
    # made the GUI's Pipeline Browser show the builtin server twice.
    servermanager = sys.modules.get("paraview.servermanager")
    if servermanager is None:
        return
    base = servermanager.SourceProxy
    if getattr(base.UpdatePipeline, "_cnnvis_checked", False):
        return
    update = base.UpdatePipeline

    def UpdatePipeline(self, time=None):
        update(self, time)
        if self.SMProxy is not None and self.SMProxy.GetXMLName() == WRITER:
            self.UpdatePropertyInformation()
            error = self.GetPropertyValue("LastError")
            if error:
                raise RuntimeError(f"CNN NetCDF Writer: {error}")

    UpdatePipeline.__doc__ = update.__doc__
    UpdatePipeline._cnnvis_checked = True
    base.UpdatePipeline = UpdatePipeline
