"""Import media into a Storage SCP over C-STORE (SPEC 2.2 ``read --send AET@HOST:PORT``).

C-ECHO first; presentation contexts proposed from what the media holds, each stored transfer syntax on
its own context beside Explicit and Implicit VR Little Endian, so that an instance the peer refuses in its
own encoding is decoded and sent uncompressed. An instance whose encoding was accepted goes out as the
bytes on the media, untouched. Several associations share the work when the peer takes them; one that is
lost mid-way is replaced and the import goes on with what is left. Every failure is reported.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from dicommedia.errors import MediaError
from dicommedia.media.verify import not_part10, record_mismatch
from dicommedia.part10 import Part10Error
from dicommedia.read.jobs import (
    Existing,
    Failure,
    ImportReport,
    Job,
    SendItem,
    Skip,
    plan_import,
    read_head,
)
from dicommedia.read.network import (
    Association,
    Framer,
    Lost,
    ProposedContext,
    Refused,
    Released,
    Response,
    c_store_command,
    fill_from,
)
from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dicommedia.standard.uids import EXPLICIT_VR_LE, IMPLICIT_VR_LE, is_compressed, uid_name

if TYPE_CHECKING:
    from dicommedia.read.new_uids import NewUids  # pydicom: loaded only when --new-uids asks
    from dicommedia.read.readahead import ReadAhead  # loaded only when an import reconciles
    from dicommedia.read.reconcile import Reconciler  # loaded only when an import reconciles
    from dicommedia.read.tls import TlsOptions  # loaded only for DICOM over TLS

VERIFICATION = "1.2.840.10008.1.1"
NATIVE = (EXPLICIT_VR_LE, IMPLICIT_VR_LE)  # the fallback encodings, preferred first
MAX_CONTEXTS = 127  # PS3.8 9.3.2.2: odd context IDs 1-255 give 128 contexts; one goes to Verification
DEFAULT_ASSOCIATIONS = 4
ASYNC_WINDOW = 8  # outstanding C-STORE requests proposed per association; most peers answer 1 (synchronous)
_WORTH_ANOTHER_ASSOCIATION = 8  # instances still queued for opening one more association to pay off
_EXTRA_ASSOCIATION_TIMEOUT = 1.0  # how long a parallel association may wait for a peer that serves one at a time


def check_ae_title(title: str, what: str) -> str:
    """An AE title as PS3.5 6.2 allows it (1-16 characters, no backslash or control character), or MediaError."""
    if not title.strip() or len(title) > 16 or any(c == "\\" or ord(c) < 32 for c in title):
        raise MediaError(f"{what} {title!r} is not a valid AE title", hint="1 to 16 characters, no backslash")
    return title.strip()


class Peer(NamedTuple):
    """A Storage SCP: called AE title, host and port."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Peer:
        """Read ``AET@HOST:PORT`` (``AET@[::1]:PORT`` for IPv6)."""
        match = re.fullmatch(r"([^@]+)@(\[[0-9A-Fa-f:.]+\]|[^:@\[\]]+):(\d{1,5})", text.strip())
        if not match or not 0 < int(match[3]) < 65536:
            raise MediaError(f"--send {text!r} is not AET@HOST:PORT", hint="e.g. ORTHANC@127.0.0.1:4242")
        return cls(check_ae_title(match[1], "called AE title"), match[2].strip("[]"), int(match[3]))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


class SendOptions(NamedTuple):
    """How to talk to the peer."""

    calling_aet: str = "DICOMMEDIA"
    retries: int = 2
    timeout: float = 30.0
    tls: TlsOptions | None = None
    associations: int = DEFAULT_ASSOCIATIONS
    user: tuple[str, str | None] | None = None  # user identity: name, password (PS3.7 D.3.3.7)
    window: int = ASYNC_WINDOW


Progress = Callable[[int, int], None]  # (instances finished, bytes of them), called once per instance


def show_uid(uid: str) -> str:
    """A UID with its name when we know it."""
    name = uid_name(uid)
    return uid if name == uid else f"{name} ({uid})"


