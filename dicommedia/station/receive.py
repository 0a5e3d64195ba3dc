"""C-STORE associations served without pynetdicom's reactor: the node's fast path for modalities.

pynetdicom moves every PDU through a reactor thread that polls with sleeps, a state machine and queues: about
4 ms per small instance on loopback against ~0.3 ms for DCMTK storescp (bench/bench_receive.py). An
association that proposes only Storage and Verification SOP Classes (what a modality or PACS sends) is served
here instead, on its own blocking socket: each data set fragment is appended to the association's journal
(station/spool.py) as it arrives, the record is made durable with one fdatasync, and only then is the C-STORE-RSP
sent (PS3.7 9.1.1). When the association ends its records become files in their groups.
Anything else (Media Creation Management, TLS, extended negotiation we do not speak) stays with pynetdicom.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts

from dicommedia.read.network import ABORT, ASSOCIATE_RQ, P_DATA, RELEASE_RP, RELEASE_RQ, frame
from dicommedia.standard.identity import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dicommedia.station.spool import Journal, safe_name
from dicommedia.writers.part10 import encode_header

if TYPE_CHECKING:
    from dicommedia.station.node import MediaNode

VERIFICATION = "1.2.840.10008.1.1"
STORAGE = frozenset(str(cx.abstract_syntax) for cx in AllStoragePresentationContexts)
SYNTAXES = frozenset(str(ts) for ts in ALL_TRANSFER_SYNTAXES)
_APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
_ASSOCIATE_AC = 0x02
_PDU = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
_MAX_RQ = 1 << 16  # an A-ASSOCIATE-RQ longer than this is not a modality's: pynetdicom may have it
_OUR_MAX_PDU = 1 << 20  # what we announce; storescu then sends 1 MiB PDUs
_STORE_RQ, _STORE_RSP, _ECHO_RQ, _ECHO_RSP = 0x0001, 0x8001, 0x0030, 0x8030
_NO_DATA_SET = 0x0101
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
_HEAD = 1 << 14  # data set bytes kept to find the grouping keys without parsing the file
# Context results (PS3.8 9.3.3.2): acceptance, abstract syntax not supported, transfer syntaxes not supported.
_ACCEPT, _NO_ABSTRACT, _NO_SYNTAX = 0, 3, 4


@dataclass(frozen=True)
class AssociateRequest:
    """What we read of an A-ASSOCIATE-RQ (PS3.8 9.3.2): AE titles, proposed contexts, the peer's max PDU."""

    raw: bytes
    called: str
    calling: str
    contexts: tuple[tuple[int, str, tuple[str, ...]], ...]
    has_extended_negotiation: bool


