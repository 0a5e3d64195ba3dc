"""Copy unchanged instances into the image while the inputs are still being read (create at scale).

Reading headers is Python on one core; copying data is the kernel's work. A forked copier process writes each
instance that goes on the media as it is (our File Meta, then its data set verbatim: transforms/batch.py) into
the image's data area as soon as its header is read, so the two overlap; the path tables, directories and
DICOMDIR follow the data (writers/iso9660.py). Should planning change or drop an instance that was copied,
its copy is unused and the image is written again without early copies: no stale bytes on the media.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
from array import array
from collections.abc import Sequence
from multiprocessing.connection import Connection

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import InstanceHeader
from dicommedia.processes import die_with_parent
from dicommedia.transforms.batch import unchanged_header
from dicommedia.writers.iso9660 import FIRST_FREE, SECTOR, copy_region, write_all
from dicommedia.writers.output import VolumeFile
from dicommedia.writers.part10 import encode_header

_BATCH = 32  # instances per message to the copier (~16 MB of CT slices; a message is ~12 KB)

Copy = tuple[bytes, str, int, int, int]  # File Meta, source path, data set offset and length, image offset


class EarlyCopy:
    """The copier process and where each copied instance is: ``placed`` by id of its InstanceHeader (the
    header objects live until the image is written)."""

    def __init__(self, fd: int):
        context = multiprocessing.get_context("fork")  # the image's descriptor is inherited
        jobs, self._jobs = context.Pipe(duplex=False)
        self._outcomes, outcomes = context.Pipe(duplex=False)
        _deepen(self._jobs.fileno())
        self._process = context.Process(target=_copier, args=(jobs, outcomes, fd, os.getpid()), daemon=True)
        self._process.start()
        jobs.close()
        outcomes.close()
        self._batch: list[Copy] = []
        self.placed: dict[int, int] = {}
        self.first_free = FIRST_FREE

    def offer(self, header: InstanceHeader) -> None:
        """Copy an instance that planning leaves as it is (the caller knows): its bytes go in the next sectors."""
        source = header.source
        if source.path is None or header.body_offset is None:
            return
        meta = encode_header(header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid)
        count = source.size - header.body_offset
        self.placed[id(header)] = self.first_free
        self._batch.append((meta, source.path, header.body_offset, count, self.first_free * SECTOR))
        self.first_free += -(-(len(meta) + count) // SECTOR)
        if len(self._batch) >= _BATCH:
            self._send()

    def _send(self) -> None:
        if self._outcomes.poll():  # the copier stopped on an error: say it now, not after every input was read
            _raise(self._outcome())
        self._jobs.send(self._batch)
        self._batch = []

    def _outcome(self) -> object:
        try:
            return self._outcomes.recv()
        except EOFError:  # killed from outside (the OOM killer, a signal)
            return None

    def finish(self) -> None:
        """Wait until every copy is written; raise what the copier met (a full disk, an input that shrank)."""
        if self._batch:
            self._send()
        self._jobs.send(None)
        outcome = self._outcome()
        self._process.join()
        if outcome != "done":
            _raise(outcome)

    def placements(self, files: Sequence[VolumeFile]) -> array | None:
        """Each file's first sector if its bytes were copied (else 0); None when a copy went unused."""
        sectors = array("I", bytes(4 * len(files)))
        used = 0
        for index, f in enumerate(files):
            header = unchanged_header(f)
            sector = self.placed.get(id(header)) if header is not None else None
            if sector is not None:
                sectors[index] = sector
                used += 1
        return sectors if used == len(self.placed) else None

    def close(self) -> None:
        """Stop the copier if it still runs (the run failed or was interrupted)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._jobs.close()
        self._outcomes.close()


def _deepen(fd: int) -> None:
    """Let the reading run ahead of the copier by ~1 MiB of messages (~2,500 instances): planning then
    overlaps the last copies instead of waiting for them (Linux: F_SETPIPE_SZ, up to pipe-max-size)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (AttributeError, OSError):  # another system, or a lower limit: a shallower queue
        pass


def _raise(outcome: object) -> None:
    """The copier's error, raised here as it was raised there."""
    if isinstance(outcome, tuple) and outcome[0] == "media":
        raise MediaError(outcome[1], outcome[2])
    if isinstance(outcome, tuple) and outcome[0] == "os":
        raise OSError(outcome[1], outcome[2], outcome[3])
    raise MediaError("the process copying instances into the image stopped unexpectedly", hint="run again")


def _copier(jobs: Connection, outcomes: Connection, fd: int, parent: int) -> None:
    """The copier process: batches of copies until None; its first error goes back at once, then it drains."""
    die_with_parent(parent)
    failed = False
    while (batch := jobs.recv()) is not None:
        if failed:
            continue
        try:
            for meta, path, offset, count, position in batch:
                write_all(fd, meta, position)
                copy_region(path, offset, count, fd, position + len(meta))
        except MediaError as exc:
            failed = True
            outcomes.send(("media", exc.message, exc.subject))
        except OSError as exc:
            failed = True
            outcomes.send(("os", exc.errno, exc.strerror, exc.filename))
    if not failed:
        outcomes.send("done")
