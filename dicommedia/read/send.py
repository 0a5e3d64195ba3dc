"""Import media into a Storage SCP over C-STORE (SPEC 2.2 ``read --send AET@HOST:PORT``).

C-ECHO first; presentation contexts proposed from what the media holds, each stored transfer syntax on
its own context beside Explicit and Implicit VR Little Endian, so that an instance the peer refuses in its
own encoding is decoded and sent uncompressed. An instance whose encoding was accepted goes out as the
bytes on the media, untouched. Several associations share the work when the peer takes them; one that is
lost mid-way is replaced and the import goes on with what is left. Every failure is reported.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import BinaryIO, Protocol

from pydicom import dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS, code_to_category

from dicommedia.errors import MediaError
from dicommedia.read.network import TunedAE, c_store_command, write_message
from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)  # the fallback encodings, preferred first
MAX_CONTEXTS = 127  # PS3.8 9.3.2.2: odd context IDs 1-255 give 128 contexts; one goes to Verification
DEFAULT_ASSOCIATIONS = 4
_WORTH_ANOTHER_ASSOCIATION = 8  # instances still queued for opening one more association to pay off
_EXTRA_ASSOCIATION_TIMEOUT = 1.0  # how long a parallel association may wait for a peer that serves one at a time


class SendItem(Protocol):
    """What the importer needs of an instance on the media (``dicommedia.media.MediaFile`` fits)."""

    file_id: tuple[str, ...]
    size: int
    sop_instance_uid: str | None
    sop_class_uid: str | None
    transfer_syntax_uid: str | None

    def open(self) -> BinaryIO: ...


def check_ae_title(title: str, what: str) -> str:
    """An AE title as PS3.5 6.2 allows it (1-16 characters, no backslash or control character), or MediaError."""
    if not title.strip() or len(title) > 16 or any(c == "\\" or ord(c) < 32 for c in title):
        raise MediaError(f"{what} {title!r} is not a valid AE title", hint="1 to 16 characters, no backslash")
    return title.strip()


@dataclass(frozen=True)
class Peer:
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


@dataclass(frozen=True)
class TlsOptions:
    """DICOM over TLS (PS3.15 B.1): the CA that vouches for the peer, and our own certificate and key."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the peer (system CAs unless ``ca`` is given)."""
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
            if self.cert:
                ctx.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise MediaError(f"cannot load the TLS certificates: {exc}", hint="check --tls-ca, --tls-cert, --tls-key") from None
        return ctx


@dataclass(frozen=True)
class SendOptions:
    """How to talk to the peer."""

    calling_aet: str = "DICOMMEDIA"
    retries: int = 2
    timeout: float = 30.0
    tls: TlsOptions | None = None
    associations: int = DEFAULT_ASSOCIATIONS


@dataclass(frozen=True)
class Failure:
    """An instance that did not reach the peer: its last status (None when no response) and why."""

    sop_instance_uid: str | None
    file_id: str | None
    status: int | None
    reason: str

    def as_json(self) -> dict:
        """The SPEC 2.2 form; the status as a 0xXXXX string."""
        status = None if self.status is None else f"0x{self.status:04X}"
        return {"sop_instance_uid": self.sop_instance_uid, "file_id": self.file_id, "status": status, "reason": self.reason}


@dataclass
class ImportReport:
    """What an import did."""

    sent: int = 0
    failed: list[Failure] = field(default_factory=list)
    skipped: int = 0
    warnings: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    associations: int = 0

    def as_json(self) -> dict:
        """The SPEC 2.2 import report."""
        return {"sent": self.sent, "failed": [f.as_json() for f in self.failed], "skipped": self.skipped}


Progress = Callable[[int, int], None]  # (instances finished, bytes of them), called once per instance


@dataclass
class _Job:
    item: SendItem
    sop_class: UID
    sop_instance: UID
    transfer_syntax: UID
    attempts: int = 0

    @property
    def file_id(self) -> str:
        return "/".join(self.item.file_id)


class _Lost(Exception):
    """The association broke (aborted, closed or silent past the timeout) while an instance was in flight."""


class _Refused(Exception):
    """An association could not be established: the reason, in words."""


def show_uid(uid: str) -> str:
    """A UID with its name when pydicom knows it."""
    name = UID(uid).name
    return uid if name == uid else f"{name} ({uid})"


