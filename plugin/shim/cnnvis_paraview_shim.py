"""Python 3.11 fix for Debian's ParaView 5.11 Python plugins.

``paraview/detail/pythonalgorithm.py`` in ParaView 5.11 imports ``inspect.getargspec``, which
Python 3.11 removed, so no Python plugin loads. ``scripts/setup.sh`` installs this module with
a ``.pth`` line that imports it at every start of Debian's Python (ParaView's included). It only
adds the old name where it is missing; newer ParaView releases do not use it.
"""

import inspect

if not hasattr(inspect, "getargspec"):
    inspect.getargspec = inspect.getfullargspec
