"""``create --from AET@HOST:PORT``: find studies with C-FIND, retrieve them with C-GET (or C-MOVE to our own
Storage SCP), each instance read for planning as it lands, while the rest is still on its way."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from dicommedia.errors import MediaError
from dicommedia.inputs.dicom_file import file_source, read_header
from dicommedia.inputs.gather import Gathered
from dicommedia.progress import Progress
from dicommedia.read.send import Peer

CALLING_AET = "DICOMMEDIA"
_MAX_CONTEXTS = 128  # presentation contexts in one association (PS3.8 9.3.2.2: IDs 1-255, odd)


@dataclass(frozen=True)
class Query:
    """What to pull: any study matching one of these keys."""

    study_uids: tuple[str, ...] = ()
    patient_ids: tuple[str, ...] = ()
    accessions: tuple[str, ...] = ()

    def identifiers(self) -> list[Dataset]:
        """One STUDY-level C-FIND identifier per key given (PS3.4 C.6.2, Study Root)."""
        out = []
        for keyword, values in (
            ("StudyInstanceUID", self.study_uids),
            ("PatientID", self.patient_ids),
            ("AccessionNumber", self.accessions),
        ):
            for value in values:
                ds = Dataset()
                ds.QueryRetrieveLevel = "STUDY"
                ds.StudyInstanceUID = ""
                ds.PatientID = ""
                ds.AccessionNumber = ""
                ds.SOPClassesInStudy = ""
                setattr(ds, keyword, value)
                out.append(ds)
        return out


@dataclass
class Retrieval:
    """How a retrieval went: studies found, instances received, sub-operations that failed."""

    studies: list[str] = field(default_factory=list)
    received: int = 0
    failed: int = 0


def _associate(ae, peer: Peer):  # type: ignore[no-untyped-def]
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise MediaError("association refused or peer unreachable", str(peer), "check AET@HOST:PORT and the peer")
    return assoc


def find_studies(peer: Peer, query: Query, calling_aet: str = CALLING_AET) -> dict[str, set[str]]:
    """Study Instance UIDs matching the query, with the SOP Classes each holds (when the peer says)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    ae = AE(calling_aet)
    ae.add_requested_context(FIND)
    assoc = _associate(ae, peer)
    studies: dict[str, set[str]] = {}
    try:
        for identifier in query.identifiers():
            for status, match in assoc.send_c_find(identifier, FIND):
                if not status or "Status" not in status:
                    raise MediaError("C-FIND: the peer stopped answering", str(peer))
                if status.Status in (0xFF00, 0xFF01) and match is not None and match.get("StudyInstanceUID"):
                    classes = match.get("SOPClassesInStudy") or []
                    classes = [classes] if isinstance(classes, str) else list(classes)
                    studies.setdefault(str(match.StudyInstanceUID), set()).update(str(c) for c in classes if c)
                elif status.Status not in (0x0000, 0xFF00, 0xFF01):
                    raise MediaError(f"C-FIND failed with status 0x{status.Status:04X}", str(peer))
    finally:
        assoc.release()
    return studies


def _storage_contexts(sop_classes: set[str]) -> list[str]:
    """Storage SOP Classes to offer the peer's C-STORE sub-operations: those the studies hold, else the usual."""
    from pynetdicom import StoragePresentationContexts

    if sop_classes:
        return sorted(sop_classes)[: _MAX_CONTEXTS - 1]
    return [cx.abstract_syntax for cx in StoragePresentationContexts[: _MAX_CONTEXTS - 1]]