def is_stored(status: int) -> bool:
    """Success or Warning (PS3.7 C.1-C.3: 0000; 0001, 0107, 0116, Bxxx): the peer has the instance."""
    return status == 0x0000 or status in (0x0001, 0x0107, 0x0116) or status >> 12 == 0xB


def status_text(code: int) -> str:
    """The Storage Service meaning of a status code (PS3.4 B.2.3), from pynetdicom's table."""
    from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, code_to_category  # 0.5 s: only once a store fails

    return STORAGE_SERVICE_CLASS_STATUS.get(code, (code_to_category(code), "unknown status"))[1]


def plan_contexts(jobs: Sequence[Job]) -> list[list[ProposedContext]]:
    """Presentation contexts for the jobs, in groups that each fit one association.

    Per SOP class: every transfer syntax found on the media on its own context (so the peer's answer says
    which it takes), plus Explicit and Implicit VR Little Endian as the decode-and-send fallback.
    """
    syntaxes: dict[str, list[str]] = {}
    for job in jobs:
        wanted = syntaxes.setdefault(job.sop_class, list(NATIVE))
        if job.transfer_syntax not in wanted:
            wanted.insert(0, job.transfer_syntax)
    groups: list[list[ProposedContext]] = [[]]
    for sop_class, tss in syntaxes.items():
        contexts = [ProposedContext(sop_class, (ts,)) for ts in tss]
        if len(groups[-1]) + len(contexts) > MAX_CONTEXTS:
            groups.append([])
        groups[-1].extend(contexts)
    return groups


def choose_context(accepted: dict[tuple[str, str], int], sop_class: str, ts: str) -> tuple[int, str] | None:
    """The context to send an instance on: its own encoding when accepted, else the first native one."""
    for candidate in (ts, *NATIVE):
        if (sop_class, candidate) in accepted:
            return accepted[(sop_class, candidate)], candidate
    return None


