"""Writing a file so that it is either complete or not there at all.

Every output of the engine (netCDF volumes, explain pictures) is written to a hidden temporary
file beside its target and renamed into place only when complete. On Linux the temporary has no
name until it is complete (``O_TMPFILE``), so even a process killed mid-write (SIGKILL, or
ParaView's own signal handlers) leaves nothing; it is named ``.NAME.XXXXXXXX.part`` only for the
moment of the rename, or for the whole write where unnamed files are not supported. Any
failure removes the temporary: an ``OSError`` becomes an :class:`OutputError` naming the problem
and what to do, and SIGTERM, SIGHUP and SIGINT arriving while the file is written are turned into
an exception for the duration of the write, so the temporary goes too; the signal is then passed
on to whatever handled it before (by default: the process ends as the signal says).

:func:`check_writable` fails early, before any computing, for locations that cannot take a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

from .errors import OutputError

#: Signals that end a process by default and that are turned into cleanup during a write.
CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))

# What to do about an OSError while writing, by errno (the message names the problem first).
_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "no permission: write elsewhere or change the permissions",
    errno.EPERM: "the operation is not permitted (an immutable or protected file?): write elsewhere",
    errno.ENOENT: "the folder does not exist (any more) or does not accept files: write elsewhere",
    errno.ENOTDIR: "a part of the path is not a folder: give a path in an existing folder",
}


def check_writable(path: str | os.PathLike, what: str = "file", suffix: str = ".nc") -> Path:
    """Fail early, before any computing, if ``path`` cannot be written. Returns it resolved.

    Refused: a folder, an existing target that is not a regular file (``/dev/full``, a FIFO),
    a missing folder, a folder without write permission or on a read-only file system, a
    read-only or immutable existing file, and a folder that does not take new files (``/proc``:
    tried with an empty hidden probe file, removed at once, since permission bits do not stop root).
    ``what`` names the output in messages ("file", "picture"), ``suffix`` the ending to suggest.
    """
    path = Path(path).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_error_advice(exc)}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"output path {path} is a folder; give a {what} name ending in {suffix}")
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputError(
            f"cannot write {path}: it is {describe_file_type(info.st_mode)}, not a regular file; "
            f"give a {what} path in a normal folder"
        )
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            raise OutputError(f"cannot write {path}: the folder {folder} is on a read-only file system: write elsewhere")
        raise OutputError(f"cannot write {path}: no permission to write in {folder}: write elsewhere "
                          "or change its permissions")
    if info is not None and not os.access(path, os.W_OK):
        # For root this means an immutable file (chattr +i) or a read-only file system.
        raise OutputError(f"cannot write {path}: the existing file is read-only: write elsewhere or make it writable")
    _probe(folder, path)
    return path.resolve()


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], what: str = "file") -> Path:
    """Call ``write(temporary_name)``, then rename the temporary file to ``path``. Returns ``path``.

    The temporary is removed on any failure; ``OSError`` becomes :class:`OutputError`, anything
    else (a bug) propagates unchanged. SIGTERM, SIGHUP and SIGINT during the write remove the
    temporary and are then re-delivered to their previous handler (the default one ends the
    process with that signal; Python's SIGINT handler raises ``KeyboardInterrupt``).
    """
    path = Path(path)
    with _signals_as_exceptions() as guard:
        temporary: str | None = None
        unnamed: int | None = None
        try:
            _refuse_special_target(path, what)
            with guard.held():
                unnamed = _unnamed_file(path.parent)
                if unnamed is None:
                    handle, temporary = tempfile.mkstemp(prefix=_hidden_prefix(path), suffix=".part", dir=path.parent)
                    os.close(handle)
            if unnamed is not None:
                write(f"/proc/self/fd/{unnamed}")
                os.fchmod(unnamed, 0o644)
                with guard.held():
                    # Named only now, for the rename: microseconds, with signals held.
                    temporary = _name_unnamed(unnamed, path)
            else:
                write(temporary)
                os.chmod(temporary, 0o644)
            with guard.held():
                os.replace(temporary, path)
                temporary = None
        except OSError as exc:
            raise OutputError(f"cannot write {what} {path}: {os_error_advice(exc)}") from None
        finally:
            if unnamed is not None:
                os.close(unnamed)
            if temporary is not None:
                with guard.held():
                    _remove(temporary)
    return path


def _unnamed_file(folder: Path) -> int | None:
    """A file descriptor of a new file in ``folder`` that has no name yet (Linux ``O_TMPFILE``),
    or None where that is not supported.

    While it has no name, nothing of it can be left behind: the kernel frees it when the process
    ends, however it ends (SIGKILL, or ParaView's own SIGTERM handler, which Python cannot chain).
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or _linkat is None:
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o600)
    except OSError:  # a file system without O_TMPFILE (EOPNOTSUPP, EISDIR on old kernels)
        return None


def _name_unnamed(descriptor: int, path: Path) -> str:
    """Give the unnamed file a hidden temporary name beside ``path``; returns that name."""
    for _ in range(100):
        name = str(path.parent / f"{_hidden_prefix(path)}{os.urandom(4).hex()}.part")
        # linkat(..., AT_SYMLINK_FOLLOW) through /proc: Python's os.link does not follow here.
        if _linkat(_AT_FDCWD, f"/proc/self/fd/{descriptor}".encode(), _AT_FDCWD,
                   os.fsencode(name), _AT_SYMLINK_FOLLOW) == 0:
            return name
        error = ctypes.get_errno()
        if error != errno.EEXIST:
            raise OSError(error, os.strerror(error), name)
    raise OSError(errno.EEXIST, "no free temporary name", str(path.parent))


def _libc_linkat():
    try:
        return ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError):
        return None