class _Receiver:
    """Writes each instance a retrieval delivers into a folder and hands its path on (bounded memory)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.arrived: queue.Queue[Path | None] = queue.Queue()
        self.count = 0

    def on_store(self, event) -> int:  # type: ignore[no-untyped-def]
        self.count += 1
        path = self.folder / f"retrieved{self.count:07d}.dcm"
        try:
            path.write_bytes(event.encoded_dataset())
        except OSError:
            return 0xA700  # out of resources
        self.arrived.put(path)
        return 0x0000


def _check_final(status: Dataset | None, what: str, peer: Peer, retrieval: Retrieval) -> None:
    if not status or "Status" not in status:
        raise MediaError(f"{what}: the peer stopped answering", str(peer))
    retrieval.failed += int(status.get("NumberOfFailedSuboperations", 0) or 0)
    if status.Status not in (0x0000, 0xB000, 0xFF00, 0xFF01):
        raise MediaError(f"{what} failed with status 0x{status.Status:04X}", str(peer))


def _get(source: RetrieveSource, studies: dict[str, set[str]], receiver: _Receiver) -> None:
    """C-GET each study over one association; the peer's C-STORE sub-operations come back on it."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

    peer, retrieval, aet = source.peer, source.retrieval, source.calling_aet
    ae = AE(aet)
    ae.add_requested_context(GET)
    classes = _storage_contexts(set().union(*studies.values()) if studies else set())
    for uid in classes:
        ae.add_requested_context(uid, ALL_TRANSFER_SYNTAXES[:3])  # uncompressed, as most peers hold
    roles = [build_role(uid, scp_role=True) for uid in classes]
    assoc = ae.associate(
        peer.host, peer.port, ae_title=peer.ae_title, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver.on_store)]
    )
    if not assoc.is_established:
        raise MediaError("association refused or peer unreachable", str(peer))
    try:
        for study in studies:
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            identifier.StudyInstanceUID = study
            final = None
            for status, _ in assoc.send_c_get(identifier, GET):
                final = status
            _check_final(final, "C-GET", peer, retrieval)
    finally:
        assoc.release()


def _move(source: RetrieveSource, studies: dict[str, set[str]], receiver: _Receiver) -> None:
    """C-MOVE each study to our own Storage SCP, listening meanwhile as the move destination."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

    peer, retrieval, aet = source.peer, source.retrieval, source.calling_aet
    dest, port = source.move_dest or "", source.move_port
    scp = AE(dest)
    for cx in AllStoragePresentationContexts:
        scp.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    try:
        server = scp.start_server(("0.0.0.0", port), block=False, evt_handlers=[(evt.EVT_C_STORE, receiver.on_store)])
    except OSError as exc:
        raise MediaError(
            f"cannot listen on port {port} for C-MOVE: {exc.strerror}", hint="choose --move-port"
        ) from None
    try:
        ae = AE(aet)
        ae.add_requested_context(MOVE)
        assoc = _associate(ae, peer)
        try:
            for study in studies:
                identifier = Dataset()
                identifier.QueryRetrieveLevel = "STUDY"
                identifier.StudyInstanceUID = study
                final = None
                for status, _ in assoc.send_c_move(identifier, dest, MOVE):
                    final = status
                _check_final(final, "C-MOVE", peer, retrieval)
        finally:
            assoc.release()
    finally:
        server.shutdown()


@dataclass
class RetrieveSource:
    """The ``--from`` input of ``create``: called by create_fileset with its spool, fills the gathered headers."""

    peer: Peer
    query: Query
    calling_aet: str = CALLING_AET
    move_dest: str | None = None
    move_port: int = 11113
    retrieval: Retrieval = field(default_factory=Retrieval)

    def arrivals(self, folder: Path) -> Iterator[Path]:
        """Paths of retrieved instances as they land; the network keeps delivering meanwhile (a thread)."""
        studies = find_studies(self.peer, self.query, self.calling_aet)
        if not studies:
            raise MediaError("no study matches", str(self.peer), "check --study-uid, --patient-id, --accession")
        self.retrieval.studies = sorted(studies)
        receiver = _Receiver(folder)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                (_move if self.move_dest else _get)(self, studies, receiver)
            except BaseException as exc:  # handed to the reading side, which raises it
                errors.append(exc)
            finally:
                receiver.arrived.put(None)

        thread = threading.Thread(target=work, name="retrieve", daemon=True)
        thread.start()
        while (path := receiver.arrived.get()) is not None:
            self.retrieval.received += 1
            yield path
        thread.join()
        if errors:
            raise errors[0]
        if self.retrieval.failed:
            raise MediaError(f"{self.retrieval.failed} instance(s) could not be retrieved", str(self.peer))

    def __call__(self, spool: Path, gathered: Gathered, progress: Progress) -> None:
        """Read the header of each instance as it arrives (planning overlaps the retrieval)."""
        folder = spool / "retrieved"
        folder.mkdir()
        progress.stage(f"retrieving from {self.peer}", None)
        for path in self.arrivals(folder):
            progress.advance()
            try:
                gathered.headers.append(read_header(file_source(path, str(self.peer))))
            except MediaError as exc:
                gathered.refused.append((f"{self.peer}:{path.name}", exc.message))
