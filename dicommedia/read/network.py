"""The DICOM Upper Layer of our C-STORE associations (PS3.8 9): associate, P-DATA, release, abort.

Why not pynetdicom here: importing it (with pydicom) takes ~0.5 s, longer than DCMTK storescu needs to send a
400-slice CT, and it moves every PDU through a reactor thread, queues and a state machine (~1.7 ms per 512 KiB
slice on loopback against ~0.9 ms for storescu). An association here is one blocking socket used by one thread:
each DIMSE message is laid out as P-DATA-TF PDUs in one buffer, the data set read from the media straight into
it (``os.preadv``), written with one ``sendall``; the response is read on the same socket. That is ~0.35 ms
a slice, most of it the kernel's two copies; the media is not memory-mapped to save one, as a read error on a
failing medium would then kill the process (SIGBUS) instead of failing one instance.

TCP, measured against DCMTK storescp on loopback (bench/bench_import.py):

* Nagle off (``TCP_NODELAY``): otherwise the short last PDU of a data set waits for the peer's delayed ACK;
* ``TCP_QUICKACK`` after every read: storescp as Debian builds it writes each C-STORE-RSP in two ``send()``
  calls with Nagle on, the second waiting for our ACK of the first, which Linux's delayed ACK holds 40 ms.
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import ssl  # loaded (~15 ms) only by a TLS association

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # DICOM Application Context Name (PS3.7 A.2.1)
MAX_PDU_RECEIVED = 0  # what we accept: no limit (PS3.8 D.1); responses are small anyway

# PDU types (PS3.8 9.3.1)
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)
_PDU = struct.Struct(">BBI")
# P-DATA-TF PDU header with one PDV (PS3.8 9.3.5): type, reserved, PDU length, PDV length, context ID, control.
_PDU_HEADER = struct.Struct(">BBIIBB")
_PDV_OVERHEAD = 6  # PDV item length (4) + context ID (1) + message control header (1)
# Message control header bits (PS3.8 E.2): bit 0 set = command, bit 1 set = last fragment.
_COMMAND, _LAST = 0x01, 0x02
_FRAGMENT_WHEN_UNLIMITED = 1 << 20  # a peer with maximum length 0 takes any size; keep PDUs bounded
_ITEM = struct.Struct(">BBH")
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
_LARGEST_PDU_READ = 64 << 20  # what we read are responses and association answers: a few KiB, never this much
_READ_CHUNK = 1 << 16
_GROUP_LENGTH = struct.Struct("<HHII")  # (0000,0000) Command Group Length, UL, Implicit VR LE
_MESSAGE_ID = struct.Struct("<HHIH")  # (0000,0110) Message ID, US, Implicit VR LE

# A-ASSOCIATE-RJ (PS3.8 9.3.4), in pynetdicom's words.
_RJ_RESULT = {1: "Rejected (Permanent)", 2: "Rejected (Transient)"}
_RJ_SOURCE = {1: "Service User", 2: "Service Provider (ACSE)", 3: "Service Provider (Presentation)"}
_RJ_REASON = {
    (1, 1): "No reason given",
    (1, 2): "Application context name not supported",
    (1, 3): "Calling AE title not recognised",
    (1, 7): "Called AE title not recognised",
    (2, 1): "No reason given",
    (2, 2): "Protocol version not supported",
    (3, 1): "Temporary congestion",
    (3, 2): "Local limit exceeded",
}


# Item types of the association PDUs (PS3.8 9.3.2-9.3.3, PS3.7 D.3.3)
APPLICATION_CONTEXT_ITEM = 0x10
PRESENTATION_CONTEXT_RQ_ITEM = 0x20
PRESENTATION_CONTEXT_AC_ITEM = 0x21
ABSTRACT_SYNTAX_ITEM = 0x30
TRANSFER_SYNTAX_ITEM = 0x40
USER_INFORMATION_ITEM = 0x50
MAXIMUM_LENGTH_ITEM = 0x51
IMPLEMENTATION_CLASS_UID_ITEM = 0x52
IMPLEMENTATION_VERSION_NAME_ITEM = 0x55
ASYNC_OPERATIONS_WINDOW_ITEM = 0x53
USER_IDENTITY_RQ_ITEM = 0x58
USER_IDENTITY_AC_ITEM = 0x59

# Presentation context results in an A-ASSOCIATE-AC (PS3.8 9.3.3.2)
_CONTEXT_RESULT = {
    1: "user rejection",
    2: "no reason (provider rejection)",
    3: "abstract syntax not supported",
    4: "transfer syntaxes not supported",
}
# A-ABORT source and reason (PS3.8 9.3.8)
_ABORT_SOURCE = {0: "service user", 1: "reserved source", 2: "service provider"}
_ABORT_REASON = {
    0: "reason not specified",
    1: "unrecognized PDU",
    2: "unexpected PDU",
    4: "unrecognized PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}


class Refused(Exception):
    """No association: the reason, in words."""


class Lost(Exception):
    """The association broke (aborted, closed, or silent past the timeout)."""


class Released(Lost):
    """The peer asked to release the association (PS3.8 7.2): a normal end, not a fault of the message in flight."""


class Garbled(ValueError):
    """A PDU that breaks PS3.8's encoding: what is wrong with it."""


