"""Media Creation Management (PS3.4 Annex S, SOP Class 1.2.840.10008.5.1.1.33): the requests and their states.

The node answers N-CREATE, N-ACTION, N-GET and N-DELETE from here; each method returns the DIMSE status and the
data set of the response. Statuses: PS3.7 Annex C (general) and PS3.4 S.3.2 (this SOP class).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

MEDIA_CREATION_MANAGEMENT = "1.2.840.10008.5.1.1.33"

SUCCESS = 0x0000
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
NO_SUCH_ACTION = 0x0123
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
ALREADY_INITIATED = 0xA510  # PS3.4 S.3.2.2.1.3: an Initiate Media Creation was already received
ALREADY_COMPLETED = 0xC201
IN_PROGRESS = 0xC202

INITIATE, CANCEL = 1, 2  # Action Type IDs (PS3.4 Table S.3-3)
# Execution Status (2100,0020), PS3.4 S.3.2.1.1.
IDLE, PENDING, CREATING, DONE, FAILURE = "IDLE", "PENDING", "CREATING", "DONE", "FAILURE"
# Failure Reason (0008,1197) of a Failed SOP Sequence item (PS3.4 S.3.2.2.1.3).
REASON_NO_SUCH_INSTANCE = 0x0112
REASON_PROCESSING_FAILURE = 0x0110

_YES_NO = {"LabelUsingInformationExtractedFromInstances", "IncludeDisplayApplication", "AllowMediaSplitting"}


@dataclass
class MediaRequest:
    """One media creation request (one SOP Instance of the Media Creation Management SOP Class)."""

    uid: str
    references: list[tuple[str, str]]
    attributes: Dataset
    profile: str | None = None
    status: str = IDLE
    info: str = "NORMAL"
    failed: list[tuple[str, str, int]] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    fileset_ids: list[str] = field(default_factory=list)

    def state(self) -> Dataset:
        """Every attribute N-GET may return: the request's own and the creation's progress."""
        ds = Dataset()
        for element in self.attributes:
            ds.add(element)
        ds.ExecutionStatus = self.status
        ds.ExecutionStatusInfo = self.info
        ds.TotalNumberOfPiecesOfMediaCreated = len(self.volumes)
        if self.fileset_ids:
            ds.ReferencedStorageMediaSequence = Sequence([_media_item(fid) for fid in self.fileset_ids])
        if self.failed:
            ds.FailedSOPSequence = Sequence([_failed_item(*f) for f in self.failed])
        return ds

    def as_record(self) -> dict:
        """The request as JSON, to survive a restart of the node."""
        return {
            "uid": self.uid,
            "references": self.references,
            "attributes": self.attributes.to_json_dict(),
            "profile": self.profile,
            "status": self.status,
            "info": self.info,
            "failed": self.failed,
            "volumes": self.volumes,
            "fileset_ids": self.fileset_ids,
        }

    @classmethod
    def from_record(cls, record: dict) -> MediaRequest:
        """A request saved by :meth:`as_record`."""
        return cls(
            record["uid"],
            [tuple(r) for r in record["references"]],
            Dataset.from_json(record["attributes"]),
            record["profile"],
            record["status"],
            record["info"],
            [tuple(f) for f in record["failed"]],
            record["volumes"],
            record["fileset_ids"],
        )


def _media_item(fileset_id: str) -> Dataset:
    item = Dataset()
    item.StorageMediaFileSetID = fileset_id
    return item


def _failed_item(sop_class: str, sop_instance: str, reason: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    item.FailureReason = reason
    return item


def _error(status: int, comment: str) -> Dataset:
    """A failure status with an Error Comment (0000,0902), at most 64 characters (PS3.7 C.4)."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


def check_references(
    attributes: Dataset, known: Callable[[str], str | None], profiles: Callable[[str], bool]
) -> tuple[list[tuple[str, str]], Dataset | None]:
    """The (SOP Class, SOP Instance) pairs an N-CREATE names, or the failure status that refuses it.

    ``known(uid)`` gives the SOP Class of an instance the node holds (None when it holds none).
    The Referenced SOP Sequence is Type 1 (PS3.4 Table S.3-2): absent is 0x0120, empty 0x0121; an item naming an
    instance the node never received, or under another SOP Class, is an invalid value (0x0106).
    """
    if "ReferencedSOPSequence" not in attributes:
        return [], _error(MISSING_ATTRIBUTE, "Referenced SOP Sequence (0008,1199) missing")
    items = attributes.ReferencedSOPSequence
    if not items:
        return [], _error(MISSING_ATTRIBUTE_VALUE, "Referenced SOP Sequence (0008,1199) empty")
    references = []
    for n, item in enumerate(items, 1):
        sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
        sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
        if not sop_class or not sop_instance:
            return [], _error(MISSING_ATTRIBUTE_VALUE, f"item {n}: Referenced SOP Class/Instance UID missing")
        held = known(sop_instance)
        if held is None:
            return [], _error(INVALID_ATTRIBUTE_VALUE, f"item {n}: no such instance received: {sop_instance}")
        if held != sop_class:
            return [], _error(INVALID_ATTRIBUTE_VALUE, f"item {n}: instance is of SOP Class {held}")
        references.append((sop_class, sop_instance))
    for keyword in _YES_NO:
        if keyword in attributes and str(attributes.get(keyword)) not in ("YES", "NO"):
            return [], _error(INVALID_ATTRIBUTE_VALUE, f"{keyword} must be YES or NO")
    profile = attributes.get("RequestedMediaApplicationProfile")
    if profile and not profiles(str(profile)):
        return [], _error(INVALID_ATTRIBUTE_VALUE, f"Requested Media Application Profile {profile} unknown")
    return references, None


