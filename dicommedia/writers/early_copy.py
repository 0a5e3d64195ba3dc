"""Copy unchanged instances into the image while the inputs are still being read (create at scale).

Reading headers is Python on one core; copying data is the kernel's work. A forked copier process writes each
instance that goes on the media as it is (our File Meta, then its data set verbatim: transforms/batch.py) into
the image's data area as soon as its header is read, so the two overlap; the path tables, directories and
DICOMDIR follow the data (writers/iso9660.py). Should planning change or drop an instance that was copied,
its copy is unused and the image is written again without early copies: no stale bytes on the media.

The copier is a bare ``os.fork`` fed through a pipe (marshal): multiprocessing would cost 1.4 MB of modules.
"""

from __future__ import annotations

import marshal
import os

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import InstanceHeader
from dicommedia.processes import (
    deepen_pipe,
    fork_worker,
    read_all,
    receive_message,
    send_message,
    stop_worker,
    write_pipe,
)
from dicommedia.writers.iso9660 import FIRST_FREE, SECTOR, copy_region, write_all
from dicommedia.writers.part10 import encode_header

_BATCH = 32  # instances per message to the copier (~16 MB of CT slices; a message is ~12 KB)

Copy = tuple[bytes, str, int, int, int]  # File Meta, source path, data set offset and length, image offset


class EarlyCopy:
    """The copier process; each copied header's ``image_sector`` says where its bytes are."""

    def __init__(self, fd: int, limit: int | None = None):
        """``limit``: the media's capacity in bytes; past it nothing more is copied (the image cannot fit)."""
        jobs_in, self._jobs = os.pipe()
        self._outcomes, outcomes_out = os.pipe()
        deepen_pipe(self._jobs)
        # the image's descriptor is inherited
        self._pid = fork_worker(lambda: _copier(jobs_in, outcomes_out, fd), (self._jobs, self._outcomes))
        os.close(jobs_in)
        os.close(outcomes_out)
        self._batch: list[Copy] = []
        self.copied = 0  # instances offered and copied
        self._limit = limit
        self.first_free = FIRST_FREE

    def offer(self, header: InstanceHeader) -> None:
        """Copy an instance that planning leaves as it is (the caller knows): its bytes go in the next sectors."""
        source = header.source
        if source.path is None or header.body_offset is None:
            return
        meta = encode_header(header.sop_class_uid, header.sop_instance_uid, header.transfer_syntax_uid)
        count = source.size - header.body_offset
        if self._limit is not None and (self.first_free * SECTOR + len(meta) + count) > self._limit:
            return  # planning will say the file-set does not fit; no need to fill the disk first
        header.image_sector = self.first_free
        self.copied += 1
        self._batch.append((meta, source.path, header.body_offset, count, self.first_free * SECTOR))
        self.first_free += -(-(len(meta) + count) // SECTOR)
        if len(self._batch) >= _BATCH:
            self._send()

    def _send(self) -> None:
        os.set_blocking(self._outcomes, False)
        try:
            stopped = os.read(self._outcomes, 1 << 16)  # the copier stopped on an error: say it now
        except BlockingIOError:
            stopped = b""
        os.set_blocking(self._outcomes, True)
        if stopped:
            _raise(stopped)
        self._tell(self._batch)
        self._batch = []

    def _tell(self, message: list[Copy] | None) -> None:
        try:
            send_message(self._jobs, message)
        except BrokenPipeError:  # the copier is gone: what it said, if anything
            _raise(read_all(self._outcomes))

    def finish(self) -> None:
        """Wait until every copy is written; raise what the copier met (a full disk, an input that shrank)."""
        if self._batch:
            self._send()
        self._tell(None)
        outcome = read_all(self._outcomes)
        os.waitpid(self._pid, 0)
        self._pid = 0
        if outcome != b"done":
            _raise(outcome)

    def close(self) -> None:
        """Stop the copier if it still runs (the run failed or was interrupted); release the pipes."""
        if self._pid:
            stop_worker(self._pid)
            self._pid = 0
        for fd in (self._jobs, self._outcomes):
            try:
                os.close(fd)
            except OSError:  # closed already
                pass
        self._jobs = self._outcomes = -1


def _raise(outcome: bytes) -> None:
    """The copier's error, raised here as it was raised there (an empty outcome: it was killed)."""
    kind, *details = marshal.loads(outcome) if outcome else ("killed",)
    if kind == "media":
        raise MediaError(*details)
    if kind == "os":
        raise OSError(*details)
    raise MediaError("the process copying instances into the image stopped unexpectedly", hint="run again")


def _copier(jobs: int, outcomes: int, fd: int) -> None:
    """The copier process: batches of copies until None; its first error goes back at once, then it drains."""
    failed = False
    while (batch := receive_message(jobs)) is not None:
        if failed:
            continue
        try:
            for meta, path, offset, count, position in batch:
                write_all(fd, meta, position)
                copy_region(path, offset, count, fd, position + len(meta))
        except MediaError as exc:
            failed = True
            write_pipe(outcomes, marshal.dumps(("media", exc.message, exc.subject)))
        except OSError as exc:
            failed = True
            write_pipe(outcomes, marshal.dumps(("os", exc.errno, exc.strerror, exc.filename)))
    if not failed:
        write_pipe(outcomes, b"done")
