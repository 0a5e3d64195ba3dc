"""The spool: every acknowledged instance on disk (fsync'd) until a disc holding it has been written.

Layout under the spool root:

* ``incoming/GROUP/UID.dcm``: received, waiting for its group to go idle (or for a media creation request);
* ``building/FILESETID__GROUP/``: claimed for a disc; a restart builds these again under the same File-set ID;
* ``refused/GROUP/``: instances no disc could carry, kept with a ``REASON.txt``; never dropped;
* ``tmp/``: files being written; a crash leaves at most partial files here, never acknowledged ones;
* ``journal/NAME.jnl``: one append-only file per fast-path association (station/receive.py). Each instance is one
  record made durable by a single fdatasync before its success status; when the association ends the records
  become files in ``incoming/`` (one sync for all of them) and the journal goes. A restart does the same for the
  journals a crash left, dropping a torn last record (never acknowledged: its fdatasync had not returned).
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".dcm"
JOURNAL_SUFFIX = ".jnl"
# A journal record: magic, data length, meta length, CRC-32 of data + meta; then the data (a Part 10 file), then
# the meta ("GROUP\nUID"). The header is written last: a record is whole only if magic, lengths and CRC agree.
_RECORD = struct.Struct("<8sQII")
_MAGIC = b"DMJRNL01"
_COPY = 1 << 20


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


def safe_name(name: str) -> bool:
    """Whether a group or SOP Instance UID can name a file in the spool."""
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\\0\n")


class Journal:
    """One association's append-only record of received instances; ``commit`` returns once a record is durable."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fsync_dir(path.parent)  # the journal's own name, made durable once per association
        self.end = 0  # where the next record starts: everything before it is committed
        self.pos = 0
        self.crc = 0

    def begin(self) -> None:
        """Start a record (an uncommitted one before it is overwritten)."""
        self.pos, self.crc = self.end + _RECORD.size, 0

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes of the record's data."""
        view = memoryview(data)
        self.crc = zlib.crc32(view, self.crc)
        while view:
            written = os.pwrite(self.fd, view, self.pos)
            view, self.pos = view[written:], self.pos + written

    def commit(self, group: str, uid: str) -> None:
        """Seal the record with its group and UID and make it durable: one fdatasync (no file or name created)."""
        start, data_length = self.end, self.pos - self.end - _RECORD.size
        meta = f"{group}\n{uid}".encode()
        self.write(meta)
        os.pwrite(self.fd, _RECORD.pack(_MAGIC, data_length, len(meta), self.crc), start)
        os.fdatasync(self.fd)
        self.end = self.pos

    def discard(self) -> None:
        """Drop the record being written (not acknowledged): none of its bytes stay to be read as a record."""
        os.ftruncate(self.fd, self.end)
        self.pos = self.end

    def copy_data(self, target: Path) -> None:
        """The data of the record being written, as a file (to parse what the first bytes did not tell)."""
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            offset = self.end + _RECORD.size
            while offset < self.pos:
                copied = os.copy_file_range(self.fd, out, self.pos - offset, offset)
                if not copied:
                    break
                offset += copied
        finally:
            os.close(out)

    def close(self) -> None:
        """Close the file (the records stay until ``Spool.drain``)."""
        os.close(self.fd)


@dataclass(frozen=True)
class JournalRecord:
    """A whole record of a journal: where its data lies, and the group and UID it was received for."""

    group: str
    uid: str
    offset: int
    length: int


def journal_records(fd: int) -> Iterator[JournalRecord]:
    """The whole records of a journal, in order; reading stops at the first torn or missing one."""
    size, pos = os.fstat(fd).st_size, 0
    while pos + _RECORD.size <= size:
        magic, data_length, meta_length, crc = _RECORD.unpack(os.pread(fd, _RECORD.size, pos))
        start = pos + _RECORD.size
        end = start + data_length + meta_length
        if magic != _MAGIC or end > size:  # every length is bounded by the file
            return
        check, at = 0, start
        while at < end:
            chunk = os.pread(fd, min(_COPY, end - at), at)
            check, at = zlib.crc32(chunk, check), at + len(chunk)
        meta = os.pread(fd, meta_length, start + data_length).decode("utf-8", "replace")
        group, _, uid = meta.partition("\n")
        if check != crc or not safe_name(group) or not safe_name(uid):
            return
        yield JournalRecord(group, uid, start, data_length)
        pos = end


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
        self.journals = root / "journal"
        for folder in (self.incoming, self.building, self.refused, self.tmp, self.journals):
            folder.mkdir(parents=True, exist_ok=True)
        for partial in self.tmp.iterdir():  # never acknowledged: the peer got no success for these
            partial.unlink()
        self._lock = threading.Lock()
        self._counter = 0
        self._journal_names = itertools.count(1)
        for left in sorted(self.journals.glob(f"*{JOURNAL_SUFFIX}")):  # a crash left these: their records count
            self.drain(left)

    def open_journal(self, name: str) -> Journal:
        """A new journal for one association."""
        return Journal(self.journals / f"{name}-{next(self._journal_names)}{JOURNAL_SUFFIX}")

    def drain(self, path: Path) -> Counter[str]:
        """Turn a journal's whole records into files in ``incoming/``, durably, then remove it: instances by group.

        Groups are not claimed while their association is open, so no record is drained after its disc was made.
        """
        fd = os.open(path, os.O_RDONLY)
        landed: Counter[str] = Counter()
        try:
            for record in journal_records(fd):
                temp = self.temp_path(record.uid)
                out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    offset, left = record.offset, record.length
                    while left:
                        copied = os.copy_file_range(fd, out, left, offset)
                        if not copied:
                            raise OSError(f"{path}: journal shorter than its record")
                        offset, left = offset + copied, left - copied
                finally:
                    os.close(out)
                with self._lock:
                    folder = self.incoming / record.group
                    folder.mkdir(exist_ok=True)
                    os.replace(temp, folder / f"{record.uid}{SUFFIX}")
                landed[record.group] += 1
        finally:
            os.close(fd)
        os.sync()  # every file and name above on stable storage with one flush, before the journal goes
        path.unlink()
        fsync_dir(self.journals)
        return landed

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
