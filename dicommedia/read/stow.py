"""Import media over DICOMweb STOW-RS (PS3.18 10.5; SPEC 2.2 ``read --stow URL``).

Instances go as Part 10 files in ``multipart/related; type="application/dicom"`` requests of a bounded size,
several requests in flight at once, each retried on a server error or a broken connection. The result of every
instance comes from the response: Referenced SOP Sequence (0008,1199) stored, Failed SOP Sequence (0008,1198)
not, with its Failure Reason (0008,1197). An instance is coerced exactly as on the C-STORE path.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicommedia.errors import MediaError
from dicommedia.part10 import read_file_meta
from dicommedia.read.coerce import CoercionError
from dicommedia.read.jobs import (
    Existing,
    Failure,
    ImportReport,
    Job,
    SendItem,
    Skip,
    plan_import,
)
from dicommedia.read.new_uids import NewUids
from dicommedia.read.reconcile import Reconciler, Refusal, reconciled_dataset, refused

if TYPE_CHECKING:
    import httpx

    from dicommedia.read.send import Progress

BATCH_BYTES = 16 << 20  # one request carries at most this much (or one instance, when bigger)
BATCH_INSTANCES = 64
WORKERS = 4
_RETRIED = {408, 429, 500, 502, 503, 504}
_FATAL = {401: "check --stow-token or --stow-user", 403: "the credentials lack the right to store"}
# DICOM JSON tags (PS3.18 F.2): Referenced / Failed SOP Sequence, Referenced SOP Instance UID, Failure Reason
_REFERENCED, _FAILED, _INSTANCE_UID, _FAILURE_REASON = "00081199", "00081198", "00081155", "00081197"


@dataclass(frozen=True)
class StowTarget:
    """A DICOMweb origin server: base URL (the part before ``/studies``) and credentials."""

    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = None
    ca: str | None = None
    timeout: float = 30.0
    retries: int = 2

    @property
    def base(self) -> str:
        """The service's base URL."""
        base = self.url.rstrip("/")
        return base[: -len("/studies")] if base.endswith("/studies") else base

    def client(self) -> httpx.Client:
        """An HTTP client with the credentials; TLS verified against the system's CAs or ``ca``."""
        import ssl

        import httpx

        try:
            verify = ssl.create_default_context(cafile=self.ca)
        except (OSError, ssl.SSLError) as exc:
            raise MediaError(f"cannot load the CA certificates: {exc}", self.ca, hint="check --tls-ca") from None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        auth = httpx.BasicAuth(self.user, self.password or "") if self.user else None
        return httpx.Client(verify=verify, auth=auth, headers=headers, timeout=self.timeout)

    def request(self, client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on a broken connection or a transient status; MediaError when it never answers
        or answers 401/403."""
        import httpx

        last, answered = "", False
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.5 * attempt, 2.0))
            try:
                rsp = client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                last = _transport_error(exc)
                continue
            answered = True
            if rsp.status_code in _FATAL:
                raise MediaError(f"{rsp.status_code} {rsp.reason_phrase}", url, hint=_FATAL[rsp.status_code])
            if rsp.status_code not in _RETRIED:
                return rsp
            last = f"{rsp.status_code} {rsp.reason_phrase}"
        raise _Unanswered(last, answered)


class _Unanswered(Exception):
    """No usable answer after the retries: the last error, in words, and whether the server answered at all."""

    def __init__(self, message: str, answered: bool):
        super().__init__(message)
        self.answered = answered


def _transport_error(exc: Exception) -> str:
    """An httpx transport error in words."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server closed the connection mid-request ({exc})"
    return f"connection failed ({exc})"


def part10_bytes(job: Job, reconciler: Reconciler | None, new_uids: NewUids | None = None) -> bytes | Refusal:
    """The instance as a Part 10 file, its data set under its local identity (and the import's new UIDs, the
    job then naming its new SOP Instance UID); the Refusal when it has none."""
    with job.item.open() as fp:
        raw = fp.read()
    if reconciler is not None:
        _, offset = read_file_meta(raw)
        local = reconciled_dataset(job, raw[offset:], job.transfer_syntax, reconciler)
        if isinstance(local, Refusal):
            return local
        raw = raw[:offset] + local
    if new_uids is not None:
        raw = new_uids.part10(raw)
        job.sop_instance = new_uids.new(job.sop_instance)
    return raw


def batches(jobs: list[Job]) -> Iterator[list[Job]]:
    """Jobs in groups of at most BATCH_INSTANCES and BATCH_BYTES (a bigger instance goes alone)."""
    batch: list[Job] = []
    size = 0
    for job in jobs:
        if batch and (len(batch) >= BATCH_INSTANCES or size + job.item.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(job)
        size += job.item.size
    if batch:
        yield batch


def _sequence(body: Any, tag: str) -> list[dict]:
    """Items of a sequence in a DICOM JSON response (PS3.18 F.2); empty when absent or malformed."""
    if isinstance(body, list) and body:
        body = body[0]
    items = body.get(tag, {}).get("Value", []) if isinstance(body, dict) else []
    return [item for item in items if isinstance(item, dict)]


def _value(item: dict, tag: str) -> Any:
    values = item.get(tag, {}).get("Value") if isinstance(item.get(tag), dict) else None
    return values[0] if values else None


class _Stower:
    """Workers each POST one batch at a time; results gathered into one report."""

    def __init__(
        self, target: StowTarget, progress: Progress | None, reconciler: Reconciler | None, new_uids: NewUids | None
    ):
        self.target = target
        self.reconciler = reconciler
        self.new_uids = new_uids
        self.progress = progress
        self.report = ImportReport()
        self.lock = threading.Lock()
        self.fatal: MediaError | None = None  # the server refused our credentials, or never answered at all
        self.reached = False  # some request got a usable answer

    def _settle(self, job: Job, outcome: Failure | Skip | None, nbytes: int) -> None:
        with self.lock:
            if outcome is None:
                self.report.sent += 1
                self.report.bytes_sent += nbytes
            elif isinstance(outcome, Skip):
                self.report.skipped_instances.append(outcome)
            else:
                self.report.failed.append(outcome)
        if self.progress:
            self.progress(1, job.item.size)

    def post(self, client: httpx.Client, batch: list[Job]) -> None:
        """Send one batch; settle each of its instances."""
        if self.fatal is not None:
            for job in batch:
                self._settle(job, Failure(job.sop_instance, job.file_id, None, f"not sent: {self.fatal.message}"), 0)
            return
        parts, sizes, ready = [], {}, []
        boundary = uuid.uuid4().hex
        for job in batch:
            try:
                data = part10_bytes(job, self.reconciler, self.new_uids)
            except CoercionError as exc:
                self._settle(
                    job, Failure(job.sop_instance, job.file_id, None, f"cannot write the local identity: {exc}"), 0
                )
                continue
            except (OSError, ValueError) as exc:  # unreadable media, or no longer a Part 10 file
                self._settle(job, Failure(job.sop_instance, job.file_id, None, f"cannot read the file: {exc}"), 0)
                continue
            if isinstance(data, Refusal):
                self._settle(job, refused(job, data), 0)
                continue
            parts += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data, b"\r\n"]
            sizes[job.sop_instance] = len(data)
            ready.append(job)
        if not ready:
            return
        parts.append(f"--{boundary}--\r\n".encode())
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        }
        url = f"{self.target.base}/studies"
        try:
            rsp = self.target.request(client, "POST", url, content=b"".join(parts), headers=headers)
        except _Unanswered as exc:
            if not exc.answered and not self.reached:  # as a dead DIMSE peer: one cause, not one per instance
                self.fatal = MediaError(f"no STOW-RS answer: {exc}", url, hint="check the URL and that the server runs")
            for job in ready:
                self._settle(job, Failure(job.sop_instance, job.file_id, None, f"STOW-RS: {exc}"), 0)
            return
        except MediaError as exc:
            self.fatal = exc
            for job in ready:
                self._settle(job, Failure(job.sop_instance, job.file_id, None, f"not sent: {exc.message}"), 0)
            return
        self.reached = True
        self._read_response(rsp, ready, sizes)

    def _read_response(self, rsp: httpx.Response, ready: list[Job], sizes: dict[str, int]) -> None:
        """Per instance: stored when referenced (or, on a 200 without details, all), else failed with the reason."""
        try:
            body = rsp.json()
        except ValueError:
            body = {}
        stored = {_value(item, _INSTANCE_UID) for item in _sequence(body, _REFERENCED)}
        failed = {_value(item, _INSTANCE_UID): _value(item, _FAILURE_REASON) for item in _sequence(body, _FAILED)}
        http = f"HTTP {rsp.status_code} {rsp.reason_phrase}"
        for job in ready:
            if job.sop_instance in failed:
                code = failed[job.sop_instance]
                status = code if isinstance(code, int) else None
                reason = f"{http}: the server refused it" + (f" (Failure Reason 0x{status:04X})" if status else "")
                self._settle(job, Failure(job.sop_instance, job.file_id, status, reason), 0)
            elif job.sop_instance in stored or (rsp.status_code == 200 and not stored):
                self._settle(job, None, sizes[job.sop_instance])
            else:
                self._settle(job, Failure(job.sop_instance, job.file_id, None, f"{http}: not stored"), 0)


def stow_media(
    items: Iterable[SendItem],
    target: StowTarget,
    reconciler: Reconciler | None = None,
    existing: Existing | None = None,
    progress: Progress | None = None,
    new_uids: NewUids | None = None,
) -> ImportReport:
    """STOW-RS every item into ``target`` (with ``new_uids``, under new UIDs); MediaError when the server refuses
    our credentials."""
    started = time.perf_counter()
    plan = plan_import(items, reconciler if reconciler and reconciler.remote else None, existing, progress)
    stower = _Stower(target, progress, reconciler, new_uids)
    with target.client() as client, ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda batch: stower.post(client, batch), batches(plan.jobs)))
    report = plan.report
    if stower.fatal is not None and stower.report.sent == 0:
        raise stower.fatal
    report.sent = stower.report.sent
    report.bytes_sent = stower.report.bytes_sent
    report.failed += stower.report.failed
    report.skipped_instances += stower.report.skipped_instances
    report.seconds = time.perf_counter() - started
    return report
