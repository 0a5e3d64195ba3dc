"""What an import will do with each instance on the media, before any byte goes out (SPEC 2.2).

Every instance found ends in exactly one of: sent, failed, skipped (with its reason) or duplicate, so that
the report adds up to what the media holds. The same plan drives C-STORE, STOW-RS and the dry run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

from dicommedia.part10 import read_file_meta

if TYPE_CHECKING:  # reconciliation is loaded only when an import asks for it (start-up of a plain send)
    from dicommedia.read.reconcile import Identity, Outside, Reconciler


class SendItem(Protocol):
    """What the importer needs of an instance on the media (``dicommedia.media.MediaFile`` fits)."""

    file_id: tuple[str, ...]
    size: int
    sop_instance_uid: str | None
    sop_class_uid: str | None
    transfer_syntax_uid: str | None

    def open(self) -> BinaryIO: ...

    def read_into(self, offset: int, slots: list[memoryview]) -> None: ...


class Failure(NamedTuple):
    """An instance that did not reach the peer: its last status (None when no response) and why."""

    sop_instance_uid: str | None
    file_id: str | None
    status: int | None
    reason: str

    def as_json(self) -> dict:
        """The SPEC 2.2 form; the status as a 0xXXXX string."""
        status = None if self.status is None else f"0x{self.status:04X}"
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "file_id": self.file_id,
            "status": status,
            "reason": self.reason,
        }


class Skip(NamedTuple):
    """An instance deliberately not sent: why (filtered out, unmapped, already on the peer, a duplicate)."""

    sop_instance_uid: str | None
    file_id: str | None
    reason: str

    def as_json(self) -> dict:
        """As JSON."""
        return {"sop_instance_uid": self.sop_instance_uid, "file_id": self.file_id, "reason": self.reason}


@dataclass
class ImportReport:
    """What an import did: ``found`` = ``sent`` + failed + skipped + ``duplicates``."""

    sent: int = 0
    failed: list[Failure] = field(default_factory=list)
    skipped_instances: list[Skip] = field(default_factory=list)
    filtered: int = 0  # left out by --patient-id/--study-uid/--series-uid: counted as skipped
    duplicates: int = 0
    warnings: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    associations: int = 0

    @property
    def skipped(self) -> int:
        """Instances not sent on purpose (filters, unmapped with --unmapped skip, already on the peer)."""
        return self.filtered + len(self.skipped_instances)

    @property
    def found(self) -> int:
        """Every instance the import met."""
        return self.sent + len(self.failed) + self.skipped + self.duplicates

    def as_json(self) -> dict:
        """The SPEC 2.2 import report, with the skipped instances and their reasons."""
        return {
            "found": self.found,
            "sent": self.sent,
            "failed": [f.as_json() for f in self.failed],
            "skipped": self.skipped,
            "skipped_instances": [s.as_json() for s in self.skipped_instances],
            "duplicates": self.duplicates,
        }


@dataclass
class Job:
    """An instance to send: where it is, its UIDs, and the coercion its data set needs (None: sent as stored)."""

    item: SendItem
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    attempts: int = 0
    released: bool = False  # once sent on an association the peer then released
    outside: Outside | None = None
    identity: Identity | None = None

    @property
    def file_id(self) -> str:
        """The File ID as a path."""
        return "/".join(self.item.file_id)


def read_head(item: SendItem) -> tuple[dict[str, str], int, bytes | bytearray]:
    """The File Meta UIDs, the data set offset and the bytes read of an item, reading no more of it than needed.

    The bytes (4 KiB as a rule) hold the start of the data set too: a coercion walks it without another read.
    """
    head = bytearray(min(item.size, 4096))
    item.read_into(0, [memoryview(head)])
    try:
        return (*read_file_meta(head), head)
    except ValueError:
        if len(head) == item.size:
            raise
    with item.open() as fp:  # a File Meta Information longer than the head read
        whole = fp.read()
    return (*read_file_meta(whole), whole)


def describe(item: SendItem) -> Job | Failure:
    """The job for an item, reading its File Meta Information when the media view did not know its UIDs."""
    sop_class, sop_instance, ts = item.sop_class_uid, item.sop_instance_uid, item.transfer_syntax_uid
    file_id = "/".join(item.file_id)
    if not (sop_class and sop_instance and ts):
        try:
            with item.open() as fp:
                meta, _ = read_file_meta(fp.read())
        except Exception as exc:
            return Failure(sop_instance, file_id, None, f"not a readable Part 10 file: {exc}")
        sop_class = sop_class or meta.get("MediaStorageSOPClassUID")
        sop_instance = sop_instance or meta.get("MediaStorageSOPInstanceUID")
        ts = ts or meta.get("TransferSyntaxUID")
    if not (sop_class and sop_instance and ts):
        return Failure(
            sop_instance, file_id, None, "no SOP Class, SOP Instance or Transfer Syntax UID in the file meta"
        )
    return Job(item, str(sop_class), str(sop_instance), str(ts))


def _reconcile(job: Job, reconciler: Reconciler) -> Failure | Skip | None:
    """Give the job its local identity now; a Failure or Skip when it has none."""
    from dicommedia.read.coerce import CoercionError
    from dicommedia.read.reconcile import Refusal, reconciled_head, refused

    try:
        _, offset, head = read_head(job.item)
        rewrite = reconciled_head(job, offset, head, reconciler)
    except (CoercionError, ValueError, OSError) as exc:
        return Failure(job.sop_instance, job.file_id, None, f"cannot read the patient of the instance: {exc}")
    return refused(job, rewrite) if isinstance(rewrite, Refusal) else None


@dataclass
class ImportPlan:
    """The jobs to send, and the instances already settled: failed, skipped, duplicates."""

    jobs: list[Job] = field(default_factory=list)
    report: ImportReport = field(default_factory=ImportReport)


Existing = Callable[[list[Job]], set[str]]  # SOP Instance UIDs of these jobs that the peer already holds


def plan_import(
    items: Iterable[SendItem],
    reconciler: Reconciler | None = None,
    existing: Existing | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportPlan:
    """Describe, de-duplicate, reconcile (when a ``reconciler`` is given: otherwise the sender does it, instance by
    instance) and with ``existing`` drop what the peer holds; every item accounted for."""
    plan = ImportPlan()
    report = plan.report
    seen: set[str] = set()
    for item in items:
        job = describe(item)
        if isinstance(job, Job) and job.sop_instance in seen:
            report.duplicates += 1  # sent once, from the first file that holds it
            settled: Failure | Skip | None = None
        else:
            if isinstance(job, Job):
                seen.add(job.sop_instance)
            settled = job if isinstance(job, Failure) else _reconcile(job, reconciler) if reconciler else None
            if settled is None:
                plan.jobs.append(job)  # type: ignore[arg-type]
                continue
            if isinstance(settled, Failure):
                report.failed.append(settled)
            else:
                report.skipped_instances.append(settled)
        if progress:
            progress(1, item.size)
    if existing is not None and plan.jobs:
        held = existing(plan.jobs)
        for job in plan.jobs:
            if job.sop_instance in held:
                report.skipped_instances.append(Skip(job.sop_instance, job.file_id, "already on the peer"))
                if progress:
                    progress(1, job.item.size)
        plan.jobs = [job for job in plan.jobs if job.sop_instance not in held]
    return plan
