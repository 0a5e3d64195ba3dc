"""Finding outside tools: plain functions shared by the test fixtures and the bench scripts (no pytest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# pynetdicom installs Python scripts under DCMTK's names; they may come first on PATH.
SHADOWED_BY_PYNETDICOM = {"storescp", "storescu", "echoscu", "findscu", "movescu", "getscu", "qrscp"}


def find_tool(name: str) -> str | None:
    """Path of an outside tool; for DCMTK's network tools, the first native executable of that name."""
    if name not in SHADOWED_BY_PYNETDICOM:
        return shutil.which(name)
    for folder in os.get_exec_path():
        candidate = Path(folder) / name
        try:
            with open(candidate, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    return str(candidate)
        except OSError:
            continue
    return None


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc, children of children included)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += kids - found
            found |= kids
    return found


def ctrl_c_default() -> None:
    """``preexec_fn`` for a run a test interrupts: SIGINT back to its default, which a shell's background job
    (``pytest ... &``) would otherwise hand down ignored, and Python then keeps ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
