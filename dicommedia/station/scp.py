"""The node's DICOM side on pynetdicom: Storage SCP (every Storage SOP Class, every transfer syntax),
Verification, and the Media Creation Management SCP (N-CREATE, N-ACTION, N-GET, N-DELETE)."""

from __future__ import annotations

import socket
import threading
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom import dcmread
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt, sop_class
from pynetdicom.dimse_primitives import N_DELETE
from pynetdicom.service_class_n import MediaCreationManagementServiceClass
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from dicommedia.station.mcm import MEDIA_CREATION_MANAGEMENT
from dicommedia.station.receive import StoreAssociation, fast_path_can_serve, peek_request

if TYPE_CHECKING:
    import ssl

    from dicommedia.station.node import MediaNode

# Storage statuses (PS3.4 Table B.2-1): out of resources, cannot understand.
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
_GROUPING_TAGS = ["StudyInstanceUID", "PatientID"]


class _MediaCreationService(MediaCreationManagementServiceClass):
    """pynetdicom's Media Creation Management service, plus the N-DELETE the SOP Class also defines (PS3.4 S.3)."""

    def SCP(self, req, context) -> None:  # noqa: N802 (pynetdicom's name)
        if isinstance(req, N_DELETE):
            self._n_delete_scp(req, context)
        else:
            super().SCP(req, context)


# pynetdicom dispatches by SOP Class UID through this table, looked up before its own Media Creation entry.
sop_class._SERVICE_CLASSES[MEDIA_CREATION_MANAGEMENT] = _MediaCreationService


def grouping_keys(encoded: bytes) -> tuple[str | None, str | None]:
    """Study Instance UID and Patient ID of an encoded Part 10 instance (header only)."""
    return _keys(dcmread(BytesIO(encoded), stop_before_pixels=True, specific_tags=_GROUPING_TAGS))


def file_grouping_keys(path: Path) -> tuple[str | None, str | None]:
    """Study Instance UID and Patient ID of a Part 10 file (header only)."""
    return _keys(dcmread(path, stop_before_pixels=True, specific_tags=_GROUPING_TAGS))


def _keys(ds) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    study = ds.get("StudyInstanceUID")
    patient = ds.get("PatientID")
    return (str(study) if study else None), (str(patient) if patient is not None else None)


class _StationServer(ThreadedAssociationServer):
    """pynetdicom's server, which hands a plain storage association to the fast path (station/receive.py)."""

    station: StationSCP
    daemon_threads = True  # an association in progress does not keep a stopping node alive

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if self.ssl_context is None:
            previous = request.gettimeout()
            try:
                associate = peek_request(request)
            except OSError:
                associate = None
            if fast_path_can_serve(associate):
                assoc = StoreAssociation(
                    request, self.station.node, associate, f"{client_address[0]}:{client_address[1]}"
                )
                self.station.fast.add(assoc)
                try:
                    assoc.serve()
                finally:
                    self.station.fast.discard(assoc)
                return
            request.settimeout(previous)
        super().process_request_thread(request, client_address)


class StationSCP:
    """The pynetdicom server of a media node; the node decides where instances go and what discs to make."""

    def __init__(self, node: MediaNode):
        self.node = node
        self.server: ThreadedAssociationServer | None = None
        self.fast: set[StoreAssociation] = set()

    def _on_open(self, event: evt.Event) -> None:
        # Our responses are small: without this, Nagle holds each one for the peer's delayed ACK.
        sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_established(self, event: evt.Event) -> None:
        requestor = event.assoc.requestor
        self.node.association_started(event.assoc, requestor.ae_title, f"{requestor.address}:{requestor.port}")

    def _on_released(self, event: evt.Event) -> None:
        self.node.association_ended(event.assoc, "released")

    def _on_aborted(self, event: evt.Event) -> None:
        self.node.association_ended(event.assoc, "aborted")

    def _on_store(self, event: evt.Event) -> int:
        request = event.request
        uid = str(request.AffectedSOPInstanceUID)
        encoded = event.encoded_dataset()
        try:
            study, patient = grouping_keys(encoded)
        except Exception as exc:  # a data set we cannot parse: the sender hears it, nothing is kept silently
            self.node.log("refused", sop_instance_uid=uid, reason=f"cannot parse the data set: {exc}")
            return CANNOT_UNDERSTAND
        try:
            self.node.store(event.assoc, uid, encoded, study, patient)
        except OSError as exc:
            self.node.log("refused", sop_instance_uid=uid, reason=f"spool: {exc}")
            return OUT_OF_RESOURCES
        return 0x0000

    def _on_n_create(self, event: evt.Event):
        uid = event.request.AffectedSOPInstanceUID
        if uid is None:
            from pydicom.uid import generate_uid

            uid = generate_uid()
        return self.node.requests.create(str(uid), event.attribute_list)

    def _on_n_action(self, event: evt.Event):
        request = event.request
        return self.node.requests.action(
            str(request.RequestedSOPInstanceUID), int(request.ActionTypeID), event.action_information
        )

    def _on_n_get(self, event: evt.Event):
        request = event.request
        listed = request.AttributeIdentifierList  # one tag arrives as a bare tag, several as a list
        tags = [int(listed)] if isinstance(listed, int) else [int(t) for t in listed or []]
        return self.node.requests.get(str(request.RequestedSOPInstanceUID), tags)

    def _on_n_delete(self, event: evt.Event):
        status, _ = self.node.requests.delete(str(event.request.RequestedSOPInstanceUID))
        return status

    def start(self, host: str, port: int, aet: str, ssl_context: ssl.SSLContext | None) -> None:
        """Listen (threads: one per association); return at once."""
        ae = AE(aet)
        ae.maximum_associations = 64
        ae.maximum_pdu_size = 0
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(MEDIA_CREATION_MANAGEMENT, ALL_TRANSFER_SYNTAXES)
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_N_CREATE, self._on_n_create),
            (evt.EVT_N_ACTION, self._on_n_action),
            (evt.EVT_N_GET, self._on_n_get),
            (evt.EVT_N_DELETE, self._on_n_delete),
        ]
        server = ae.make_server(
            (host, port), ssl_context=ssl_context, evt_handlers=handlers, server_class=_StationServer
        )
        server.station = self
        ae._servers.append(server)  # as ae.start_server does: the server's shutdown() removes itself from it
        threading.Thread(target=server.serve_forever, name="dicom-listener", daemon=True).start()
        self.server = server

    def stop(self) -> None:
        """Stop listening and end the associations."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        for assoc in list(self.fast):
            assoc.close()
