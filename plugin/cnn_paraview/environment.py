"""Making the project's Python packages importable inside ParaView's own Python.

ParaView runs Debian's Python 3.11 with Debian's packages first on ``sys.path``; torch and the
numpy it needs live in the project's virtual environment. Its site-packages folder is put
*first* (so Debian's older sympy and numpy do not shadow the ones torch was built against), and
its ``.pth`` files are processed, which makes the editable ``cnn_engine`` install importable.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path


def venv_site_packages(root: Path) -> Path | None:
    """The site-packages folder of ``$CNNVIS_VENV`` or ``<root>/.venv``, for this Python version."""
    venv = Path(os.environ.get("CNNVIS_VENV") or root / ".venv")
    candidate = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    return candidate if candidate.is_dir() else None


def use_project_environment(root: Path) -> None:
    """Put the project's virtual environment and source folder first on ``sys.path``.

    Also keeps torch from loading triton here: torch imports it when present, and triton's
    bundled LLVM crashed ParaView (SIGSEGV in libtriton.so) once a render view had loaded Mesa's
    llvmpipe. The engine never compiles kernels, so torch simply sees triton as absent.
    """
    sys.modules.setdefault("triton", None)
    before = list(sys.path)
    packages = venv_site_packages(root)
    if packages is not None:
        site.addsitedir(str(packages))
    if str(root) not in sys.path:
        sys.path.append(str(root))  # cnn_engine from the source tree when not installed
    added = [entry for entry in sys.path if entry not in before]
    sys.path[:] = added + [entry for entry in sys.path if entry not in added]
    # The venv's netCDF4 brings its own netCDF-C and HDF5, which a plain import would bind to the
    # copies ParaView links (pvpython crashed on `import netCDF4`): load it now the safe way
    # (cnn_engine.netcdf.netcdf4_library), so that any later import, xarray's too, gets that module.
    try:
        from cnn_engine.netcdf import netcdf4_library

        netcdf4_library()
    except Exception:  # noqa: BLE001 - no netCDF4 (or no engine): netCDF-3 files still work
        pass
