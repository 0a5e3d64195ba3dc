"""``read --stow URL``: DICOMweb STOW-RS into Orthanc's DICOMweb plugin, and into a small http.server that answers
401, 409 and 500 or closes the connection mid-request (a fake endpoint for the faults a real one rarely shows)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.media_fixtures import ct_slice, dcmtk_disc, genisoimage
from tests.network_fixtures import certificates, orthanc_web  # noqa: F401  (fixtures)
from tests.test_reconcile import (  # noqa: F401  (fixtures)
    ONE,
    TWO,
    assert_reconciled,
    dicommedia,
    disc,
    on_media,
    one_line_error,
    outside_folder,
    write_map,
)

MAP = "source_patient_id,patient_id,patient_name\nPAT001,LOC-1,LOCAL^ONE\nPAT002,LOC-2,LOCAL^TWO\n"
LOCAL = {"PAT001": ("LOC-1", "LOCAL^ONE"), "PAT002": ("LOC-2", "LOCAL^TWO")}


def test_stow_into_orthanc_reconciled_then_skip_existing(tmp_path: Path, disc: Path, outside_folder: Path, orthanc_web):
    orthanc_web.clear()
    patient_map = write_map(tmp_path, MAP)
    args = ["read", str(disc), "--stow", orthanc_web.web_url, "--patient-map", str(patient_map), "--json"]
    first = dicommedia(*args)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["found"], report["sent"], report["failed"]) == (ONE + TWO, ONE + TWO, [])
    assert_reconciled(orthanc_web.instances(), on_media(outside_folder), LOCAL)

    again = dicommedia(*args, "--skip-existing")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["sent"], report["skipped"], report["found"]) == (0, ONE + TWO, ONE + TWO)
    assert orthanc_web.count() == ONE + TWO


class _Endpoint(BaseHTTPRequestHandler):
    """Answers every STOW-RS POST as ``server.behaviour`` says, after reading (or not) the whole body."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        server = self.server
        server.posts += 1  # type: ignore[attr-defined]
        behaviour = server.behaviour  # type: ignore[attr-defined]
        if behaviour == "close":
            self.rfile.read(1000)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.bodies.append(body)  # type: ignore[attr-defined]
        if behaviour == 409:
            answer = {
                "00081198": {
                    "vr": "SQ",
                    "Value": [
                        {"00081155": {"vr": "UI", "Value": [uid]}, "00081197": {"vr": "US", "Value": [0xA700]}}
                        for uid in server.uids  # type: ignore[attr-defined]
                    ],
                }
            }
            data = json.dumps(answer).encode()
            self.send_response(409)
            self.send_header("Content-Type", "application/dicom+json")
        else:
            data = b"{}"
            self.send_response(int(behaviour))
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint() -> Iterator[ThreadingHTTPServer]:
    """A STOW-RS fake on a free loopback port; set ``behaviour`` (a status, or "close") and ``uids``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    server.posts, server.bodies, server.uids, server.behaviour = 0, [], [], 500  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/dicom-web"


@pytest.mark.parametrize("status", [401, 403])
def test_stow_credentials_refused_is_one_line(disc: Path, endpoint, status: int) -> None:
    endpoint.behaviour = status
    result = dicommedia("read", str(disc), "--stow", url(endpoint), "--stow-token", "wrong")
    line = one_line_error(result)
    assert f"{status}" in line and ("--stow-token" in line or "right to store" in line)


def test_stow_conflict_fails_each_instance_with_its_reason(disc: Path, outside_folder: Path, endpoint) -> None:
    endpoint.behaviour = 409
    endpoint.uids = list(on_media(outside_folder))
    result = dicommedia("read", str(disc), "--stow", url(endpoint), "--json", "--retries", "0")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["sent"] == 0 and len(report["failed"]) == ONE + TWO
    assert {f["status"] for f in report["failed"]} == {"0xA700"}
    assert all("HTTP 409" in f["reason"] for f in report["failed"])
    assert endpoint.posts == 1  # a conflict is not retried


def test_stow_server_error_is_retried_then_reported_per_instance(disc: Path, endpoint) -> None:
    endpoint.behaviour = 500
    result = dicommedia("read", str(disc), "--stow", url(endpoint), "--json", "--retries", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["sent"] == 0 and len(report["failed"]) == ONE + TWO
    assert all("500 Internal Server Error" in f["reason"] for f in report["failed"]), report["failed"][0]
    assert endpoint.posts == 2  # one batch, tried twice


def test_stow_connection_closed_mid_request_is_one_line(disc: Path, endpoint) -> None:
    endpoint.behaviour = "close"
    result = dicommedia("read", str(disc), "--stow", url(endpoint), "--retries", "1", "--timeout", "5")
    assert "no STOW-RS answer: the server closed the connection mid-request" in one_line_error(result)
    assert endpoint.posts == 2
    as_json = dicommedia("read", str(disc), "--stow", url(endpoint), "--retries", "0", "--json")
    assert as_json.returncode == 1 and "closed the connection" in json.loads(as_json.stdout)["error"]["message"]


def test_stow_dead_endpoint_is_one_line(disc: Path) -> None:
    result = dicommedia("read", str(disc), "--stow", f"http://127.0.0.1:{free_port()}/dicom-web", "--retries", "0")
    assert "no STOW-RS answer: connection failed" in one_line_error(result)


def test_stow_multipart_body_is_part10(disc: Path, endpoint) -> None:
    endpoint.behaviour = 200
    result = dicommedia("read", str(disc), "--stow", url(endpoint), "--json")
    assert result.returncode == 0, result.stderr
    (body,) = endpoint.bodies
    assert body.count(b"Content-Type: application/dicom\r\n\r\n") == ONE + TWO
    assert body.count(b"DICM") >= ONE + TWO


def test_stow_bad_url_is_usage_error(disc: Path) -> None:
    result = dicommedia("read", str(disc), "--stow", "ftp://nowhere")
    assert result.returncode == 2 and "http" in result.stderr


def test_stow_delivers_the_file_the_dicomdir_forgot(tmp_path: Path, orthanc_web) -> None:
    orthanc_web.clear()
    disc = dcmtk_disc(tmp_path, count=3)
    forgotten = ct_slice("PID1", number=4)
    forgotten.save_as(disc / "DICOM" / "PID1" / "ST1" / "SE1" / "IM4", enforce_file_format=True)
    iso = genisoimage(disc, tmp_path / "forgetful.iso", "TESTSET")

    result = dicommedia("read", str(iso), "--stow", orthanc_web.web_url, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["found"], report["sent"], report["unreferenced_files"]) == (4, 4, ["DICOM/PID1/ST1/SE1/IM4"])
    stored = orthanc_web.instances()
    assert len(stored) == 4 and forgotten.SOPInstanceUID in stored

    orthanc_web.clear()
    only = dicommedia("read", str(iso), "--stow", orthanc_web.web_url, "--dicomdir-only", "--json")
    assert json.loads(only.stdout)["sent"] == 3 and forgotten.SOPInstanceUID not in orthanc_web.instances()


def test_stow_over_tls_verified_by_tls_ca(disc: Path, certificates, tmp_path: Path) -> None:
    import ssl

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    server.posts, server.bodies, server.uids, server.behaviour = 0, [], [], 200  # type: ignore[attr-defined]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificates.server_cert), str(certificates.server_key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        https = f"https://127.0.0.1:{server.server_address[1]}/dicom-web"
        trusted = dicommedia("read", str(disc), "--stow", https, "--tls-ca", str(certificates.ca), "--json")
        assert trusted.returncode == 0, trusted.stderr
        assert json.loads(trusted.stdout)["sent"] == ONE + TWO and server.posts == 1  # type: ignore[attr-defined]
        stranger = dicommedia("read", str(disc), "--stow", https, "--tls-ca", str(certificates.stranger_ca))
        assert "CERTIFICATE_VERIFY_FAILED" in one_line_error(stranger)
    finally:
        server.shutdown()
        server.server_close()