def _items(data: bytes | memoryview, pos: int) -> list[tuple[int, bytes]]:
    out = []
    while pos + 4 <= len(data):
        kind, _, length = _ITEM.unpack_from(data, pos)
        out.append((kind, bytes(data[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    return out


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip(" \0")


def parse_associate_rq(pdu: bytes) -> AssociateRequest | None:
    """The request, or None when it is not a well-formed A-ASSOCIATE-RQ (pynetdicom then answers it)."""
    if len(pdu) < 74 or pdu[0] != ASSOCIATE_RQ:
        return None
    contexts, extended = [], False
    for kind, body in _items(pdu, 74):
        if kind == 0x20 and len(body) >= 4:
            subs = _items(body, 4)
            abstract = next((_text(b) for k, b in subs if k == 0x30), "")
            syntaxes = tuple(_text(b) for k, b in subs if k == 0x40)
            contexts.append((body[0], abstract, syntaxes))
        elif kind == 0x50:
            # SCP/SCU role selection (0x54), extended (0x56) and user identity (0x58) negotiation: pynetdicom's.
            extended = any(k in (0x53, 0x54, 0x56, 0x57, 0x58) for k, _ in _items(body, 0))
    return AssociateRequest(pdu, _text(pdu[10:26]), _text(pdu[26:42]), tuple(contexts), extended)


def peek_request(sock: socket.socket, timeout: float = 10.0) -> AssociateRequest | None:
    """Read the A-ASSOCIATE-RQ without consuming it (MSG_PEEK): whoever serves the association reads it again."""
    sock.settimeout(timeout)
    wanted, seen = 6, b""
    deadline = time.monotonic() + timeout
    while len(seen) < wanted:
        got = sock.recv(wanted, socket.MSG_PEEK)
        if not got or time.monotonic() > deadline:  # closed, or too slow to be worth the fast path
            return None
        if got == seen:  # the rest is still on its way
            time.sleep(0.0005)
            continue
        seen = got
        if len(seen) >= 6 and wanted == 6:
            kind, _, length = _PDU.unpack_from(seen)
            if kind != ASSOCIATE_RQ or length > _MAX_RQ:
                return None
            wanted = 6 + length
    return parse_associate_rq(seen)


def fast_path_can_serve(request: AssociateRequest | None) -> bool:
    """Storage and Verification only, no extended negotiation: the associations a modality makes."""
    return (
        request is not None
        and not request.has_extended_negotiation
        and bool(request.contexts)
        and all(abstract in STORAGE or abstract == VERIFICATION for _, abstract, _ in request.contexts)
    )


def _item(kind: int, body: bytes) -> bytes:
    return _ITEM.pack(kind, 0, len(body)) + body


def associate_ac(request: AssociateRequest) -> tuple[bytes, dict[int, tuple[str, str]]]:
    """The A-ASSOCIATE-AC PDU (PS3.8 9.3.3) and the accepted contexts: ID -> (abstract syntax, transfer syntax)."""
    accepted: dict[int, tuple[str, str]] = {}
    items = [_item(0x10, _APPLICATION_CONTEXT)]
    for context_id, abstract, syntaxes in request.contexts:
        chosen = next((ts for ts in syntaxes if ts in SYNTAXES), None)
        if abstract not in STORAGE and abstract != VERIFICATION:
            result, chosen = _NO_ABSTRACT, syntaxes[0] if syntaxes else ""
        elif chosen is None:
            result, chosen = _NO_SYNTAX, syntaxes[0] if syntaxes else ""
        else:
            result = _ACCEPT
            accepted[context_id] = (abstract, chosen)
        items.append(_item(0x21, bytes((context_id, 0, result, 0)) + _item(0x40, chosen.encode("ascii"))))
    user = (
        _item(0x51, struct.pack(">I", _OUR_MAX_PDU))
        + _item(0x52, IMPLEMENTATION_CLASS_UID.encode("ascii"))
        + _item(0x55, IMPLEMENTATION_VERSION_NAME.encode("ascii"))
    )
    items.append(_item(0x50, user))
    body = struct.pack(">HH", 1, 0) + request.raw[10:42] + bytes(32) + b"".join(items)
    return _PDU.pack(_ASSOCIATE_AC, 0, len(body)) + body, accepted


def parse_command(command: bytes) -> dict[int, bytes]:
    """The elements of a command set (group 0000, Implicit VR Little Endian, PS3.7 E.1) by element number."""
    values: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(command):
        _, element, length = struct.unpack_from("<HHI", command, pos)
        values[element] = command[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return values


def _us(raw: bytes | None) -> int:
    return int.from_bytes(raw[:2], "little") if raw and len(raw) >= 2 else 0


def _uid(raw: bytes | None) -> str:
    return (raw or b"").decode("ascii", "replace").strip(" \0")


def response_command(field: int, message_id: int, status: int, sop_class: bytes, sop_instance: bytes | None) -> bytes:
    """A C-STORE-RSP or C-ECHO-RSP command set (PS3.7 9.3.1.2, 9.3.5.2)."""
    fields = [(0x0002, sop_class), (0x0100, struct.pack("<H", field)), (0x0120, struct.pack("<H", message_id))]
    fields += [(0x0800, struct.pack("<H", _NO_DATA_SET)), (0x0900, struct.pack("<H", status))]
    if sop_instance is not None:
        fields.append((0x1000, sop_instance))
    body = b"".join(struct.pack("<HHI", 0, e, len(v)) + v for e, v in fields)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


_STUDY_UID, _PATIENT_ID = 0x0020000D, 0x00100020
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_IMPLICIT_LE = "1.2.840.10008.1.2"
# Data sets not in Explicit VR Little Endian whatever the pixel encoding (PS3.5 A.1-A.5): big endian, deflated.
_NOT_EXPLICIT_LE = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"})


def head_keys(head: bytes, transfer_syntax: str) -> tuple[str | None, str | None] | None:
    """Study Instance UID and Patient ID from the first bytes of a Little Endian data set (elements come in tag
    order, PS3.5 7.1; encapsulated pixel data comes later); None when they cannot be found there (big endian,
    deflated, an undefined length on the way)."""
    if transfer_syntax in _NOT_EXPLICIT_LE:
        return None
    explicit, pos, found = transfer_syntax != _IMPLICIT_LE, 0, {}
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        tag = group << 16 | element
        if tag > _STUDY_UID:
            break
        if not explicit:
            (length,), start = struct.unpack_from("<I", head, pos + 4), pos + 8
        elif head[pos + 4 : pos + 6] in _LONG_VRS:
            if pos + 12 > len(head):
                return None
            (length,), start = struct.unpack_from("<I", head, pos + 8), pos + 12
        else:
            (length,), start = struct.unpack_from("<H", head, pos + 6), pos + 8
        if length == 0xFFFFFFFF or start + length > len(head):
            return None
        if tag in (_STUDY_UID, _PATIENT_ID):
            found[tag] = head[start : start + length].decode("ascii", "replace").strip(" \0") or None
        pos = start + length
    else:
        return None  # ran out of bytes before passing (0020,000D)
    return found.get(_STUDY_UID), found.get(_PATIENT_ID)


class _Lost(Exception):
    """The peer went away."""


class StoreAssociation:
    """One association on the fast path: C-STORE into the spool, C-ECHO, release."""

    def __init__(self, sock: socket.socket, node: MediaNode, request: AssociateRequest, peer: str):
        self.sock = sock
        self.node = node
        self.request = request
        self.peer = peer
        self._buffer = bytearray(_OUR_MAX_PDU + 6)
        self.journal: Journal | None = None

    def journal_for_store(self) -> Journal:
        """The association's journal, opened with its first C-STORE."""
        if self.journal is None:
            self.journal = self.node.spool.open_journal(f"{time.time_ns()}")
        return self.journal

    def _recv_exactly(self, n: int) -> memoryview:
        if n > len(self._buffer):
            self._buffer = bytearray(n)
        view, got = memoryview(self._buffer)[:n], 0
        while got < n:
            try:
                count = self.sock.recv_into(view[got:])
            except OSError as exc:
                raise _Lost(str(exc)) from None
            if not count:
                raise _Lost("closed")
            got += count
            if _QUICKACK is not None:
                # A sender with Nagle on (Debian's storescu) holds the data set's PDU until we ACK the command's:
                # ACK at once instead of Linux's delayed ACK (40 ms). Cleared by the kernel: set after each read.
                self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return view

    def _send_response(self, context_id: int, command: bytes) -> None:
        buffer, _ = frame(context_id, command, None, 0)
        self.sock.sendall(buffer)

    def close(self) -> None:
        """End the association from our side (the node is stopping): a store not yet answered is not acknowledged."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def serve(self) -> None:
        """Accept, serve until release or abort, log the association either way."""
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._recv_exactly(len(self.request.raw))  # the A-ASSOCIATE-RQ we peeked at
        pdu, accepted = associate_ac(self.request)
        self.node.association_started(self, self.request.calling, self.peer)
        how = "aborted"
        try:
            self.sock.sendall(pdu)
            how = self._loop(accepted)
        except (_Lost, OSError):
            pass
        finally:
            self.sock.close()
            if self.journal is not None:
                self.journal.close()
                self.node.drain(self.journal.path)
            self.node.association_ended(self, how)

    def _loop(self, accepted: dict[int, tuple[str, str]]) -> str:
        command = bytearray()
        store: _Store | None = None
        while True:
            kind, _, length = _PDU.unpack(self._recv_exactly(6))
            if length > _OUR_MAX_PDU + 6:  # longer than we said we take (PS3.8 D.1): not read into memory
                self.sock.sendall(_PDU.pack(ABORT, 0, 4) + bytes((0, 0, 2, 6)))  # invalid PDU parameter value
                return "aborted"
            body = self._recv_exactly(length)
            if kind == RELEASE_RQ:
                self.sock.sendall(_PDU.pack(RELEASE_RP, 0, 4) + bytes(4))
                return "released"
            if kind == ABORT:
                return "aborted"
            if kind != P_DATA:
                self.sock.sendall(_PDU.pack(ABORT, 0, 4) + bytes((0, 0, 2, 0)))  # unexpected PDU (PS3.8 9.3.8)
                return "aborted"
            pos = 0
            while pos + 6 <= length:
                (pdv_length,) = struct.unpack_from(">I", body, pos)
                context_id, control = body[pos + 4], body[pos + 5]
                fragment = body[pos + 6 : pos + 4 + pdv_length]
                pos += 4 + pdv_length
                if context_id not in accepted:
                    self.sock.sendall(_PDU.pack(ABORT, 0, 4) + bytes((0, 0, 2, 6)))  # invalid PDU parameter
                    return "aborted"
                if control & 0x01:  # command fragment
                    command += fragment
                    if control & 0x02:
                        store = self._command(bytes(command), context_id, accepted[context_id])
                        command.clear()
                elif store is not None:
                    store.write(fragment)
                    if control & 0x02:
                        self._finish(store)
                        store = None

    def _command(self, command: bytes, context_id: int, context: tuple[str, str]) -> _Store | None:
        fields = parse_command(command)
        field, message_id = _us(fields.get(0x0100)), _us(fields.get(0x0110))
        if field == _ECHO_RQ:
            self._send_response(context_id, response_command(_ECHO_RSP, message_id, 0, fields.get(0x0002, b""), None))
            return None
        if field != _STORE_RQ or _us(fields.get(0x0800)) == _NO_DATA_SET:
            raise _Lost(f"command 0x{field:04X} not served here")
        return _Store(self, context_id, context, fields, message_id)

    def _finish(self, store: _Store) -> None:
        status = store.commit()
        rsp = response_command(_STORE_RSP, store.message_id, status, store.fields.get(0x0002, b""), store.uid_raw)
        self._send_response(store.context_id, rsp)


class _Store:
    """One C-STORE being received: its data set is appended to the association's journal, then made durable."""

    def __init__(
        self, assoc: StoreAssociation, context_id: int, context: tuple[str, str], fields: dict[int, bytes], mid: int
    ):
        self.assoc, self.context_id, self.fields, self.message_id = assoc, context_id, fields, mid
        self.uid_raw = fields.get(0x1000, b"")
        self.uid = _uid(self.uid_raw)
        self.sop_class = _uid(fields.get(0x0002)) or context[0]
        self.error: OSError | None = None
        self.transfer_syntax = context[1]
        self.head = bytearray()  # the data set's first bytes: enough for the grouping keys
        try:
            self.journal = assoc.journal_for_store()
            self.journal.begin()
            self.journal.write(encode_header(self.sop_class, self.uid, context[1]))
        except OSError as exc:
            self.error = exc

    def write(self, fragment: memoryview) -> None:
        if len(self.head) < _HEAD:
            self.head += fragment[: _HEAD - len(self.head)]
        if self.error is None:
            try:
                self.journal.write(fragment)
            except OSError as exc:
                self.error = exc

    def _keys(self) -> tuple[str | None, str | None]:
        from dicommedia.station.scp import file_grouping_keys

        keys = head_keys(bytes(self.head), self.transfer_syntax)
        if keys is not None:
            return keys
        temp = self.assoc.node.spool.temp_path(self.uid)
        try:
            self.journal.copy_data(temp)
            return file_grouping_keys(temp)
        finally:
            temp.unlink(missing_ok=True)

    def commit(self) -> int:
        """Group, seal the journal record (one fdatasync); the DIMSE status to answer (PS3.4 B.2.3)."""
        status = self._seal()
        if status and self.error is None:
            try:
                self.journal.discard()
            except OSError as exc:
                self.error = exc
        return status

    def _seal(self) -> int:
        from dicommedia.station.scp import CANNOT_UNDERSTAND, OUT_OF_RESOURCES

        node = self.assoc.node
        if self.error is not None:
            node.log("refused", sop_instance_uid=self.uid, reason=f"spool: {self.error}")
            return OUT_OF_RESOURCES
        if not safe_name(self.uid):
            node.log("refused", sop_instance_uid=self.uid, reason="Affected SOP Instance UID cannot name a file")
            return CANNOT_UNDERSTAND
        try:
            study, patient = self._keys()
        except Exception as exc:
            node.log("refused", sop_instance_uid=self.uid, reason=f"cannot parse the data set: {exc}")
            return CANNOT_UNDERSTAND
        group = node.group_of(self.assoc, study, patient)
        try:
            self.journal.commit(group, self.uid)
        except OSError as exc:
            node.log("refused", sop_instance_uid=self.uid, reason=f"spool: {exc}")
            return OUT_OF_RESOURCES
        node.journaled(self.assoc, group)
        return 0x0000
