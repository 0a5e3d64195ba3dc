"""Real Storage SCPs for the import tests: DCMTK storescp, Orthanc, and a pynetdicom SCP that injects faults.

Every server listens on a free loopback port and is stopped by its fixture (by PID, or by the server object).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from tests.conftest import REQUIRE_INTEROP, free_port, require_tool, run


def dcmtk(name: str) -> str:
    """Path of a DCMTK tool (never pynetdicom's script of the same name)."""
    return require_tool(name)


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started, by its PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Storescp:
    """A running DCMTK storescp: its port and the folder it writes to."""

    port: int
    folder: Path
    proc: subprocess.Popen

    @property
    def address(self) -> str:
        return f"STORESCP@127.0.0.1:{self.port}"

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[Callable[..., Storescp]]:
    """``storescp(*options)`` starts DCMTK storescp writing into a fresh folder (``+xa``: every syntax)."""
    procs: list[subprocess.Popen] = []

    def start(*options: str) -> Storescp:
        binary = dcmtk("storescp")
        port = free_port()
        folder = tmp_path / f"storescp{len(procs)}"
        folder.mkdir()
        proc = subprocess.Popen(
            [binary, *options, "-od", str(folder), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        procs.append(proc)
        wait_for_port(port, proc)
        return Storescp(port, folder, proc)

    yield start
    for proc in procs:
        stop(proc)


@dataclass
class Orthanc:
    """A running Orthanc: DICOM port, REST helpers on loopback."""

    dicom_port: int
    http_port: int
    proc: subprocess.Popen
    move_port: int = 0  # where the C-MOVE destination MOVEDEST is expected to listen (orthanc_qr)

    @property
    def address(self) -> str:
        return f"ORTHANC@127.0.0.1:{self.dicom_port}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=30) as rsp:
            return rsp.read()

    def get_json(self, path: str):
        return json.loads(self.get(path))

    def instances(self) -> dict[str, bytes]:
        """Every stored instance: SOP Instance UID -> the Part 10 file Orthanc holds."""
        out = {}
        for oid in self.get_json("/instances"):
            uid = self.get_json(f"/instances/{oid}")["MainDicomTags"]["SOPInstanceUID"]
            out[uid] = self.get(f"/instances/{oid}/file")
        return out

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def count(self) -> int:
        return len(self.get_json("/instances"))

    def clear(self) -> None:
        for pid in self.get_json("/patients"):
            req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/patients/{pid}", method="DELETE")
            urllib.request.urlopen(req, timeout=30).read()


def start_orthanc(root: Path, plugins: list[str] | None = None, **extra_config: object) -> Iterator[Orthanc]:
    """Orthanc with a minimal configuration (plus ``extra_config``) in ``root``, C-FIND allowed; stopped by PID."""
    binary = require_tool("Orthanc")
    dicom_port, http_port = free_port(), free_port()
    config = {
        "Name": "dicommedia-tests",
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "StorageDirectory": str(root / "db"),
        "IndexDirectory": str(root / "db"),
        "DicomModalities": {},
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowFind": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": plugins or [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        **extra_config,
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen([binary, str(root / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(http_port, proc, timeout=30)
        wait_for_port(dicom_port, proc, timeout=30)
        yield Orthanc(dicom_port, http_port, proc)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """Orthanc with a minimal configuration in a temporary folder; emptied for each test by ``orthanc_empty``."""
    yield from start_orthanc(tmp_path_factory.mktemp("orthanc"), [])


DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@pytest.fixture(scope="module")
def orthanc_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """Orthanc with its DICOMweb plugin (Debian orthanc-dicomweb): ``web_url`` is the STOW-RS/QIDO-RS base."""
    if not DICOMWEB_PLUGIN.exists():
        reason = f"{DICOMWEB_PLUGIN} missing (apt-get install orthanc-dicomweb)"
        pytest.fail(reason) if REQUIRE_INTEROP else pytest.skip(reason)
    yield from start_orthanc(tmp_path_factory.mktemp("orthanc-web"), [str(DICOMWEB_PLUGIN)])


@pytest.fixture
def orthanc_empty(orthanc: Orthanc) -> Orthanc:
    """The module's Orthanc with nothing stored."""
    orthanc.clear()
    return orthanc


def upload(orthanc: Orthanc, paths: list[Path]) -> None:
    """Store files in Orthanc through its REST API."""
    for path in paths:
        req = urllib.request.Request(
            f"http://127.0.0.1:{orthanc.http_port}/instances", data=path.read_bytes(), method="POST"
        )
        urllib.request.urlopen(req, timeout=30).read()


@pytest.fixture(scope="module")
def orthanc_qr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """Orthanc as a Query/Retrieve SCP: C-FIND and C-GET for anyone; C-MOVE to ``MOVEDEST`` (see move_port)."""
    move_port = free_port()
    config = {
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {"movedest": ["MOVEDEST", "127.0.0.1", move_port]},
    }
    for server in start_orthanc(tmp_path_factory.mktemp("orthanc_qr"), **config):
        server.move_port = move_port
        yield server


@dataclass
class FaultSCP:
    """A pynetdicom Storage SCP that can refuse encodings, fail stores and abort associations.

    ``explicit_only``: accept only Explicit VR Little Endian; ``fail``: SOP Instance UIDs answered 0xA700;
    ``abort_after``: abort every association on its (N+1)-th C-STORE; ``ssl_context``: serve DICOM over TLS;
    ``refuse``: SOP classes not supported; ``strict_aet``: reject a called AE title other than FAULTY;
    ``die_after``: after N stores in all, abort and stop listening (a peer that goes away for good);
    ``delay``: seconds each store takes (a slow archive, worth more associations).
    """

    explicit_only: bool = False
    refuse: set[str] = field(default_factory=set)
    strict_aet: bool = False
    die_after: int | None = None
    fail: set[str] = field(default_factory=set)
    abort_after: int | None = None
    ssl_context: ssl.SSLContext | None = None
    delay: float = 0.0
    received: dict[str, Dataset] = field(default_factory=dict)
    attempts: Counter = field(default_factory=Counter)
    associations: int = 0
    port: int = 0

    @property
    def address(self) -> str:
        return f"FAULTY@127.0.0.1:{self.port}"

    def _on_store(self, event: evt.Event) -> int:
        time.sleep(self.delay)
        ds = event.dataset
        ds.file_meta = event.file_meta
        uid = ds.SOPInstanceUID
        self.attempts[uid] += 1
        per_assoc = self._stores.setdefault(id(event.assoc), [0])
        per_assoc[0] += 1
        if self.abort_after is not None and per_assoc[0] > self.abort_after:
            event.assoc.abort()
            return 0xA700
        if self.die_after is not None and len(self.received) >= self.die_after:
            threading.Thread(target=self.shutdown, daemon=True).start()
            event.assoc.abort()
            return 0xA700
        if uid in self.fail:
            return 0xA700
        self.received[uid] = ds
        return 0x0000

    def _on_open(self, event: evt.Event) -> None:
        self.associations += 1

    def start(self):
        ae = AE("FAULTY")
        ae.require_called_aet = self.strict_aet
        syntaxes = [ExplicitVRLittleEndian] if self.explicit_only else ALL_TRANSFER_SYNTAXES
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax not in self.refuse:
                ae.add_supported_context(cx.abstract_syntax, syntaxes)
        ae.add_supported_context(Verification)
        self._stores: dict[int, list[int]] = {}
        self._stop_lock, self._stopped = threading.Lock(), False
        self.port = free_port()
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_ESTABLISHED, self._on_open)]
        self._server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=handlers, ssl_context=self.ssl_context
        )
        return self

    def shutdown(self) -> None:
        """Stop listening and end the associations (once, whoever asks first)."""
        with self._stop_lock:
            if not self._stopped:
                self._stopped = True
                self._server.shutdown()


@pytest.fixture
def fault_scp() -> Iterator[Callable[..., FaultSCP]]:
    """``fault_scp(explicit_only=..., fail=..., abort_after=..., ssl_context=...)`` starts a pynetdicom SCP."""
    servers: list[FaultSCP] = []

    def start(**kwargs) -> FaultSCP:
        server = FaultSCP(**kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, all PEM."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_ca: Path  # a CA that signed none of these


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Make the certificates with openssl (EC P-256 keys: quick to make)."""
    openssl = require_tool("openssl")
    d = tmp_path_factory.mktemp("tls")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ok(cmd: list[str]) -> None:
        result = run(cmd)
        assert result.returncode == 0, result.stderr

    for ca in ("ca", "stranger"):
        ok(
            [
                openssl,
                "req",
                "-x509",
                *key,
                "-keyout",
                str(d / f"{ca}.key"),
                "-out",
                str(d / f"{ca}.pem"),
                "-days",
                "2",
                "-subj",
                f"/CN=dicommedia test {ca}",
            ]
        )
    for who in ("server", "client"):
        ok(
            [
                openssl,
                "req",
                *key,
                "-keyout",
                str(d / f"{who}.key"),
                "-out",
                str(d / f"{who}.csr"),
                "-subj",
                f"/CN={who}",
            ]
        )
        (d / f"{who}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        ok(
            [
                openssl,
                "x509",
                "-req",
                "-in",
                str(d / f"{who}.csr"),
                "-CA",
                str(d / "ca.pem"),
                "-CAkey",
                str(d / "ca.key"),
                "-CAcreateserial",
                "-out",
                str(d / f"{who}.pem"),
                "-days",
                "2",
                "-extfile",
                str(d / f"{who}.ext"),
            ]
        )
    return Certificates(
        d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key", d / "stranger.pem"
    )


def server_ssl_context(certs: Certificates) -> ssl.SSLContext:
    """A TLS server context that demands a client certificate signed by the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    return ctx


@dataclass
class WorklistSCP:
    """A running DCMTK wlmscpfs serving the worklist files of ``folder``/WORKLIST."""

    port: int
    folder: Path

    @property
    def address(self) -> str:
        return f"WORKLIST@127.0.0.1:{self.port}"

    def add(self, name: str, **values: str) -> None:
        """Write one worklist item (a scheduled CT step) with these patient/study values."""
        from pydicom.uid import generate_uid

        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.AccessionNumber = values.pop("AccessionNumber", "")
        ds.PatientName = values.pop("PatientName", "")
        ds.PatientID = values.pop("PatientID", "")
        ds.IssuerOfPatientID = values.pop("IssuerOfPatientID", "")
        ds.PatientBirthDate = values.pop("PatientBirthDate", "")
        ds.PatientSex = values.pop("PatientSex", "")
        ds.StudyInstanceUID = generate_uid()
        ds.RequestedProcedureID = "RP1"
        ds.RequestedProcedureDescription = "CT"
        step = Dataset()
        step.Modality, step.ScheduledStationAETitle = "CT", "CT1"
        step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime = "20240115", "100000"
        step.ScheduledPerformingPhysicianName, step.ScheduledProcedureStepDescription = "", "CT"
        step.ScheduledProcedureStepID = "SPS1"
        ds.ScheduledProcedureStepSequence = [step]
        assert not values, values
        ds.save_as(self.folder / "WORKLIST" / f"{name}.wl", implicit_vr=False, little_endian=True)


@pytest.fixture
def worklist_scp(tmp_path: Path) -> Iterator[WorklistSCP]:
    """DCMTK wlmscpfs on a free port over an empty worklist folder (``add`` items to it)."""
    binary = dcmtk("wlmscpfs")
    folder = tmp_path / "worklists"
    (folder / "WORKLIST").mkdir(parents=True)
    (folder / "WORKLIST" / "lockfile").touch()
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-dfp", str(folder), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc)
        yield WorklistSCP(port, folder)
    finally:
        stop(proc)


@dataclass
class MediaNodeProcess:
    """A running ``dicommedia serve``: its port, output folder and structured log."""

    port: int
    output: Path
    log_path: Path
    proc: subprocess.Popen

    @property
    def address(self) -> str:
        return f"NODE@127.0.0.1:{self.port}"

    def log(self) -> list[dict]:
        """The node's structured log lines so far."""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def events(self, kind: str) -> list[dict]:
        return [e for e in self.log() if e.get("event") == kind]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """Block until ``predicate()`` holds; fail with the node's log when it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out; node log:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    def discs(self) -> list[Path]:
        return sorted(self.output.glob("*.iso"))

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def media_node(tmp_path: Path) -> Iterator[Callable[..., MediaNodeProcess]]:
    """``media_node(*options, output=...)`` starts ``dicommedia serve`` on a free port; stopped by PID at the end."""
    import sys

    procs: list[subprocess.Popen] = []

    def start(*options: str, output: Path | None = None, port: int | None = None) -> MediaNodeProcess:
        out = output or tmp_path / "discs"
        port = port or free_port()
        log_path = tmp_path / f"node{len(procs)}.log"
        cmd = [sys.executable, "-m", "dicommedia", "serve", "-o", str(out), "--host", "127.0.0.1"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*cmd, "--port", str(port), *options], stdout=subprocess.DEVNULL, stderr=log)
        procs.append(proc)
        wait_for_port(port, proc, timeout=30)
        return MediaNodeProcess(port, out, log_path, proc)

    yield start
    for proc in procs:
        stop(proc)


@pytest.fixture(scope="module")
def postgresql() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields a postgresql:// URL; stopped by the fixture.

    PostgreSQL refuses to run as root: as root the cluster is made and run as the ``postgres`` user (runuser).
    """
    import os
    import pwd
    import shutil
    import tempfile

    initdb, pg_ctl = require_tool("initdb"), require_tool("pg_ctl")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        as_user = [require_tool("runuser"), "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="dicommedia-pg-"))  # not under pytest's private tmp: postgres must enter
    data = root / "data"
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()
    try:
        made = run([*as_user, initdb, "-D", str(data), "-U", "catalog", "--auth=trust", "-E", "UTF8"])
        assert made.returncode == 0, made.stderr
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
        started = run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"])
        assert started.returncode == 0, started.stderr + (root / "log").read_text(errors="replace")
        yield f"postgresql://catalog@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
