"""Temporary state of a create run that cleans itself up however the run ends, kill -9 included.

A watchdog process, forked in a session of its own, holds the read end of a pipe: the run writes ``+path``
when it makes a temporary (spool folder, image or folder being written) and ``-path`` when it has removed or
published it. When the run ends for any reason the pipe closes, and the watchdog removes what is still listed,
then exits. Spool folders carry the run's process ID, so a run also removes those of runs that are gone
(when the watchdog was killed too).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

SPOOL_PREFIX = ".dicommedia-"
_SPOOL_NAME = re.compile(rf"^{re.escape(SPOOL_PREFIX)}(\d+)-")


def _watch(read_fd: int) -> None:
    """The watchdog: read NUL-separated records until the run's end closes the pipe, then remove what is left."""
    os.setsid()  # Ctrl-C or a kill of the run's process group does not stop the cleaning
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, read_fd)  # nothing of the run's stays open here (pipes others wait on, the output)
    os.closerange(read_fd + 1, os.sysconf("SC_OPEN_MAX"))
    data = bytearray()
    while chunk := os.read(read_fd, 1 << 16):
        data += chunk
    listed: dict[bytes, bool] = {}
    for record in bytes(data).split(b"\0"):
        if record:
            listed[record[1:]] = record[:1] == b"+"
    for path, alive in listed.items():
        if alive and os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


class Leftovers:
    """The watchdog of one run: ``track`` a temporary when made, ``untrack`` it once removed or published."""

    def __init__(self) -> None:
        read_fd, self._fd = os.pipe()
        self._pid = os.fork()  # a fork, not a new interpreter: the watchdog costs a millisecond, not thirty
        if self._pid == 0:
            try:
                os.close(self._fd)
                _watch(read_fd)
            finally:
                os._exit(0)
        os.close(read_fd)

    def _send(self, sign: bytes, path: Path | str) -> None:
        try:
            os.write(self._fd, sign + os.fsencode(os.path.abspath(path)) + b"\0")
        except OSError:  # the watchdog is gone (killed): the stale-spool sweep of the next run remains
            pass

    def track(self, path: Path | str) -> None:
        """Remove ``path`` if the run ends before ``untrack``."""
        self._send(b"+", path)

    def untrack(self, path: Path | str) -> None:
        """``path`` was removed or published: leave it alone."""
        self._send(b"-", path)

    def close(self) -> None:
        """End the watchdog (it removes whatever is still tracked) and reap it."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            for _ in range(500):  # a child forked later that still holds the pipe would keep it waiting
                if os.waitpid(self._pid, os.WNOHANG)[0]:
                    return
                time.sleep(0.01)


_active: list[Leftovers] = []


def track(path: Path | str) -> None:
    """Tell the running create's watchdog about a new temporary (nothing when none runs)."""
    for watchdog in _active:
        watchdog.track(path)


def untrack(path: Path | str) -> None:
    """Tell the running create's watchdog a temporary is gone or published."""
    for watchdog in _active:
        watchdog.untrack(path)


class Spool:
    """The run's scratch folder beside the output, removed at the end however the run ends."""

    def __init__(self, folder: Path):
        remove_stale(folder)
        self._watchdog = Leftovers()
        _active.append(self._watchdog)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=folder))
        except BaseException:
            self._stop()
            raise
        self._watchdog.track(self.path)

    def _stop(self) -> None:
        _active.remove(self._watchdog)
        self._watchdog.close()

    def close(self) -> None:
        """Remove the spool and end the watchdog."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(folder: Path) -> None:
    """Remove the spool folders of runs that no longer exist (both they and their watchdog were killed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _SPOOL_NAME.match(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not _alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