def status_text(code: int) -> str:
    """The Storage Service meaning of a status code (PS3.4 B.2.3)."""
    return STORAGE_SERVICE_CLASS_STATUS.get(code, (code_to_category(code), "unknown status"))[1]


def plan_contexts(jobs: Sequence[_Job]) -> list[list[PresentationContext]]:
    """Presentation contexts for the jobs, in groups that each fit one association.

    Per SOP class: every transfer syntax found on the media on its own context (so the peer's answer says
    which it takes), plus Explicit and Implicit VR Little Endian as the decode-and-send fallback.
    """
    syntaxes: dict[UID, list[UID]] = {}
    for job in jobs:
        wanted = syntaxes.setdefault(job.sop_class, list(NATIVE))
        if job.transfer_syntax not in wanted:
            wanted.insert(0, job.transfer_syntax)
    groups: list[list[PresentationContext]] = [[]]
    for sop_class, tss in syntaxes.items():
        contexts = [build_context(sop_class, ts) for ts in tss]
        if len(groups[-1]) + len(contexts) > MAX_CONTEXTS:
            groups.append([])
        groups[-1].extend(contexts)
    return groups


def choose_context(accepted: dict[tuple[str, str], int], sop_class: str, ts: str) -> tuple[int, UID] | None:
    """The context to send an instance on: its own encoding when accepted, else the first native one."""
    for candidate in (ts, *NATIVE):
        if (sop_class, candidate) in accepted:
            return accepted[(sop_class, candidate)], UID(candidate)
    return None


_META_UIDS = {0x0002: "MediaStorageSOPClassUID", 0x0003: "MediaStorageSOPInstanceUID", 0x0010: "TransferSyntaxUID"}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def split_part10(raw: bytes) -> tuple[dict[str, str], int]:
    """The File Meta UIDs and the offset of the data set in a Part 10 file (PS3.10 7.1).

    Group 0002 is always Explicit VR Little Endian (PS3.5 7.1.2): walked here, as pydicom takes 0.4 ms a file.
    """
    if raw[128:132] != b"DICM":
        raise ValueError("no 'DICM' after a 128-byte preamble: not a Part 10 file")
    meta: dict[str, str] = {}
    pos = 132
    while pos + 8 <= len(raw) and raw[pos:pos + 2] == b"\x02\x00":
        (element,) = struct.unpack_from("<H", raw, pos + 2)
        if raw[pos + 4:pos + 6] in _LONG_VRS:
            (length,), start = struct.unpack_from("<I", raw, pos + 8), pos + 12
        else:
            (length,), start = struct.unpack_from("<H", raw, pos + 6), pos + 8
        if element in _META_UIDS:
            meta[_META_UIDS[element]] = raw[start:start + length].decode("ascii", "replace").rstrip("\0 ")
        pos = start + length
    if pos > len(raw) or "TransferSyntaxUID" not in meta:
        raise ValueError("truncated File Meta Information, or no Transfer Syntax UID in it")
    return meta, pos


def encode_for(raw: bytes, offset: int, stored_ts: UID, send_ts: UID) -> bytes | memoryview:
    """The data set bytes to send in ``send_ts``: the stored bytes when they match, else decoded and re-encoded."""
    if send_ts == stored_ts:
        return memoryview(raw)[offset:]
    ds = dcmread(BytesIO(raw))
    if stored_ts.is_encapsulated and "PixelData" in ds:
        ds.decompress(generate_instance_uid=False)  # UIDs stay as on the media
    data = encode(ds, send_ts.is_implicit_VR, send_ts.is_little_endian, send_ts.is_deflated)
    if data is None:
        raise ValueError(f"cannot encode the data set in {send_ts.name}")
    return data


