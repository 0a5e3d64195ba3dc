"""Worker processes of a run: they die with it, however it ends, and leave Ctrl-C to it."""

from __future__ import annotations

import os
import signal
import sys


def die_with_parent(parent: int) -> None:
    """Call first in a worker: it dies with the run (kill -9 included) and ignores Ctrl-C (the run handles it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1  # prctl(2): the signal this process gets when its parent dies
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before the line above took effect
        os._exit(1)
