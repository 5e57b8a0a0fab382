"""Channel statistics of an image set on ParaView's MPI engine: a script for ``pvbatch``.

    mpiexec -n 4 -x OMP_NUM_THREADS=2 pvbatch --symmetric <project>/plugin/cnn_paraview/statistics_mpi.py \\
        photos/ -o study.nc --model efficientnet_lite0

takes the options of ``cnnvis study`` and writes the same file. Every rank runs every N-th image
of the set (:func:`cnn_engine.channel_statistics` with ``comm=MPI.COMM_WORLD``); rank 0 gathers
the per-image channel means and exemplar candidates, works out the statistics once, in set
order, and sends them back to every rank. Rank 0 alone shows the progress (of its share of the
images: the shares differ by one image at most), prints the summary and writes the file.
``--symmetric`` is needed: without it pvbatch runs the script on rank 0 only, so this script
refuses to start with an error that says so (a collective would otherwise wait forever).
It also runs on one process (``pvbatch script.py ...``, or any Python that has the project's
environment) and under ``mpiexec -n N python script.py``.

Exit status: 0 done; 2 a user error (one ``cnnvis: error:`` line from rank 0); 1 a bug on some
rank (its traceback, then the whole job is aborted, since the other ranks would wait for it).
"""

from __future__ import annotations

import argparse
import io
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

# A copy installed elsewhere (by CMake) has the project folder written here.
PROJECT_ROOT = None

EXIT_ERROR = 2
EXIT_BUG = 1


def _bootstrap() -> None:
    """Run as a script, this file's folder is first on sys.path, where cnn_paraview's xml.py (and
    the other module names) would shadow Python's own modules: take it off, put the plugin folder
    on instead, and the project's virtual environment first (torch, cnn_engine)."""
    sys.dont_write_bytecode = True  # no __pycache__ in the project or an installed copy
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    root = Path(PROJECT_ROOT) if PROJECT_ROOT else here.parent.parent
    if str(root / "plugin") not in sys.path:
        sys.path.insert(0, str(root / "plugin"))
    from cnn_paraview.environment import use_project_environment

    use_project_environment(root)


def world() -> Any:
    """MPI's world communicator when this process is one of several, else None (one process).

    Raises :class:`cnn_engine.CnnEngineError` under pvbatch started without ``--symmetric``: there
    the other ranks wait in ParaView's own loop and never reach this script.
    """
    from cnn_engine import CnnEngineError

    try:
        from mpi4py import MPI
    except ImportError:  # a Python without mpi4py runs as one process
        return None
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return None
    if not _symmetric():
        raise CnnEngineError(f"pvbatch runs this script on rank 0 only, and the other {comm.Get_size() - 1} rank(s) "
                             "would never take their share: start it as mpiexec -n N pvbatch --symmetric SCRIPT ...")
    return comm


