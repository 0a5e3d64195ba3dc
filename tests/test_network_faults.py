"""``read --send`` against peers that misbehave at the DICOM Upper Layer (PS3.8), each fault told in one line.

A scripted peer on a loopback socket plays each fault byte for byte (abort with a reason, close at once, a garbled
A-ASSOCIATE-AC, per-context rejections, a transfer syntax never proposed, a release in the middle of an import);
pynetdicom, a real SCP, checks user identity negotiation (PS3.7 D.3.3.7).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from tests.conftest import free_port
from tests.synthetic import write_series
from tests.test_reconcile import dicommedia, one_line_error

PDU = struct.Struct(">BBI")
ITEM = struct.Struct(">BBH")


def item(kind: int, body: bytes) -> bytes:
    return ITEM.pack(kind, 0, len(body)) + body


def items(data: bytes, pos: int) -> Iterator[tuple[int, bytes]]:
    while pos + 4 <= len(data):
        kind, _, length = ITEM.unpack_from(data, pos)
        yield kind, data[pos + 4 : pos + 4 + length]
        pos += 4 + length


def recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    kind, _, length = PDU.unpack(recv_exactly(conn, 6))
    return kind, recv_exactly(conn, length)


def proposed(rq: bytes) -> list[tuple[int, str, list[str]]]:
    """(context ID, abstract syntax, transfer syntaxes) of an A-ASSOCIATE-RQ body."""
    out = []
    for kind, body in items(rq, 68):
        if kind == 0x20:
            subs = list(items(body, 4))
            abstract = next(s.decode().rstrip("\0") for k, s in subs if k == 0x30)
            out.append((body[0], abstract, [s.decode().rstrip("\0") for k, s in subs if k == 0x40]))
    return out


def associate_ac(rq: bytes, answer, window: int = 0) -> bytes:  # type: ignore[no-untyped-def]
    """An A-ASSOCIATE-AC answering each proposed context with ``answer(abstract, syntaxes) -> (result, ts)``;
    ``window``: the operations the peer performs at once (Asynchronous Operations Window item), 0 for none."""
    contexts = b""
    for cid, abstract, syntaxes in proposed(rq):
        result, ts = answer(abstract, syntaxes)
        contexts += item(0x21, bytes((cid, 0, result, 0)) + item(0x40, ts.encode()))
    async_item = item(0x53, struct.pack(">HH", 1, window)) if window else b""
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + async_item)
    body = rq[:68] + item(0x10, b"1.2.840.10008.3.1.1.1") + contexts + user
    return PDU.pack(2, 0, len(body)) + body


def element(el: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, el, len(value)) + value


def command_fields(command: bytes) -> dict[int, bytes]:
    """Element number -> value of a command set (Implicit VR LE, group 0000)."""
    fields, pos = {}, 0
    while pos + 8 <= len(command):
        _, el, length = struct.unpack_from("<HHI", command, pos)
        fields[el] = command[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return fields


def response(command: bytes) -> bytes:
    """The success response (C-ECHO-RSP or C-STORE-RSP) to a request command set."""
    fields = command_fields(command)
    rsp_field = struct.unpack("<H", fields[0x0100])[0] | 0x8000
    body = element(0x0002, fields[0x0002]) + element(0x0100, struct.pack("<H", rsp_field))
    body += element(0x0120, fields[0x0110]) + element(0x0800, struct.pack("<H", 0x0101))
    body += element(0x0900, struct.pack("<H", 0))
    if 0x1000 in fields:
        body += element(0x1000, fields[0x1000])
    return element(0x0000, struct.pack("<I", len(body))) + body


class ScriptedPeer:
    """A loopback peer that plays ``behaviour`` on each association request, then serves C-ECHO and C-STORE."""

    def __init__(self, behaviour: str):
        self.behaviour = behaviour
        self.stored: list[bytes] = []
        self.release_answered = False
        self.connections = 0
        self.most_outstanding = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"SCRIPTED@127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    self._association(conn, self.connections)
                except (ConnectionError, OSError, struct.error):
                    pass

    def _association(self, conn: socket.socket, number: int) -> None:
        kind, rq = read_pdu(conn)
        assert kind == 1
        behaviour = self.behaviour
        if behaviour == "close":
            return
        if behaviour == "abort":
            conn.sendall(PDU.pack(7, 0, 4) + bytes((0, 0, 2, 6)))
            return
        if behaviour == "garbled":
            body = rq[:68] + item(0x10, b"1.2.840.10008.3.1.1.1") + ITEM.pack(0x21, 0, 500) + b"\x01\x00"
            conn.sendall(PDU.pack(2, 0, len(body)) + body)
            read_pdu(conn)
            return
        if behaviour == "reject-contexts":
            conn.sendall(associate_ac(rq, lambda abstract, syntaxes: (3, syntaxes[0])))
        elif behaviour == "wrong-ts":
            conn.sendall(associate_ac(rq, lambda abstract, syntaxes: (0, "1.2.840.10008.1.2.4.50")))
        else:
            window = 4 if behaviour == "async" else 0
            conn.sendall(associate_ac(rq, lambda abstract, syntaxes: (0, syntaxes[0]), window))
        command = b""
        pending: list[tuple[int, bytes]] = []  # "async": requests held, then answered two at a time, last first
        while True:
            if behaviour == "async":
                conn.settimeout(0.5 if pending else None)
                try:
                    kind, body = read_pdu(conn)
                except TimeoutError:  # the sender waits for us: answer what is held
                    self._answer(conn, pending)
                    continue
            else:
                kind, body = read_pdu(conn)
            if kind == 5:  # A-RELEASE-RQ
                conn.sendall(PDU.pack(6, 0, 4) + bytes(4))
                return
            if kind == 6:  # A-RELEASE-RP to our own request
                self.release_answered = True
                return
            if kind != 4:
                return
            length, cid, control = struct.unpack_from(">IBB", body, 0)
            if control & 1:
                command += body[6 : 4 + length]
                if not control & 2 or command_fields(command)[0x0800] != b"\x01\x01":
                    continue  # more of the command, or its data set, to come
            elif not control & 2:
                continue
            is_store = command_fields(command)[0x0100] == b"\x01\x00"
            if behaviour == "release" and number == 1 and is_store and not self.stored:
                self.stored.append(b"released")  # the peer ends the association instead of answering
                conn.sendall(PDU.pack(5, 0, 4) + bytes(4))
                command = b""
                continue
            if is_store:
                self.stored.append(command)
            pending.append((cid, command))
            command = b""
            self.most_outstanding = max(self.most_outstanding, len(pending))
            if behaviour != "async" or len(pending) == 2:
                self._answer(conn, pending)

    def _answer(self, conn: socket.socket, pending: list[tuple[int, bytes]]) -> None:
        """Send the responses to the held requests, the last one first."""
        while pending:
            cid, command = pending.pop()
            rsp = response(command)
            pdv = struct.pack(">IBB", len(rsp) + 2, cid, 3) + rsp
            conn.sendall(PDU.pack(4, 0, len(pdv)) + pdv)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator:
    peers: list[ScriptedPeer] = []

    def start(behaviour: str) -> ScriptedPeer:
        peers.append(ScriptedPeer(behaviour))
        return peers[-1]

    yield start
    for peer in peers:
        peer.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_series(tmp_path / "ct", 5, rows=16, cols=16)
    return tmp_path / "ct"


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [
        ("abort", "the peer aborted the association (service provider: invalid PDU parameter value)"),
        ("close", "no answer to the association request: the peer closed the connection"),
        ("garbled", "the peer's A-ASSOCIATE-AC is malformed: item type 0x21 claims 500 bytes"),
        ("reject-contexts", "accepted none of the proposed presentation contexts (abstract syntax not supported)"),
        ("wrong-ts", "(the peer chose transfer syntax 1.2.840.10008.1.2.4.50, never proposed)"),
    ],
)
def test_association_faults_are_one_line(scripted, folder: Path, behaviour: str, cause: str) -> None:
    peer = scripted(behaviour)
    result = dicommedia("read", str(folder), "--send", peer.address, "--timeout", "20")
    line = one_line_error(result)
    assert cause in line
    assert "within" not in line  # the peer answered (or closed) at once: no talk of a timeout


def test_peer_release_mid_import_is_answered_and_the_import_goes_on(scripted, folder: Path) -> None:
    peer = scripted("release")
    result = dicommedia("read", str(folder), "--send", peer.address, "--retries", "0", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 5  # the released instance went again, not counted as a retry
    assert len(peer.stored) == 6 and peer.connections >= 2


@pytest.mark.parametrize("address", ["NOPORT@127.0.0.1", "@127.0.0.1:104", "AET@host:99999", "A\\B@h:1"])
def test_malformed_address_is_usage_error(folder: Path, address: str) -> None:
    result = dicommedia("read", str(folder), "--send", address)
    assert result.returncode == 2 and "--send" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def identity_scp() -> Iterator[tuple[int, list]]:
    """A pynetdicom Storage SCP that accepts user ALICE with password SECRET only."""
    seen: list = []

    def check(event: evt.Event):  # type: ignore[no-untyped-def]
        seen.append((event.user_id_type, event.primary_field, event.secondary_field))
        return (event.primary_field == b"ALICE" and event.secondary_field == b"SECRET"), None

    ae = AE("SECURE")
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax)
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_USER_ID, check), (evt.EVT_C_STORE, lambda event: 0x0000)],
    )
    yield port, seen
    server.shutdown()


def test_user_identity_negotiation(identity_scp, folder: Path) -> None:
    port, seen = identity_scp
    address = f"SECURE@127.0.0.1:{port}"
    ok = dicommedia("read", str(folder), "--send", address, "--user", "ALICE", "--password", "SECRET")
    assert ok.returncode == 0, ok.stderr
    assert (2, b"ALICE", b"SECRET") in seen
    refused = dicommedia("read", str(folder), "--send", address, "--user", "ALICE", "--password", "X")
    assert "rejected the association" in one_line_error(refused)
    lone = dicommedia("read", str(folder), "--send", address, "--password", "SECRET")
    assert lone.returncode == 2 and "--password needs --user" in lone.stderr


def test_asynchronous_window_keeps_requests_outstanding(scripted, folder: Path) -> None:
    """A peer that performs 4 operations at once (PS3.7 D.3.3.3) and answers two at a time, the later first."""
    peer = scripted("async")
    result = dicommedia("read", str(folder), "--send", peer.address, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 5
    assert len(peer.stored) == 5 and peer.most_outstanding == 2  # a synchronous sender would never have 2


def test_synchronous_peer_never_gets_two_outstanding(scripted, folder: Path) -> None:
    peer = scripted("plain")
    result = dicommedia("read", str(folder), "--send", peer.address, "--json")
    assert result.returncode == 0, result.stderr
    assert len(peer.stored) == 5 and peer.most_outstanding == 1