def reencode(raw: bytes, stored_ts: str, send_ts: str) -> bytes:
    """The data set of a Part 10 file decoded and encoded in ``send_ts`` (pydicom, loaded only for this)."""
    from io import BytesIO

    from pydicom import dcmread
    from pydicom.uid import UID
    from pynetdicom.dsutils import encode

    from dicommedia.part10.meta import without_stray_meta

    stream = BytesIO(raw)
    ds = dcmread(without_stray_meta(stream) or stream)
    if is_compressed(stored_ts) and "PixelData" in ds:
        ds.decompress(generate_instance_uid=False)  # UIDs stay as on the media
    ts = UID(send_ts)
    data = encode(ds, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
    if data is None:
        raise ValueError(f"cannot encode the data set in {uid_name(send_ts)}")
    return data


def fill_spliced(head: bytes, slots: list[memoryview], item: SendItem, offset: int) -> None:
    """Fill ``slots`` with ``head`` and then the item's bytes from ``offset`` on (read straight into them)."""
    pos, index = 0, 0
    while index < len(slots) and len(head) - pos >= len(slots[index]):  # slots that ``head`` fills whole
        slot = slots[index]
        slot[:] = head[pos : pos + len(slot)]
        pos, index = pos + len(slot), index + 1
    rest = slots[index:]
    if rest and pos < len(head):  # the slot where ``head`` ends and the media's bytes begin
        n = len(head) - pos
        rest[0][:n] = head[pos:]
        rest[0] = rest[0][n:]
    if rest:
        item.read_into(offset, rest)


class _Link:
    """One association with the peer, with as many requests outstanding as the peer's window allows."""

    def __init__(self, peer: Peer, options: SendOptions, contexts: list[ProposedContext]):
        self.peer = peer
        self.options = options
        self.contexts = contexts
        self.assoc: Association | None = None
        self.stored = 0  # responses received: a link that never stored anything does not count as used
        self.framer = Framer()

    @property
    def accepted(self) -> dict[tuple[str, str], int]:
        """Accepted (abstract syntax, transfer syntax) -> presentation context ID."""
        return self.assoc.accepted if self.assoc else {}

    def open(self, timeout: float) -> None:
        """Associate; raise :class:`Refused` with the reason when the peer will not have us."""
        tls = self.options.tls.context() if self.options.tls else None
        self.assoc = Association.request(
            self.peer.host,
            self.peer.port,
            self.options.calling_aet,
            self.peer.ae_title,
            [ProposedContext(VERIFICATION, (IMPLICIT_VR_LE,)), *self.contexts],
            (IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME),
            timeout,
            self.options.timeout,
            tls,
            self.options.user,
            self.options.window,
        )

    def echo(self) -> None:
        """C-ECHO (PS3.7 9.1.5): a peer that does not offer Verification is let through; a failed echo is not."""
        assert self.assoc is not None
        try:
            rsp = self.assoc.echo()
        except Lost as exc:
            raise Refused(f"no answer to C-ECHO ({exc})") from None
        if rsp is not None and (rsp.status is None or not is_stored(rsp.status)):
            raise Refused(
                "no answer to C-ECHO" if rsp.status is None else f"C-ECHO failed with status 0x{rsp.status:04X}"
            )

    def request(self, ready: _Ready) -> None:
        """Write one C-STORE-RQ with its data set; raise :class:`Lost` if the association is gone."""
        if self.assoc is None or not self.assoc.is_open:
            raise Lost("association closed")
        self.assoc.send(ready.message)

    def response(self) -> Response:
        """Wait for the next C-STORE-RSP; raise :class:`Lost` if the association breaks."""
        assert self.assoc is not None
        rsp = self.assoc.receive()
        if rsp.message_id is None or rsp.status is None:
            raise Lost("the peer answered without a Message ID Being Responded To or a Status")
        self.stored += 1
        return rsp

    @property
    def window(self) -> int:
        """How many requests may be outstanding on this association (PS3.7 D.3.3.3)."""
        return self.assoc.window if self.assoc else 1

    def close(self) -> None:
        """Release the association."""
        assoc, self.assoc = self.assoc, None
        if assoc is not None:
            assoc.release()

    def abort(self) -> None:
        """Drop the association."""
        assoc, self.assoc = self.assoc, None
        if assoc is not None:
            assoc.abort()


@dataclass
class _Ready:
    """A job ready to go on a given link: its C-STORE-RQ framed as P-DATA-TF PDUs, data set included."""

    job: Job
    message_id: int
    message: memoryview  # in one of the link's two buffers (see Framer)
    data_length: int


class _Importer:
    """Workers share one queue of jobs; each holds one association and replaces it when it breaks.

    A worker reads, reconciles and encodes its next instance while the peer stores the previous one.
    """

    def __init__(
        self,
        peer: Peer,
        options: SendOptions,
        contexts: list[ProposedContext],
        progress: Progress | None,
        reconciler: Reconciler | None = None,
        new_uids: NewUids | None = None,
        ahead: ReadAhead | None = None,
    ):
        self.peer = peer
        self.reconciler = reconciler
        self.new_uids = new_uids
        self.ahead = ahead
        self.options = options
        self.contexts = contexts
        self.progress = progress
        self.queue: deque[Job] = deque()
        self.lock = threading.Lock()  # guards the queue and the report
        self.report = ImportReport()
        self.last_error = ""
        self.used = 0  # associations that carried at least one instance

    def run(self, jobs: list[Job], first: _Link) -> None:
        """Send every job over ``first`` (already open) and, while the peer takes them, more associations."""
        self.queue.extend(jobs)
        threads = [threading.Thread(target=self._work, args=(first,), daemon=True)]
        threads[0].start()
        # One more association at a time, only while the peer accepts them promptly: a peer that serves one
        # association at a time (DCMTK storescp without --fork) leaves the second waiting, and we stop there.
        for _ in range(self.options.associations - 1):
            if len(self.queue) < _WORTH_ANOTHER_ASSOCIATION:
                break
            link = _Link(self.peer, self.options, self.contexts)
            try:
                link.open(min(self.options.timeout, _EXTRA_ASSOCIATION_TIMEOUT))
            except Refused:
                break
            threads.append(threading.Thread(target=self._work, args=(link,), daemon=True))
            threads[-1].start()
        for t in threads:
            t.join()
        reason = f"not sent: {self.last_error}" if self.last_error else "not sent"
        for job in self.queue:  # left over only when no association could be had any more
            self._fail(job, None, reason)
        self.queue.clear()

    def _next(self) -> Job | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def _requeue(self, job: Job) -> None:
        with self.lock:
            self.queue.appendleft(job)

    def _finish(self, job: Job) -> None:
        if self.progress:
            self.progress(1, job.item.size)

    def _fail(self, job: Job, status: int | None, reason: str) -> None:
        with self.lock:
            self.report.failed.append(Failure(job.sop_instance, job.file_id, status, reason))
        self._finish(job)

    def _reconnect(self) -> _Link | None:
        """A replacement link, tried ``retries + 1`` times."""
        for attempt in range(self.options.retries + 1):
            if attempt:
                time.sleep(min(0.5 * attempt, 2.0))
            link = _Link(self.peer, self.options, self.contexts)
            try:
                link.open(self.options.timeout)
            except Refused as exc:
                self.last_error = str(exc)
                continue
            return link
        return None

    def _work(self, link: _Link | None) -> None:
        ready: _Ready | None = None  # prepared for ``link``, not sent yet
        inflight: deque[_Ready] = deque()  # sent, awaiting their responses (at most the link's window)
        try:
            while True:
                if link is None:
                    if ready is not None:  # prepared for the lost link: its context IDs may not hold any more
                        self._requeue(ready.job)
                        ready = None
                    if not self.queue:
                        return
                    link = self._reconnect()
                    if link is None:
                        return
                while len(inflight) < link.window:
                    if ready is None:
                        job = self._next()
                        if job is None:
                            break
                        ready = self._prepare(link, job)
                        if ready is None:
                            continue
                    ready.job.attempts += 1
                    inflight.append(ready)
                    ready = None
                    try:
                        link.request(inflight[-1])
                    except Lost as exc:
                        self._lost(link, inflight, exc)
                        link = None
                        break
                if link is None:
                    continue
                if not inflight:
                    return
                if ready is None:  # read and frame the next instance while the peer works
                    following = self._next()
                    ready = self._prepare(link, following) if following else None
                try:
                    rsp = link.response()
                    answered = next((r for r in inflight if r.message_id == rsp.message_id), None)
                    if answered is None:
                        raise Lost(f"the peer answered message {rsp.message_id}, which is not outstanding")
                except Lost as exc:
                    self._lost(link, inflight, exc)
                    link = None
                    continue
                inflight.remove(answered)
                self._settle(answered, rsp)
        finally:
            if link is not None:
                self._count(link)
                link.close()

    def _count(self, link: _Link) -> None:
        if link.stored:
            with self.lock:
                self.used += 1

    def _lost(self, link: _Link, inflight: deque[_Ready], exc: Lost) -> None:
        """The association broke with ``inflight`` unanswered: drop it, and retry or report each of them."""
        self._count(link)
        link.abort()
        self.last_error = str(exc)
        while inflight:
            job = inflight.pop().job  # the last first: requeued at the front, they go again in order
            if isinstance(exc, Released) and not job.released:
                job.released = True  # a peer may end an association at any time (PS3.8 7.2): that try is free
                job.attempts -= 1
            self._retry_or_fail(job, None, str(exc))

    def _prepare(self, link: _Link, job: Job) -> _Ready | None:
        """Frame the job's C-STORE-RQ for ``link``, the data set read from the media straight into the PDUs
        (decoded and re-encoded only when the peer refused the stored encoding); None when that cannot be done.

        The File Meta Information read here is also the check that the file is the instance its record names
        (see :mod:`dicommedia.media.verify`): one that is not is refused by name, never sent.
        """
        chosen = choose_context(link.accepted, job.sop_class, job.transfer_syntax)
        if chosen is None:
            why = link.assoc.rejected.get(job.sop_class) if link.assoc else None
            self._fail(
                job,
                None,
                f"the peer accepted no presentation context for {show_uid(job.sop_class)} "
                f"in {show_uid(job.transfer_syntax)} nor uncompressed" + (f" ({why})" if why else ""),
            )
            return None
        context_id, send_ts = chosen
        assert link.assoc is not None
        ahead = self.ahead.take(job) if self.ahead else None
        if ahead is not None:
            meta, offset, rewrite, _ = ahead
        else:
            try:
                meta, offset, head = read_head(job.item)
            except Part10Error as exc:
                self._fail(job, None, not_part10(exc))
                return None
            except Exception as exc:  # unreadable media file: report it, never crash the import
                self._fail(job, None, f"cannot read the file: {exc}")
                return None
            rewrite = None
        mismatch = record_mismatch(job.item.sop_instance_uid, meta)
        if mismatch is not None:
            self._fail(job, None, mismatch)
            return None
        stored_ts = meta["TransferSyntaxUID"]
        if stored_ts != send_ts or self.new_uids is not None:
            return self._prepare_whole(link, job, context_id, offset, stored_ts, send_ts)
        message_id = link.assoc.next_message_id()
        command = c_store_command(message_id, job.sop_class, job.sop_instance)
        try:
            if ahead is None and self.reconciler:
                from dicommedia.read.reconcile import local_head  # loaded already: the reconciler comes from there

                rewrite = local_head(job, offset, head, self.reconciler)
            if isinstance(rewrite, (Failure, Skip)):
                self._settle_outcome(job, rewrite)
                return None
            local, cut = rewrite if rewrite else (b"", 0)
            length = len(local) + job.item.size - offset - cut
            message, slots = link.framer.frame(context_id, command, length, link.assoc.max_pdu)
            fill_spliced(local, slots, job.item, offset + cut)
        except Exception as exc:  # unreadable media file: report it, never crash the import
            self._fail(job, None, f"cannot read the file: {exc}")
            return None
        return _Ready(job, message_id, message, length)

    def _prepare_whole(
        self, link: _Link, job: Job, context_id: int, offset: int, stored_ts: str, send_ts: str
    ) -> _Ready | None:
        """:meth:`_prepare` with the data set held in memory: to re-encode it, or to give it new UIDs."""
        from dicommedia.read.coerce import CoercionError
        from dicommedia.read.reconcile import is_explicit, local_dataset

        assert link.assoc is not None
        try:
            with job.item.open() as fp:
                raw = fp.read()
        except Exception as exc:  # unreadable media file: report it, never crash the import
            self._fail(job, None, f"cannot read the file: {exc}")
            return None
        try:
            data = raw[offset:] if stored_ts == send_ts else reencode(raw, stored_ts, send_ts)
        except Exception as exc:  # a codec that cannot decode this object
            self._fail(
                job, None, f"cannot decode {show_uid(job.transfer_syntax)} to send it as {uid_name(send_ts)}: {exc}"
            )
            return None
        local = local_dataset(job, data, send_ts, self.reconciler) if self.reconciler else data
        if isinstance(local, (Failure, Skip)):
            self._settle_outcome(job, local)
            return None
        data = local
        if self.new_uids is not None:
            try:
                data, job.sop_instance = self.new_uids.dataset(data, not is_explicit(send_ts))
            except CoercionError as exc:
                self._fail(job, None, str(exc))
                return None
        message_id = link.assoc.next_message_id()
        command = c_store_command(message_id, job.sop_class, job.sop_instance)
        message, slots = link.framer.frame(context_id, command, len(data), link.assoc.max_pdu)
        fill_from(data, slots)
        return _Ready(job, message_id, message, len(data))

    def _settle(self, ready: _Ready, rsp: Response) -> None:
        """Count a stored instance, or retry or report a refused one (PS3.4 B.2.3 statuses)."""
        assert rsp.status is not None
        if is_stored(rsp.status):
            with self.lock:
                self.report.sent += 1
                self.report.warnings += rsp.status != 0x0000
                self.report.bytes_sent += ready.data_length
            self._finish(ready.job)
            return
        reason = status_text(rsp.status) + (f": {rsp.error_comment}" if rsp.error_comment else "")
        self._retry_or_fail(ready.job, rsp.status, reason)

    def _settle_outcome(self, job: Job, outcome: Failure | Skip) -> None:
        """An instance with no local identity, or one that cannot take it: skipped or failed, never sent."""
        with self.lock:
            if isinstance(outcome, Failure):
                self.report.failed.append(outcome)
            else:
                self.report.skipped_instances.append(outcome)
        self._finish(job)

    def _retry_or_fail(self, job: Job, status: int | None, reason: str) -> None:
        if job.attempts <= self.options.retries:
            self._requeue(job)
        else:
            self._fail(job, status, reason)


def _jobs_of(contexts: list[ProposedContext], jobs: list[Job]) -> list[Job]:
    """The jobs whose SOP Class these contexts propose."""
    classes = {cx.abstract_syntax for cx in contexts}
    return [job for job in jobs if job.sop_class in classes]


def _read_ahead(jobs: list[Job], reconciler: Reconciler | None, new_uids: NewUids | None) -> ReadAhead | None:
    """A reader for the jobs when they are reconciled, enough to pay for it and only their heads change (not with
    new UIDs). A plain send reads its heads itself: on 2 cores, the peer needs the other one more than we do."""
    if reconciler is None or new_uids is not None or not hasattr(os, "fork"):
        return None
    from dicommedia.read.readahead import MIN_JOBS, ReadAhead

    if len(jobs) < MIN_JOBS:
        return None
    try:
        return ReadAhead(jobs, reconciler)
    except OSError:  # no process to spare (fork: EAGAIN, ENOMEM): the senders read for themselves
        return None


def _send_group(
    index: int,
    contexts: list[ProposedContext],
    group_jobs: list[Job],
    peer: Peer,
    options: SendOptions,
    progress: Progress | None,
    reconciler: Reconciler | None,
    new_uids: NewUids | None,
    ahead: ReadAhead | None,
    report: ImportReport,
) -> None:
    """Send the jobs of one group of presentation contexts over their own associations, into ``report``."""
    first = _Link(peer, options, contexts)
    try:
        first.open(options.timeout)
        if index == 0:
            first.echo()
    except Refused as exc:
        first.abort()
        if index == 0:
            raise MediaError(
                str(exc), subject=str(peer), hint="check the AE title, host, port and that the SCP runs"
            ) from None
        for job in group_jobs:  # earlier groups went: report this one's instances rather than stop
            report.failed.append(Failure(job.sop_instance, job.file_id, None, f"not sent: {exc}"))
            if progress:
                progress(1, job.item.size)
        return
    if not group_jobs:
        first.close()
        return
    importer = _Importer(peer, options, contexts, progress, reconciler, new_uids, ahead)
    importer.run(group_jobs, first)
    report.sent += importer.report.sent
    report.warnings += importer.report.warnings
    report.bytes_sent += importer.report.bytes_sent
    report.failed.extend(importer.report.failed)
    report.skipped_instances.extend(importer.report.skipped_instances)
    report.associations += importer.used


def import_media(
    items: Iterable[SendItem],
    peer: Peer,
    options: SendOptions = SendOptions(),
    progress: Progress | None = None,
    reconciler: Reconciler | None = None,
    existing: Existing | None = None,
    new_uids: NewUids | None = None,
) -> ImportReport:
    """C-ECHO, then C-STORE every item into ``peer``, coerced as ``reconciler`` says (with ``new_uids``, under new
    UIDs) and leaving out what ``existing`` finds on the peer; raise MediaError when the peer cannot be reached."""
    check_ae_title(options.calling_aet, "--calling-aet")
    started = time.perf_counter()
    # A worklist is asked before the first association; a patient map is applied as each instance goes.
    plan = plan_import(items, reconciler if reconciler and reconciler.remote else None, existing, progress)
    report, jobs = plan.report, plan.jobs
    groups = plan_contexts(jobs)
    group_jobs = [_jobs_of(contexts, jobs) for contexts in groups] if len(groups) > 1 else [jobs]
    ahead = _read_ahead([job for part in group_jobs for job in part], reconciler, new_uids)
    try:
        for index, (contexts, part) in enumerate(zip(groups, group_jobs)):
            _send_group(index, contexts, part, peer, options, progress, reconciler, new_uids, ahead, report)
    finally:
        if ahead:
            ahead.close()
    report.seconds = time.perf_counter() - started
    return report