def _symmetric() -> bool:
    """Whether every rank runs this script: pvbatch's --symmetric, or a plain Python under mpiexec."""
    try:
        from paraview.modules.vtkRemotingCore import vtkProcessModule
    except ImportError:
        return True
    module = vtkProcessModule.GetProcessModule()
    return module is None or bool(module.GetSymmetricMPIMode())


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``cnnvis study`` from its own parser (``argv``: without the word study)."""
    from cnn_engine.cli import _parser

    return _parser().parse_args(["study", *(sys.argv[1:] if argv is None else argv)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the statistics on every rank of the world communicator; see the module docstring."""
    from cnn_engine import CnnEngineError

    try:
        comm = world()
    except CnnEngineError as exc:
        return _fail(exc)
    rank = comm.Get_rank() if comm is not None else 0
    if rank == 0:  # as cnnvis says them
        warnings.showwarning = lambda message, *rest, **kw: print(f"cnnvis: note: {message}", file=sys.stderr)
    else:  # the set's and the model's notes are the same on every rank: rank 0 says them once
        warnings.simplefilter("ignore")
    try:
        with _silent(rank != 0):  # a usage error, found alike by every rank, is printed once
            try:
                args = parse(argv)
            except SystemExit as exc:
                return EXIT_ERROR if exc.code else 0  # --help: 0
        model, images, error = _prepare(args, rank)
        error = _first_error(comm, error)
        if error:
            return _fail(error, rank)
        return _study(args, model, images, comm)
    except CnnEngineError as exc:  # raised alike on every rank (options, layers, or rank 0's verdict)
        return _fail(exc, rank)
    except BaseException:  # a bug, or out of memory, on this rank only: the others would wait forever
        print(f"cnnvis: rank {rank}: unexpected failure:", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        if comm is not None:
            comm.Abort(EXIT_BUG)
        return EXIT_BUG


def _prepare(args: argparse.Namespace, rank: int) -> tuple[Any, Any, Exception | None]:
    """What ``cnnvis study`` checks before it computes, on every rank (each loads its own model;
    rank 0 alone checks the outputs and says the notes), so that a bad path or option fails
    before the computing rather than after it."""
    from cnn_engine import CnnEngineError
    from cnn_engine.cli import _check_labels, _check_table_path, _image_set, _load
    from cnn_engine.imageset import ImageSet

    try:
        if args.show < 1:
            raise CnnEngineError(f"--show must be at least 1, not {args.show}")
        if not 1 <= args.top_n <= 100:
            raise CnnEngineError(f"--top-n must be from 1 to 100, not {args.top_n}")
        if rank == 0:
            _check_table_path(args.output, "netCDF file", ".nc", "study")
            if args.csv:
                _check_table_path(args.csv, "CSV file", ".csv", "study")
        images = _image_set(args.images)
        with _silent(rank != 0):
            model = _load(args)  # offline, a note that the stand-in runs
        if model.categories:  # labels as class indices of the model's own classes
            images = ImageSet(images, categories=model.categories)
        _check_labels(images, model)
        return model, images, None
    except CnnEngineError as exc:
        return None, None, exc


def _study(args: argparse.Namespace, model: Any, images: Any, comm: Any) -> int:
    """Every rank computes its share; rank 0 shows the progress, then writes and prints as
    ``cnnvis study`` does. Unreadable images are told by rank 0, for every rank, at the end."""
    from cnn_engine.cli import _SetProgress, finish_study
    from cnn_engine.statistics import channel_statistics

    rank, ranks = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    progress = None
    if rank == 0:
        share = len(range(0, len(images), ranks))  # rank 0 runs images 0, N, 2N, ...: the largest share
        if ranks > 1:
            print(f"cnnvis: {ranks} MPI ranks share the {len(images)} images; the bar counts rank 0's {share}",
                  file=sys.stderr)
        progress = _SetProgress(share, False)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always" if rank == 0 else "ignore")
        try:
            stats = channel_statistics(model, images, layers=args.layers, top_n=args.top_n,
                                       batch_size=args.batch_size, input_size=args.input_size, fit=args.fit,
                                       progress=progress, on_error=_ignore, comm=comm)
        finally:
            if progress is not None:
                progress.close()
    if rank != 0:
        return 0
    for path, message in stats.failures:
        print(f"cnnvis: error: {message}", file=sys.stderr)
    finish_study(stats, args, notes, [Path(path).name for path, _ in stats.failures])
    return EXIT_ERROR if stats.failures else 0


def _ignore(path: str, error: Exception) -> None:
    """An unreadable image: the engine keeps it in ``failures``, which rank 0 prints at the end."""


@contextmanager
def _silent(quiet: bool) -> Iterator[None]:
    """No stderr output meanwhile, if ``quiet`` (the ranks other than 0)."""
    if not quiet:
        yield
        return
    stderr, sys.stderr = sys.stderr, io.StringIO()
    try:
        yield
    finally:
        sys.stderr = stderr


def _first_error(comm: Any, error: Exception | None) -> Exception | None:
    """The first rank's error, on every rank, so that all stop together (a rank that failed alone,
    say without the weights file on its machine, would leave the others waiting)."""
    if comm is None:
        return error
    errors = comm.allgather(None if error is None else str(error))
    for index, message in enumerate(errors):
        if message is not None:
            from cnn_engine import CnnEngineError

            return error if index == comm.Get_rank() else CnnEngineError(f"rank {index}: {message}")
    return None


def _fail(error: Exception, rank: int = 0) -> int:
    if rank == 0:
        print(f"cnnvis: error: {error}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    _bootstrap()
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if status:  # on success pvbatch must end by itself: a symmetric rank that calls sys.exit(0)
        sys.exit(status)  # skips MPI_Finalize, and mpiexec then fails the whole job