class MediaRequests:
    """The node's media creation requests, safe to use from every association's thread."""

    def __init__(
        self,
        known: Callable[[str], str | None],
        profiles: Callable[[str], bool],
        initiate: Callable[[MediaRequest], None],
        folder: Path,
    ):
        self._known = known
        self._profiles = profiles
        self._initiate = initiate
        self._lock = threading.Lock()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.requests: dict[str, MediaRequest] = {}
        for path in sorted(folder.glob("*.json")):
            request = MediaRequest.from_record(json.loads(path.read_text(encoding="utf-8")))
            self.requests[request.uid] = request

    def _save(self, request: MediaRequest) -> None:
        """Keep the request on disk (fsync'd) before the peer hears that it was accepted or changed."""
        path = self.folder / f"{request.uid}.json"
        temp = path.with_suffix(".tmp")
        with open(temp, "w", encoding="utf-8") as fh:
            json.dump(request.as_record(), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(self, uid: str, attributes: Dataset | None) -> tuple[int | Dataset, Dataset | None]:
        """N-CREATE: record a request naming instances already received."""
        references, refusal = check_references(attributes or Dataset(), self._known, self._profiles)
        if refusal is not None:
            return refusal, None
        with self._lock:
            if uid in self.requests:
                return _error(DUPLICATE_SOP_INSTANCE, "a request with this SOP Instance UID exists"), None
            profile = attributes.get("RequestedMediaApplicationProfile")
            request = MediaRequest(uid, references, attributes, str(profile) if profile else None)
            self.requests[uid] = request
            self._save(request)
        reply = request.state()
        reply.AffectedSOPInstanceUID = uid  # pynetdicom moves it into the response's command set
        return SUCCESS, reply

    def action(self, uid: str, action_type: int, info: Dataset | None) -> tuple[int | Dataset, Dataset | None]:
        """N-ACTION: Initiate Media Creation (1) or Cancel Media Creation (2)."""
        with self._lock:
            request = self.requests.get(uid)
            if request is None:
                return _error(NO_SUCH_SOP_INSTANCE, "no such media creation request"), None
            if action_type == INITIATE:
                if request.status != IDLE:
                    return ALREADY_INITIATED, None
                request.status, request.info = PENDING, "QUEUED"
            elif action_type == CANCEL:
                if request.status == DONE:
                    return ALREADY_COMPLETED, None
                if request.status == CREATING:
                    return IN_PROGRESS, None
                request.status, request.info = FAILURE, "CANCELED"
                self._save(request)
                return SUCCESS, None
            else:
                return _error(NO_SUCH_ACTION, f"action type {action_type} not defined"), None
            self._save(request)
        self._initiate(request)
        return SUCCESS, None

    def get(self, uid: str, tags: list[int] | None) -> tuple[int | Dataset, Dataset | None]:
        """N-GET: the requested attributes (all when none are named)."""
        with self._lock:
            request = self.requests.get(uid)
            if request is None:
                return _error(NO_SUCH_SOP_INSTANCE, "no such media creation request"), None
            state = request.state()
        if not tags:
            return SUCCESS, state
        reply = Dataset()
        for tag in tags:
            if tag in state:
                reply.add(state[tag])
        return SUCCESS, reply

    def delete(self, uid: str) -> tuple[int | Dataset, Dataset | None]:
        """N-DELETE: forget a request (one not yet started is cancelled)."""
        with self._lock:
            request = self.requests.pop(uid, None)
            if request is None:
                return _error(NO_SUCH_SOP_INSTANCE, "no such media creation request"), None
            if request.status in (IDLE, PENDING):
                request.status, request.info = FAILURE, "CANCELED"
            (self.folder / f"{uid}.json").unlink(missing_ok=True)
        return SUCCESS, None

    def update(self, request: MediaRequest, **changes: object) -> None:
        """Change a request's state as its disc is made."""
        with self._lock:
            for name, value in changes.items():
                setattr(request, name, value)
            if request.uid in self.requests:
                self._save(request)
