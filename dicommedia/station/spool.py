"""The spool: every acknowledged instance on disk (fsync'd) until a disc holding it has been written.

Layout under the spool root:

* ``incoming/GROUP/UID.dcm``: received, waiting for its group to go idle (or for a media creation request);
* ``building/FILESETID__GROUP/``: claimed for a disc; a restart builds these again under the same File-set ID;
* ``refused/GROUP/``: instances no disc could carry, kept with a ``REASON.txt``; never dropped;
* ``tmp/``: files being written; a crash leaves at most partial files here, never acknowledged ones.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".dcm"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to a new file and fsync it (the caller renames it into place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Claimed:
    """A group taken for a disc: its folder and the File-set ID its disc gets."""

    group: str
    fileset_id: str
    folder: Path


class Spool:
    """The node's durable store of received instances, grouped in folders."""

    def __init__(self, root: Path):
        self.root = root
        self.incoming = root / "incoming"
        self.building = root / "building"
        self.refused = root / "refused"
        self.tmp = root / "tmp"
        for folder in (self.incoming, self.building, self.refused, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        for partial in self.tmp.iterdir():  # never acknowledged: the peer got no success for these
            partial.unlink()
        self._lock = threading.Lock()
        self._counter = 0

    def temp_path(self, uid: str) -> Path:
        """A private name under tmp/ for an instance being received."""
        with self._lock:
            self._counter += 1
            return self.tmp / f"{self._counter}-{threading.get_ident()}-{uid[-40:]}"

    def store(self, group: str, uid: str, data: bytes | memoryview) -> Path:
        """Write one instance durably into ``group``: file fsync'd, renamed, the folder fsync'd. Then ack."""
        temp = self.temp_path(uid)
        write_durably(temp, data)
        return self.adopt(group, uid, temp)

    def adopt(self, group: str, uid: str, temp: Path) -> Path:
        """Move a durable file from tmp/ into ``group`` and make the move durable."""
        with self._lock:  # the builder claims groups under the same lock: no file lands in a moved folder
            folder = self.incoming / group
            new = not folder.exists()
            folder.mkdir(exist_ok=True)
            target = folder / f"{uid}{SUFFIX}"
            os.replace(temp, target)
        if new:
            fsync_dir(self.incoming)
        fsync_dir(folder)
        return target

    def pending(self) -> dict[str, float]:
        """Groups waiting in incoming/ and the time their last instance arrived (file times survive restarts)."""
        out = {}
        for folder in self.incoming.iterdir():
            times = [p.stat().st_mtime for p in folder.iterdir()]
            out[folder.name] = max(times, default=folder.stat().st_mtime)
        return out

    def claim(self, group: str, fileset_id: str) -> Claimed | None:
        """Take a whole group for a disc (None when it is gone or empty)."""
        with self._lock:
            source = self.incoming / group
            if not source.is_dir():
                return None
            if not any(source.iterdir()):
                source.rmdir()
                return None
            target = self.building / f"{fileset_id}__{group}"
            os.replace(source, target)
        fsync_dir(self.building)
        fsync_dir(self.incoming)
        return Claimed(group, fileset_id, target)

    def claim_instances(self, group: str, fileset_id: str, paths: list[Path]) -> Claimed:
        """Take the given instances (wherever they wait) into one new disc folder: a media creation request."""
        target = self.building / f"{fileset_id}__{group}"
        with self._lock:
            target.mkdir()
            for path in paths:
                os.replace(path, target / path.name)
        fsync_dir(target)
        for folder in {p.parent for p in paths}:
            fsync_dir(folder)
        return Claimed(group, fileset_id, target)

    def interrupted(self) -> list[Claimed]:
        """Disc folders a previous run claimed but did not finish: built again on start."""
        out = []
        for folder in sorted(self.building.iterdir()):
            fileset_id, _, group = folder.name.partition("__")
            out.append(Claimed(group, fileset_id, folder))
        return out

    def find(self, uid: str) -> Path | None:
        """Where a received instance waits (incoming/ only: instances already on a disc are gone)."""
        name = f"{uid}{SUFFIX}"
        for folder in self.incoming.iterdir():
            candidate = folder / name
            if candidate.exists():
                return candidate
        return None

    def keep_refused(self, claimed: Claimed, files: list[Path], reason: str) -> Path:
        """Keep instances no disc could carry, with the reason; never drop them."""
        folder = self.refused / f"{claimed.fileset_id}__{claimed.group}"
        folder.mkdir(exist_ok=True)
        for path in files:
            if path.exists():
                os.replace(path, folder / path.name)
        with open(folder / "REASON.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {reason}\n")
        fsync_dir(folder)
        return folder

    def finish(self, claimed: Claimed) -> None:
        """The disc is written and catalogued: its spool folder goes."""
        shutil.rmtree(claimed.folder)
        fsync_dir(self.building)