class _Link:
    """One association with the peer, sending one instance at a time."""

    def __init__(self, peer: Peer, options: SendOptions, contexts: list[PresentationContext]):
        self.peer = peer
        self.options = options
        self.contexts = contexts
        self.assoc: Association | None = None
        self.accepted: dict[tuple[str, str], int] = {}
        self._message_id = 0
        self.stored = 0  # responses received: a link that never stored anything does not count as used

    def open(self, timeout: float) -> None:
        """Associate; raise :class:`_Refused` with the reason when the peer will not have us."""
        ae = TunedAE(ae_title=self.options.calling_aet)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        ae.acse_timeout = ae.connection_timeout = timeout
        ae.dimse_timeout = ae.network_timeout = self.options.timeout
        answers: list = []
        tls = self.options.tls
        tls_args = (tls.context(), self.peer.host) if tls else None
        assoc = ae.associate(
            self.peer.host, self.peer.port, contexts=[build_context(Verification), *self.contexts],
            ae_title=self.peer.ae_title, max_pdu=0, tls_args=tls_args,
            evt_handlers=[(evt.EVT_ACSE_RECV, lambda event: answers.append(event.primitive))],
        )
        if not assoc.is_established:
            raise _Refused(self._why_not(assoc, answers, timeout))
        self.assoc = assoc
        self.accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]): cx.context_id for cx in assoc.accepted_contexts}

    def _why_not(self, assoc: Association, answers: list, timeout: float) -> str:
        if assoc.is_rejected:
            rj = next((a for a in answers if getattr(a, "result", None) in (0x01, 0x02)), None)
            if rj is not None:
                return f"the peer rejected the association ({rj.result_str}, {rj.source_str}: {rj.reason_str})"
            return "the peer rejected the association"
        if any(getattr(a, "result", None) == 0x00 for a in answers):
            return "the peer accepted none of the proposed presentation contexts"
        return _probe(self.peer, self.options, timeout)

    def echo(self) -> None:
        """C-ECHO (PS3.7 9.1.5): a peer that does not offer Verification is let through; a failed echo is not."""
        assert self.assoc is not None
        if not any(cx.abstract_syntax == Verification for cx in self.assoc.accepted_contexts):
            return
        status = self.assoc.send_c_echo()
        code = status.get("Status") if status else None
        if code is None:
            raise _Refused("no answer to C-ECHO")
        if code_to_category(code) not in ("Success", "Warning"):
            raise _Refused(f"C-ECHO failed with status 0x{code:04X}")

    def pause(self) -> None:
        """Hold pynetdicom's association reactor so that C-STORE responses come to us (as send_c_store does)."""
        assert self.assoc is not None
        self.assoc._reactor_checkpoint.clear()
        while not self.assoc._is_paused and self.assoc.is_established:
            time.sleep(0.0001)

    def request(self, ready: _Ready) -> None:
        """Write one C-STORE-RQ; raise :class:`_Lost` if the association is gone."""
        assoc = self.assoc
        if assoc is None or not assoc.is_established:
            raise _Lost("association closed")
        self._message_id = self._message_id % 0xFFFF + 1
        job = ready.job
        try:
            if self.options.tls is None:
                # pynetdicom's reader thread only reads meanwhile: a plain TCP socket takes the two at once.
                command = c_store_command(self._message_id, job.sop_class, job.sop_instance)
                write_message(assoc.dul.socket.socket, ready.context_id, command, ready.data, assoc.acceptor.maximum_length)
            else:  # an SSL socket must not be written and read from two threads: let pynetdicom write
                req = C_STORE()
                req.MessageID = self._message_id
                req.AffectedSOPClassUID = job.sop_class
                req.AffectedSOPInstanceUID = job.sop_instance
                req.Priority = 0x0000
                req.DataSet = BytesIO(bytes(ready.data))
                assoc.dimse.send_msg(req, ready.context_id)
        except (OSError, AttributeError) as exc:  # AttributeError: the socket went away under us
            raise _Lost(f"connection lost while sending ({exc})") from None

    def response(self) -> C_STORE:
        """Wait for the C-STORE-RSP to the last request; raise :class:`_Lost` if the association breaks."""
        assert self.assoc is not None
        _, rsp = self.assoc.dimse.get_msg(block=True)
        if rsp is None:
            if self.assoc.is_aborted or not self.assoc.is_established:
                raise _Lost("the peer aborted the association")
            raise _Lost(f"no response within {self.options.timeout:g} s")
        if getattr(rsp, "MessageIDBeingRespondedTo", None) != self._message_id or rsp.Status is None:
            raise _Lost("the peer answered out of turn")
        self.stored += 1
        return rsp

    def close(self) -> None:
        """Release the association (abort it when it is in a bad state)."""
        assoc, self.assoc = self.assoc, None
        if assoc is None:
            return
        assoc._reactor_checkpoint.set()
        if assoc.is_established:
            assoc.release()
        if not assoc.is_released:
            assoc.abort()

    def abort(self) -> None:
        """Drop the association."""
        assoc, self.assoc = self.assoc, None
        if assoc is not None:
            assoc._reactor_checkpoint.set()
            assoc.abort()