_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400
_linkat = _libc_linkat() if os.path.isdir("/proc/self/fd") else None


def describe_file_type(mode: int) -> str:
    """'a FIFO (named pipe)', 'a character device', ... for an ``os.stat`` mode."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "a special file"


class _Signalled(BaseException):
    """A cleanup signal arrived during a write (a BaseException: ``except Exception`` lets it by)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _SignalGuard:
    """Turns SIGTERM/SIGHUP/SIGINT into :class:`_Signalled` while a write is under way.

    :meth:`held` defers them over a few steps that must not be cut in two (creating the
    temporary file and learning its name: between the two, nobody could remove it).
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._raised = False
        self._holding = False

    def handler(self, signum: int, frame: object) -> None:
        self.received.append(signum)
        self.raise_pending()

    def raise_pending(self) -> None:
        # Once: a second signal must not interrupt the cleanup the first one started.
        if self.received and not self._raised and not self._holding:
            self._raised = True
            raise _Signalled(self.received[0])

    def stop(self) -> None:
        """No more exceptions (the handlers are being put back); signals are only recorded."""
        self._raised = True

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        self.raise_pending()


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[_SignalGuard]:
    """For the block, SIGTERM/SIGHUP/SIGINT raise :class:`_Signalled`; afterwards the previous
    handlers are back and a signal that arrived is re-delivered to them.

    Only in the main thread (``signal.signal`` works nowhere else; the guard then holds nothing).
    Signals that are ignored (``nohup``) stay ignored; handlers installed outside Python
    (``getsignal`` gives None, as ParaView's own SIGINT and SIGTERM handlers in pvpython) are
    left alone, since Python could not put them back.
    """
    guard = _SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {}
    try:
        for signum in CLEANUP_SIGNALS:
            current = signal.getsignal(signum)
            if current is None or current == signal.SIG_IGN:
                continue
            previous[signum] = current
            signal.signal(signum, guard.handler)
        yield guard
    except _Signalled:
        pass
    finally:
        guard.stop()
        for signum, current in previous.items():
            signal.signal(signum, current)
    if guard.received:
        # After cleanup: the previous handler decides (SIG_DFL ends the process by the signal,
        # so the parent sees 128 + signal; Python's SIGINT handler raises KeyboardInterrupt).
        signal.raise_signal(guard.received[0])
        raise OutputError(f"writing was interrupted by {signal.Signals(guard.received[0]).name}: "
                          "nothing was written")


def _refuse_special_target(path: Path, what: str) -> None:
    """Renaming over a device node or FIFO would replace it (as root, even /dev/full): refuse."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(
            f"cannot write {what} {path}: it is {describe_file_type(info.st_mode)}, not a regular file; "
            "give a path in a normal folder"
        )


def _probe(folder: Path, path: Path) -> None:
    """Create and remove an empty file in ``folder``: the one test that also holds for root."""
    # Held whole (microseconds): a signal waits until the probe is gone again.
    with _signals_as_exceptions() as guard, guard.held():
        try:
            handle, probe = tempfile.mkstemp(prefix=_hidden_prefix(path), suffix=".probe", dir=folder)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: the folder {folder} does not take new files "
                              f"({exc.strerror or exc}): write elsewhere") from None
        os.close(handle)
        _remove(probe)


def _hidden_prefix(path: Path) -> str:
    """``.NAME.`` for a temporary beside ``path``; a long name is shortened to fit the 255-byte limit."""
    name = path.name.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
    return f".{name}."


def os_error_advice(exc: OSError) -> str:
    """The reason of an ``OSError`` and what to do about it, for an output location."""
    reason = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno) if exc.errno is not None else None
    return f"{reason}; {advice}" if advice else f"{reason}; choose another output path"


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