class ProposedContext(NamedTuple):
    """A presentation context to propose: one abstract syntax, its transfer syntaxes in order of preference."""

    abstract_syntax: str
    transfer_syntax: tuple[str, ...]


def _item(kind: int, body: bytes) -> bytes:
    return _ITEM.pack(kind, 0, len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(16)


def user_identity_item(user: str, password: str | None) -> bytes:
    """The User Identity Negotiation sub-item (PS3.7 D.3.3.7.1): username (type 1) or username and passcode (2);
    no positive response requested."""
    primary, secondary = user.encode("utf-8"), (password or "").encode("utf-8")
    kind = 2 if password is not None else 1
    body = struct.pack(">BBH", kind, 0, len(primary)) + primary + struct.pack(">H", len(secondary)) + secondary
    return _item(USER_IDENTITY_RQ_ITEM, body)


def associate_rq(
    called: str,
    calling: str,
    contexts: list[ProposedContext],
    implementation: tuple[str, str],
    user: tuple[str, str | None] | None = None,
    window: int = 1,
) -> bytes:
    """An A-ASSOCIATE-RQ PDU (PS3.8 9.3.2); context IDs are 1, 3, 5... in the order given.

    ``window`` > 1 proposes that many outstanding requests of ours (Asynchronous Operations Window, PS3.7
    D.3.3.3); we perform one at a time, as an SCU that performs none.
    """
    items = [_item(APPLICATION_CONTEXT_ITEM, APPLICATION_CONTEXT.encode())]
    for n, cx in enumerate(contexts):
        syntaxes = _item(ABSTRACT_SYNTAX_ITEM, cx.abstract_syntax.encode()) + b"".join(
            _item(TRANSFER_SYNTAX_ITEM, ts.encode()) for ts in cx.transfer_syntax
        )
        items.append(_item(PRESENTATION_CONTEXT_RQ_ITEM, bytes((2 * n + 1, 0, 0, 0)) + syntaxes))
    uid, version = implementation
    info = (
        _item(MAXIMUM_LENGTH_ITEM, struct.pack(">I", MAX_PDU_RECEIVED))
        + _item(IMPLEMENTATION_CLASS_UID_ITEM, uid.encode())
        + _item(IMPLEMENTATION_VERSION_NAME_ITEM, version.encode())
        + (_item(ASYNC_OPERATIONS_WINDOW_ITEM, struct.pack(">HH", window, 1)) if window > 1 else b"")
        + (user_identity_item(*user) if user else b"")
    )
    items.append(_item(USER_INFORMATION_ITEM, info))
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32) + b"".join(items)
    return _PDU.pack(ASSOCIATE_RQ, 0, len(body)) + body