def _probe(peer: Peer, options: SendOptions, timeout: float) -> str:
    """Why a connection failed, in words: the TCP (and TLS) connect is tried again by hand."""
    try:
        with socket.create_connection((peer.host, peer.port), timeout=timeout) as sock:
            if options.tls:
                with options.tls.context().wrap_socket(sock, server_hostname=peer.host):
                    pass
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc.reason or exc}"
    except socket.timeout:
        return f"no connection within {timeout:g} s"
    except OSError as exc:
        return f"cannot connect: {exc.strerror or exc}"
    return f"the peer closed the connection or did not answer the association request within {timeout:g} s"


@dataclass
class _Ready:
    """A job ready to go on a given link: the context to use and the data set bytes in its encoding."""

    job: _Job
    context_id: int
    data: bytes | memoryview


class _Importer:
    """Workers share one queue of jobs; each holds one association and replaces it when it breaks.

    A worker reads and encodes its next instance while the peer stores the previous one.
    """

    def __init__(self, peer: Peer, options: SendOptions, contexts: list[PresentationContext], progress: Progress | None):
        self.peer = peer
        self.options = options
        self.contexts = contexts
        self.progress = progress
        self.queue: deque[_Job] = deque()
        self.lock = threading.Lock()  # guards the queue and the report
        self.media_lock = threading.Lock()  # items need not be readable from several threads at once
        self.report = ImportReport()
        self.last_error = ""
        self.used = 0  # associations that carried at least one instance

    def run(self, jobs: list[_Job], first: _Link) -> None:
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
            except _Refused:
                link.abort()
                break
            link.pause()
            threads.append(threading.Thread(target=self._work, args=(link,), daemon=True))
            threads[-1].start()
        for t in threads:
            t.join()
        reason = f"not sent: {self.last_error}" if self.last_error else "not sent"
        for job in self.queue:  # left over only when no association could be had any more
            self._fail(job, None, reason)
        self.queue.clear()

    def _next(self) -> _Job | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def _requeue(self, job: _Job) -> None:
        with self.lock:
            self.queue.appendleft(job)

    def _finish(self, job: _Job) -> None:
        if self.progress:
            self.progress(1, job.item.size)

    def _fail(self, job: _Job, status: int | None, reason: str) -> None:
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
            except _Refused as exc:
                link.abort()
                self.last_error = str(exc)
                continue
            link.pause()
            return link
        return None

    def _work(self, link: _Link | None) -> None:
        ready: _Ready | None = None
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
                if ready is None:
                    job = self._next()
                    if job is None:
                        return
                    ready = self._prepare(link, job)
                    if ready is None:
                        continue
                ready.job.attempts += 1
                try:
                    link.request(ready)
                except _Lost as exc:
                    link = self._lost(link, ready.job, exc)
                    ready = None
                    continue
                following = self._next()
                upcoming = self._prepare(link, following) if following else None  # while the peer works
                try:
                    rsp = link.response()
                except _Lost as exc:
                    if upcoming is not None:
                        self._requeue(upcoming.job)
                    link = self._lost(link, ready.job, exc)
                    ready = None
                    continue
                self._settle(ready, rsp)
                ready = upcoming
        finally:
            if link is not None:
                self._count(link)
                link.close()

    def _count(self, link: _Link) -> None:
        if link.stored:
            with self.lock:
                self.used += 1

    def _lost(self, link: _Link, job: _Job, exc: _Lost) -> None:  # returns the link to use next: none
        """The association broke with ``job`` in flight: drop it, and retry or report the job."""
        self._count(link)
        link.abort()
        self.last_error = str(exc)
        self._retry_or_fail(job, None, str(exc))
        return None

    def _prepare(self, link: _Link, job: _Job) -> _Ready | None:
        """Read the job's file and encode it for ``link``; None (and the job reported) when that cannot be done."""
        try:
            with self.media_lock, job.item.open() as fp:
                raw = fp.read()
            meta, offset = split_part10(raw)
        except Exception as exc:  # unreadable media file: report it, never crash the import
            self._fail(job, None, f"cannot read the file: {exc}")
            return None
        chosen = choose_context(link.accepted, job.sop_class, job.transfer_syntax)
        if chosen is None:
            self._fail(job, None, f"the peer accepted no presentation context for {show_uid(job.sop_class)} "
                                  f"in {show_uid(job.transfer_syntax)} nor uncompressed")
            return None
        context_id, send_ts = chosen
        try:
            data = encode_for(raw, offset, UID(meta["TransferSyntaxUID"]), send_ts)
        except Exception as exc:  # a codec that cannot decode this object
            self._fail(job, None, f"cannot decode {show_uid(job.transfer_syntax)} to send it as {send_ts.name}: {exc}")
            return None
        return _Ready(job, context_id, data)

    def _settle(self, ready: _Ready, rsp: C_STORE) -> None:
        """Count a stored instance, or retry or report a refused one (PS3.4 B.2.3 statuses)."""
        category = code_to_category(rsp.Status)
        if category in ("Success", "Warning"):
            with self.lock:
                self.report.sent += 1
                self.report.warnings += category == "Warning"
                self.report.bytes_sent += len(ready.data)
            self._finish(ready.job)
            return
        reason = status_text(rsp.Status) + (f": {rsp.ErrorComment}" if rsp.ErrorComment else "")
        self._retry_or_fail(ready.job, rsp.Status, reason)

    def _retry_or_fail(self, job: _Job, status: int | None, reason: str) -> None:
        if job.attempts <= self.options.retries:
            self._requeue(job)
        else:
            self._fail(job, status, reason)


