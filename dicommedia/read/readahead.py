"""Reconcile the head of each instance to send in a forked reader, ahead of the senders.

The sender is Python on one core and is the import's bottleneck; the peer leaves the other core partly idle
(storescp takes ~40% of it). The reader reads each job's File Meta Information and writes the local identity
into the head of its data set (read/coerce) while the senders frame and send the jobs before it: a coercion
then costs the sender a message, not a walk of the data set's header. Threads cannot do this: the walk
holds the interpreter lock the sender needs.

Whatever the reader could not do (an unreadable file, a data set it cannot rewrite, a patient without a local
identity) the sender does itself, as without a reader, and reports it. The reader checks nothing: the sender
compares the File Meta it gets to the job's record (media/verify), as for one it read.
"""

from __future__ import annotations

import os
import threading
from dataclasses import fields
from typing import TYPE_CHECKING

from dicommedia.processes import MessageStream, deepen_pipe, fork_worker, send_message, stop_worker
from dicommedia.read.jobs import Job, read_head

if TYPE_CHECKING:
    from dicommedia.read.reconcile import Outside, Reconciler, Resolution

MIN_JOBS = 16  # fewer are sent before a reader would pay for its fork (~1 ms)
_LARGEST_BATCH = 32  # jobs per message once the reader is ahead (the first go one by one, then 2, 4, ...)

# Per job: the File Meta UIDs, the data set offset, the new head and the stored bytes it replaces (None: sent as
# stored), and the outside keys (Outside's fields) the local identity was resolved from.
Head = tuple[dict[str, str], int, tuple[bytes, int] | None, tuple]


class ReadAhead:
    """The reader process for ``jobs`` in the order given; :meth:`take` what it read for a job."""

    def __init__(self, jobs: list[Job], reconciler: Reconciler):
        self._reconciler = reconciler
        self._index = {id(job): n for n, job in enumerate(jobs)}
        self._ready: dict[int, Head] = {}
        self._received = -1  # the highest job index the reader has answered for
        self._passed: set[int] = set()  # jobs the senders read themselves before the reader came to them
        self._identities: dict[tuple, tuple[Outside, Resolution]] = {}  # outside keys -> resolution, as sent
        self._lock = threading.Lock()  # senders on several associations take in turn
        results, results_out = os.pipe()
        try:
            deepen_pipe(results_out)
            self._pid = fork_worker(lambda: _reader(jobs, reconciler, results_out), (results,))
        except OSError:
            os.close(results)
            raise
        finally:
            os.close(results_out)
        self._results = MessageStream(results)

    def take(self, job: Job) -> Head | None:
        """What the reader read for ``job`` (its identity set from the outside keys); None: read it yourself.

        Never waits: a job the reader has not come to yet is the sender's to read (the reader is the faster of
        the two and soon ahead again; it is behind at the start, or when the peer has its core).
        """
        index = self._index.get(id(job), -1)
        with self._lock:
            if index > self._received and self._pid:
                self._receive()
            got = self._ready.pop(index, None)
            if got is None and index > self._received:
                self._passed.add(index)
        if got is not None:
            job.outside, job.identity = self._identity(got[3])  # type: ignore[assignment]
        return got

    def _receive(self) -> None:
        for batch in self._results.arrived():
            for number, *head in batch:  # type: ignore[attr-defined]
                if number in self._passed:
                    self._passed.discard(number)
                elif head:
                    self._ready[number] = tuple(head)  # type: ignore[assignment]
                self._received = number
        if self._results.ended:  # the reader is done (or gone): what it did not send, the senders read
            self.close()

    def _identity(self, keys: tuple) -> tuple[Outside, Resolution]:
        held = self._identities.get(keys)
        if held is None:
            from dicommedia.read.reconcile import Outside  # loaded already: the reconciler comes from there

            outside = Outside(*keys)
            held = self._identities[keys] = (outside, self._reconciler.resolve(outside))
        return held

    def close(self) -> None:
        """Stop the reader if it still runs; release the pipe."""
        if self._pid:
            stop_worker(self._pid)
            self._pid = 0
            os.close(self._results.fd)


def _reader(jobs: list[Job], reconciler: Reconciler, out: int) -> None:
    """The reader process: each job's head in order, in batches that grow once the senders have the first.

    It runs only on a core nobody else wants (SCHED_IDLE): never at the expense of the sender or the peer.
    """
    _yield_cpu()
    batch: list[tuple] = []
    size = 1
    for number, job in enumerate(jobs):
        batch.append((number, *_read(job, reconciler)))
        if len(batch) >= size:
            send_message(out, batch)
            batch, size = [], min(2 * size, _LARGEST_BATCH)
    if batch:
        send_message(out, batch)


def _outside_keys(outside: Outside) -> tuple:
    """Outside's fields as a tuple (``dataclasses.astuple`` deep-copies each: 4 us a job)."""
    return tuple(getattr(outside, f.name) for f in fields(outside))


def _yield_cpu() -> None:
    """Run only when a core is otherwise idle (Linux SCHED_IDLE), or at the lowest priority elsewhere."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _read(job: Job, reconciler: Reconciler) -> Head | tuple[()]:
    """A job's :data:`Head`, or () when the sender must read it itself (it then meets and reports the fault)."""
    try:
        meta, offset, head = read_head(job.item)
        if meta.get("TransferSyntaxUID") != job.transfer_syntax:  # sent re-encoded: the sender rewrites it whole
            return ()
        from dicommedia.read.reconcile import reconciled_head

        rewrite = reconciled_head(job, offset, head, reconciler)
    except Exception:  # whatever it is, the sender meets it again and reports it
        return ()
    if job.outside is None or not (rewrite is None or isinstance(rewrite, tuple)):
        return ()  # a patient without a local identity (a Refusal): the sender reports it
    return meta, offset, rewrite, _outside_keys(job.outside)