def _items(data: bytes, pos: int) -> list[tuple[int, bytes]]:
    """The items from ``pos`` to the end; :class:`Garbled` when one claims more bytes than there are."""
    out = []
    while pos < len(data):
        if pos + 4 > len(data):
            raise Garbled(f"{len(data) - pos} stray bytes after the last item")
        kind, _, length = _ITEM.unpack_from(data, pos)
        if pos + 4 + length > len(data):
            raise Garbled(f"item type 0x{kind:02X} claims {length} bytes where {len(data) - pos - 4} remain")
        out.append((kind, data[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return out


@dataclass
class Negotiated:
    """What an A-ASSOCIATE-AC says: accepted (abstract syntax, transfer syntax) -> context ID, the reason each
    refused abstract syntax was refused, and the peer's maximum PDU length."""

    accepted: dict[tuple[str, str], int]
    rejected: dict[str, str]
    max_pdu: int
    window: int = 1  # requests of ours the peer lets be outstanding at once (1: synchronous)


def parse_associate_ac(body: bytes, contexts: list[ProposedContext], window: int = 1) -> Negotiated:
    """Read an A-ASSOCIATE-AC (PS3.8 9.3.3) answering a request that proposed ``window``; :class:`Garbled` when
    it breaks the encoding.

    A transfer syntax the peer accepts must be one we proposed on that context; one that is not is refused.
    """
    if len(body) < 68:
        raise Garbled(f"{len(body)} bytes, shorter than the fixed fields")
    negotiated = Negotiated({}, {}, 0)
    for kind, item in _items(body, 68):  # after protocol version, reserved, AE titles, 32 reserved bytes
        if kind == PRESENTATION_CONTEXT_AC_ITEM:
            if len(item) < 4 or not item[0] % 2 or item[0] // 2 >= len(contexts):
                raise Garbled(
                    f"a presentation context item for context ID {item[0] if item else '?'} we never proposed"
                )
            proposed = contexts[item[0] // 2]
            if item[2] != 0:
                negotiated.rejected[proposed.abstract_syntax] = _CONTEXT_RESULT.get(item[2], f"result {item[2]}")
                continue
            ts = next(
                (
                    sub.decode("ascii", "replace").rstrip("\0 ")
                    for k, sub in _items(item, 4)
                    if k == TRANSFER_SYNTAX_ITEM
                ),
                None,
            )
            if not ts:
                raise Garbled(f"context {item[0]} accepted with no transfer syntax")
            if ts not in proposed.transfer_syntax:
                negotiated.rejected[proposed.abstract_syntax] = f"the peer chose transfer syntax {ts}, never proposed"
                continue
            negotiated.accepted[(proposed.abstract_syntax, ts)] = item[0]
        elif kind == USER_INFORMATION_ITEM:
            for sub_kind, sub in _items(item, 0):
                if sub_kind == MAXIMUM_LENGTH_ITEM and len(sub) == 4:
                    (negotiated.max_pdu,) = struct.unpack(">I", sub)
                elif sub_kind == ASYNC_OPERATIONS_WINDOW_ITEM and len(sub) == 4:
                    # The acceptor's "operations performed" bounds ours invoked; 0 is unlimited (PS3.7 D.3.3.3.2)
                    (performed,) = struct.unpack(">H", sub[2:])
                    negotiated.window = min(window, performed or window)
    for key in negotiated.accepted:  # an abstract syntax accepted on one context is not refused
        negotiated.rejected.pop(key[0], None)
    return negotiated


def _rejection(body: bytes) -> str:
    result, source, reason = body[1], body[2], body[3]
    words = (
        _RJ_RESULT.get(result, f"result {result}"),
        _RJ_SOURCE.get(source, f"source {source}"),
        _RJ_REASON.get((source, reason), f"reason {reason}"),
    )
    return "the peer rejected the association ({}, {}: {})".format(*words)


def abort_reason(body: bytes) -> str:
    """Who aborted and why, from an A-ABORT PDU's body (PS3.8 9.3.8)."""
    if len(body) < 4:
        return "the peer aborted the association"
    source, reason = body[2], body[3]
    who = _ABORT_SOURCE.get(source, f"source {source}")
    why = _ABORT_REASON.get(reason, f"reason {reason}") if source == 2 else "no reason given"
    return f"the peer aborted the association ({who}: {why})"


def _implicit_element(group: int, element: int, value: bytes) -> bytes:
    """One Implicit VR Little Endian element (PS3.5 7.1.2): tag, 32-bit length, value."""
    return struct.pack("<HHI", group, element, len(value)) + value


def _ui(uid: str) -> bytes:
    """A UI value, padded with NUL to even length (PS3.5 6.2)."""
    raw = uid.encode("ascii")
    return raw + b"\0" * (len(raw) % 2)


def _command(fields: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(_implicit_element(0x0000, element, value) for element, value in fields)
    return _implicit_element(0x0000, 0x0000, struct.pack("<I", len(body))) + body  # Command Group Length


def c_store_command(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> bytes:
    """The C-STORE-RQ command set (PS3.7 9.3.1.1, E.1), Implicit VR Little Endian as every command set is."""
    head, tail = _c_store_parts(sop_class_uid)
    message = _MESSAGE_ID.pack(0x0000, 0x0110, 2, message_id)  # Message ID
    instance = _implicit_element(0x0000, 0x1000, _ui(sop_instance_uid))  # Affected SOP Instance UID
    body = len(head) + len(message) + len(tail) + len(instance)
    return b"".join((_GROUP_LENGTH.pack(0x0000, 0x0000, 4, body), head, message, tail, instance))


@functools.lru_cache(maxsize=128)
def _c_store_parts(sop_class_uid: str) -> tuple[bytes, bytes]:
    """The C-STORE-RQ elements before and after the Message ID: the same for every instance of a SOP Class."""
    head = _implicit_element(0x0000, 0x0002, _ui(sop_class_uid))  # Affected SOP Class UID
    head += _implicit_element(0x0000, 0x0100, struct.pack("<H", 0x0001))  # Command Field: C-STORE-RQ
    tail = _implicit_element(0x0000, 0x0700, struct.pack("<H", 0x0000))  # Priority: MEDIUM
    tail += _implicit_element(0x0000, 0x0800, struct.pack("<H", 0x0001))  # Command Data Set Type: a data set follows
    return head, tail


def c_echo_command(message_id: int) -> bytes:
    """The C-ECHO-RQ command set (PS3.7 9.3.5.1)."""
    return _command(
        [
            (0x0002, _ui("1.2.840.10008.1.1")),  # Affected SOP Class UID: Verification
            (0x0100, struct.pack("<H", 0x0030)),  # Command Field: C-ECHO-RQ
            (0x0110, struct.pack("<H", message_id)),
            (0x0800, struct.pack("<H", 0x0101)),  # no data set
        ]
    )


class Response(NamedTuple):
    """What we read of a DIMSE response command set (PS3.7 E.1): the message it answers, status, comment."""

    message_id: int | None
    status: int | None
    error_comment: str | None


def parse_response(command: bytes) -> Response:
    """Message ID Being Responded To (0000,0120), Status (0000,0900), Error Comment (0000,0902)."""
    values: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(command):
        _, element, length = struct.unpack_from("<HHI", command, pos)
        values[element] = command[pos + 8 : pos + 8 + length]
        pos += 8 + length

    def us(element: int) -> int | None:
        raw = values.get(element)
        return int.from_bytes(raw[:2], "little") if raw and len(raw) >= 2 else None

    comment = values.get(0x0902, b"").decode("ascii", "replace").strip(" \0") or None
    return Response(us(0x0120), us(0x0900), comment)


def frame(
    context_id: int,
    command: bytes,
    data_length: int | None,
    max_pdu: int,
    alloc: Callable[[int], bytearray] = bytearray,
) -> tuple[memoryview, list[memoryview]]:
    """A DIMSE message as P-DATA-TF PDUs (one PDV each, none over the peer's maximum) in one buffer.

    Returns the message and the slots the data set's bytes go into, in order (PS3.8 Annex E: command first);
    ``data_length`` None: a message without a data set. ``alloc(size)`` gives a buffer of at least ``size``
    bytes: a reused one (see :class:`Framer`) spares allocating and faulting in half a megabyte per slice.
    """
    fragment = (max_pdu - _PDV_OVERHEAD) if max_pdu else _FRAGMENT_WHEN_UNLIMITED
    command_pdus = -(-len(command) // fragment)
    data_pdus = 0 if data_length is None else max(-(-data_length // fragment), 1)  # an empty data set: one PDU
    total = len(command) + (data_length or 0) + _PDU_HEADER.size * (command_pdus + data_pdus)
    buffer = alloc(total)
    view = memoryview(buffer)[:total]
    pos = 0
    for start in range(0, len(command), fragment):
        part = command[start : start + fragment]
        control = _COMMAND | (_LAST if start + fragment >= len(command) else 0)
        _PDU_HEADER.pack_into(buffer, pos, P_DATA, 0, len(part) + _PDV_OVERHEAD, len(part) + 2, context_id, control)
        view[pos + 12 : pos + 12 + len(part)] = part
        pos += 12 + len(part)
    slots = []
    if data_length is not None:
        for start in range(0, max(data_length, 1), fragment):
            size = min(fragment, data_length - start)
            control = _LAST if start + fragment >= data_length else 0
            _PDU_HEADER.pack_into(buffer, pos, P_DATA, 0, size + _PDV_OVERHEAD, size + 2, context_id, control)
            slots.append(view[pos + 12 : pos + 12 + size])
            pos += 12 + size
    return view, slots


class Framer:
    """Frames messages into two buffers used in turn: one in flight while the next is read into the other.

    A buffer keeps its PDU headers: the next message of the same layout (same context, command and data set
    lengths: every slice of a CT series) gets only its command and data written, not 34 headers again.
    """

    def __init__(self) -> None:
        self._held: list[tuple[tuple, bytearray, memoryview, list[memoryview]] | None] = [None, None]
        self._turn = 0

    def frame(
        self, context_id: int, command: bytes, data_length: int, max_pdu: int
    ) -> tuple[memoryview, list[memoryview]]:
        """As :func:`frame`, in the next buffer."""
        self._turn ^= 1
        layout = (context_id, len(command), data_length, max_pdu)
        held = self._held[self._turn]
        if held is not None and held[0] == layout and (not max_pdu or len(command) <= max_pdu - _PDV_OVERHEAD):
            _, _, view, slots = held
            view[12 : 12 + len(command)] = command  # the one command PDU, right after its header
            return view, slots
        storage = held[1] if held is not None else bytearray()

        def alloc(size: int) -> bytearray:
            nonlocal storage
            if len(storage) < size:
                storage = bytearray(size)
            return storage

        view, slots = frame(context_id, command, data_length, max_pdu, alloc)
        self._held[self._turn] = (layout, storage, view, slots)
        return view, slots


def fill_from(data: bytes | memoryview, slots: list[memoryview]) -> None:
    """Copy a data set held in memory into its slots."""
    pos = 0
    for slot in slots:
        slot[:] = data[pos : pos + len(slot)]
        pos += len(slot)


def write_message(sock: socket.socket, context_id: int, command: bytes, data: bytes | memoryview, max_pdu: int) -> None:
    """Write one DIMSE message (command set and data set held in memory) as P-DATA-TF PDUs."""
    buffer, slots = frame(context_id, command, len(data), max_pdu)
    fill_from(data, slots)
    sock.sendall(buffer)


def _handshake(raw: socket.socket, tls: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    """The TLS client handshake (PS3.15 B.1); :class:`Refused` saying why it failed."""
    import ssl

    try:
        return tls.wrap_socket(raw, server_hostname=host)
    except ssl.SSLError as exc:
        raw.close()
        raise Refused(f"TLS handshake failed: {exc.reason or exc}") from None
    except OSError as exc:
        raw.close()
        raise Refused(f"TLS handshake failed: {exc.strerror or exc}") from None


class Association:
    """An established association we requested: one socket, used by one thread at a time."""

    def __init__(self, sock: socket.socket, negotiated: Negotiated, timeout: float):
        self.sock = sock
        self.accepted = negotiated.accepted
        self.rejected = negotiated.rejected
        self.max_pdu = negotiated.max_pdu
        self.window = negotiated.window
        self.timeout = timeout
        self.is_open = True
        self._message_id = 0
        self._held = bytearray()  # bytes read and not yet taken as a PDU
        self._chunk = memoryview(bytearray(_READ_CHUNK))

    @classmethod
    def request(
        cls,
        host: str,
        port: int,
        calling: str,
        called: str,
        contexts: list[ProposedContext],
        implementation: tuple[str, str],
        connect_timeout: float,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        user: tuple[str, str | None] | None = None,
        window: int = 1,
    ) -> Association:
        """Connect (and TLS handshake) and negotiate; raise :class:`Refused` saying why when there is no association."""
        try:
            # An ASCII host goes as bytes: a str would load the IDNA codec (~2 ms) just to encode it.
            address = host.encode("ascii") if host.isascii() else host
            raw = socket.create_connection((address, port), timeout=connect_timeout)
        except TimeoutError:
            raise Refused(f"no connection within {connect_timeout:g} s") from None
        except OSError as exc:
            raise Refused(f"cannot connect: {exc.strerror or exc}") from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = _handshake(raw, tls, host) if tls else raw
        assoc = cls(sock, Negotiated({}, {}, 0), connect_timeout)
        try:
            sock.sendall(associate_rq(called, calling, contexts, implementation, user, window))
            kind, body = assoc._read_pdu()
        except Lost as exc:
            assoc.close()
            raise Refused(f"no answer to the association request: {exc}") from None
        except OSError as exc:
            assoc.close()
            raise Refused(f"cannot send the association request: {exc.strerror or exc}") from None
        if kind == ASSOCIATE_RJ:  # the peer closes the connection after it
            assoc.close()
            raise Refused(_rejection(body) if len(body) >= 4 else "the peer rejected the association")
        if kind == ABORT:
            assoc.close()
            raise Refused(abort_reason(body) + " instead of answering the association request")
        if kind != ASSOCIATE_AC:
            assoc.abort()
            raise Refused(f"the peer answered the association request with PDU type {kind}")
        try:
            negotiated = parse_associate_ac(body, contexts, window)
        except Garbled as exc:
            assoc.abort()
            raise Refused(f"the peer's A-ASSOCIATE-AC is malformed: {exc}") from None
        assoc.accepted, assoc.rejected, assoc.max_pdu = negotiated.accepted, negotiated.rejected, negotiated.max_pdu
        assoc.window = negotiated.window
        if not assoc.accepted:
            assoc.release()
            reasons = sorted(set(negotiated.rejected.values()))
            raise Refused(
                "the peer accepted none of the proposed presentation contexts"
                + (f" ({'; '.join(reasons)})" if reasons else "")
            )
        assoc.timeout = timeout
        sock.settimeout(timeout)
        return assoc

    def _fill(self, n: int) -> None:
        """Read until ``n`` bytes are held, taking whatever the peer has sent already: a response PDU comes whole
        with one read as a rule, rather than its header and its body apart."""
        while len(self._held) < n:
            try:
                count = self.sock.recv_into(self._chunk)
            except TimeoutError:
                raise Lost(f"no response within {self.timeout:g} s") from None
            except OSError as exc:
                raise Lost(f"connection lost ({exc.strerror or exc})") from None
            if not count:
                raise Lost("the peer closed the connection")
            self._held += self._chunk[:count]
            if _QUICKACK is not None:
                try:
                    self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                except OSError:
                    pass

    def _read_pdu(self) -> tuple[int, bytearray]:
        self._fill(6)
        kind, _, length = _PDU.unpack_from(self._held)
        if length > _LARGEST_PDU_READ:
            raise Lost(f"the peer sent a PDU (type {kind}) of {length} bytes")
        self._fill(6 + length)
        body = self._held[6 : 6 + length]
        del self._held[: 6 + length]
        return kind, body

    def next_message_id(self) -> int:
        """A Message ID for the next request (PS3.7 9.1.1.1: unique among outstanding ones)."""
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    def send(self, buffer: bytes | bytearray | memoryview) -> None:
        """Write a framed message; raise :class:`Lost` when the connection is gone."""
        try:
            self.sock.sendall(buffer)
        except OSError as exc:
            raise Lost(f"connection lost while sending ({exc.strerror or exc})") from None

    def receive(self) -> Response:
        """Read the next DIMSE response's command set; raise :class:`Lost` on abort, release or silence."""
        command = bytearray()
        while True:
            kind, body = self._read_pdu()
            if kind == ABORT:
                self.close()
                raise Lost(abort_reason(body))
            if kind == RELEASE_RQ:  # the peer ends the association: answer it (PS3.8 7.2), then it is over
                try:
                    self.sock.sendall(_PDU.pack(RELEASE_RP, 0, 4) + bytes(4))
                except OSError:
                    pass
                self.close()
                raise Released("the peer released the association")
            if kind != P_DATA:
                raise Lost(f"the peer sent PDU type {kind} instead of a response")
            pos = 0
            while pos + 6 <= len(body):
                (length,) = struct.unpack_from(">I", body, pos)
                control = body[pos + 5]
                if control & _COMMAND:
                    command += body[pos + 6 : pos + 4 + length]
                    if control & _LAST:
                        return parse_response(bytes(command))
                pos += 4 + length

    def echo(self) -> Response | None:
        """C-ECHO on the Verification context, when the peer accepted it (None otherwise)."""
        context_id = self.accepted.get(("1.2.840.10008.1.1", "1.2.840.10008.1.2"))
        if context_id is None:
            return None
        buffer, _ = frame(context_id, c_echo_command(self.next_message_id()), None, self.max_pdu)
        self.send(buffer)
        return self.receive()

    def release(self) -> None:
        """A-RELEASE (PS3.8 7.2), waiting for the reply at most the timeout; the socket is closed either way."""
        if self.is_open:
            try:
                self.sock.sendall(_PDU.pack(RELEASE_RQ, 0, 4) + bytes(4))
                while self._read_pdu()[0] not in (RELEASE_RP, ABORT):
                    pass
            except (Lost, OSError):
                pass
        self.close()

    def abort(self) -> None:
        """A-ABORT (PS3.8 7.3.1), source: service user; the socket is closed."""
        if self.is_open:
            try:
                self.sock.sendall(_PDU.pack(ABORT, 0, 4) + bytes(4))
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        """Close the socket."""
        self.is_open = False
        try:
            self.sock.close()
        except OSError:
            pass