def describe(item: SendItem) -> _Job | Failure:
    """The job for an item, reading its File Meta Information when the media view did not know its UIDs."""
    sop_class, sop_instance, ts = item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax_uid
    file_id = "/".join(item.file_id)
    if not (sop_class and sop_instance and ts):
        try:
            with item.open() as fp:
                meta, _ = split_part10(fp.read())
        except Exception as exc:
            return Failure(sop_instance, file_id, None, f"not a readable Part 10 file: {exc}")
        sop_class = sop_class or meta.get("MediaStorageSOPClassUID")
        sop_instance = sop_instance or meta.get("MediaStorageSOPInstanceUID")
        ts = ts or meta.get("TransferSyntaxUID")
    if not (sop_class and sop_instance and ts):
        return Failure(sop_instance, file_id, None, "no SOP Class, SOP Instance or Transfer Syntax UID in the file meta")
    return _Job(item, UID(str(sop_class)), UID(str(sop_instance)), UID(str(ts)))


def import_media(
    items: Iterable[SendItem], peer: Peer, options: SendOptions = SendOptions(), progress: Progress | None = None
) -> ImportReport:
    """C-ECHO, then C-STORE every item into ``peer``; raise MediaError when the peer cannot be reached at all."""
    check_ae_title(options.calling_aet, "--calling-aet")
    started = time.perf_counter()
    report = ImportReport()
    jobs: list[_Job] = []
    for item in items:
        job = describe(item)
        if isinstance(job, Failure):
            report.failed.append(job)
            if progress:
                progress(1, item.size)
        else:
            jobs.append(job)
    groups = plan_contexts(jobs)
    for index, contexts in enumerate(groups):
        classes = {cx.abstract_syntax for cx in contexts}
        group_jobs = [j for j in jobs if j.sop_class in classes] if len(groups) > 1 else jobs
        first = _Link(peer, options, contexts)
        try:
            first.open(options.timeout)
            if index == 0:
                first.echo()
        except _Refused as exc:
            first.abort()
            if index == 0:
                raise MediaError(str(exc), subject=str(peer), hint="check the AE title, host, port and that the SCP runs") from None
            for job in group_jobs:  # earlier groups went: report this one's instances rather than stop
                report.failed.append(Failure(job.sop_instance, job.file_id, None, f"not sent: {exc}"))
                if progress:
                    progress(1, job.item.size)
            continue
        if not group_jobs:
            first.close()
            continue
        first.pause()
        importer = _Importer(peer, options, contexts, progress)
        importer.run(group_jobs, first)
        report.sent += importer.report.sent
        report.warnings += importer.report.warnings
        report.bytes_sent += importer.report.bytes_sent
        report.failed.extend(importer.report.failed)
        report.associations += importer.used
    report.seconds = time.perf_counter() - started
    return report
