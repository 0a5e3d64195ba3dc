"""Worker processes of a run: they die with it, however it ends, and leave Ctrl-C to it."""

from __future__ import annotations

import fcntl
import marshal
import os
import signal
import struct
import sys
from collections.abc import Callable

_LENGTH = struct.Struct("<I")  # the length before each message on a pipe


def die_with_parent(parent: int) -> None:
    """Call first in a worker: it dies with the run (kill -9 included) and ignores Ctrl-C (the run handles it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1  # prctl(2): the signal this process gets when its parent dies
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before the line above took effect
        os._exit(1)


def fork_worker(body: Callable[[], None], close: tuple[int, ...] = ()) -> int:
    """Fork a worker that closes ``close`` (the parent's pipe ends), runs ``body`` and exits; its process ID.

    The worker never returns into the caller's code: it ends with ``os._exit`` (1 when ``body`` raised), so
    neither the parent's ``finally`` blocks nor its buffered output run twice.
    """
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            for fd in close:
                os.close(fd)
            die_with_parent(parent)
            body()
            status = 0
        finally:
            os._exit(status)
    return pid


def stop_worker(pid: int) -> None:
    """Kill a worker that may still run, and reap it."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended already: reaped below
        pass
    os.waitpid(pid, 0)


def deepen_pipe(fd: int) -> None:
    """Let a writer run ~1 MiB of messages ahead of its reader (Linux: F_SETPIPE_SZ, up to pipe-max-size)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):  # another system, or a lower limit: a shallower queue
        pass


def send_message(fd: int, value: object) -> None:
    """Write ``value`` (marshal: built-in types only) as one length-prefixed message."""
    data = marshal.dumps(value)
    write_pipe(fd, _LENGTH.pack(len(data)) + data)


def receive_message(fd: int) -> object:
    """The next message :func:`send_message` wrote; EOFError when the writer is gone."""
    return marshal.loads(read_exactly(fd, _LENGTH.unpack(read_exactly(fd, _LENGTH.size))[0]))


def write_pipe(fd: int, data: bytes) -> None:
    """Write all of ``data``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes; EOFError when the writer closes first."""
    parts, left = [], size
    while left:
        part = os.read(fd, left)
        if not part:
            raise EOFError
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_all(fd: int) -> bytes:
    """Everything until the writer closes."""
    parts = []
    while part := os.read(fd, 1 << 16):
        parts.append(part)
    return b"".join(parts)


class MessageStream:
    """The messages a worker writes with :func:`send_message`, taken as they arrive, never waiting for one."""

    def __init__(self, fd: int):
        os.set_blocking(fd, False)
        self.fd = fd
        self.ended = False  # the worker closed its end: every message it wrote was taken
        self._buffer = bytearray()

    def arrived(self) -> list[object]:
        """The messages complete so far (none yet: an empty list)."""
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return []
        if not chunk:
            self.ended = True
            return []
        buffer = self._buffer
        buffer += chunk
        messages, pos = [], 0
        while len(buffer) - pos >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer, pos)
            end = pos + _LENGTH.size + size
            if end > len(buffer):
                break
            messages.append(marshal.loads(memoryview(buffer)[pos + _LENGTH.size : end]))
            pos = end
        del buffer[:pos]
        return messages
