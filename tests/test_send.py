"""``dicommedia read MEDIA --send``: C-STORE import into real peers (Orthanc, DCMTK storescp, pynetdicom SCPs)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode, split_dataset
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import CTImageStorage, SecondaryCaptureImageStorage

from dicommedia.errors import MediaError
from dicommedia.media import open_media
from dicommedia.part10 import read_file_meta as split_part10
from dicommedia.read.jobs import Job, describe
from dicommedia.read.network import Framer, c_store_command, fill_from, frame, write_message
from dicommedia.read.send import Peer, SendOptions, choose_context, import_media, plan_contexts
from tests.conftest import free_port
from tests.network_fixtures import (  # noqa: F401  (fixtures)
    certificates,
    fault_scp,
    orthanc,
    orthanc_empty,
    storescp,
)
from tests.synthetic import write_series

# pydicom's bundled objects, one per compressed transfer syntax, written by GDCM, DCMTK and others.
COMPRESSED = [
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG Baseline
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG Lossless SV1
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "693_J2KI.dcm",  # JPEG 2000 (lossy), 512x512 CT
    "SC_rgb_rle.dcm",  # RLE Lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_08.dcm",  # JPEG-LS near-lossless
]


def dicommedia(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "dicommedia", *args], capture_output=True, text=True, timeout=120)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


def copy_with_new_uid(src: Path, dest: Path) -> str:
    """Copy a Part 10 file under a fresh SOP Instance UID (pydicom's samples share some), encoding untouched."""
    ds = dcmread(src)
    uid = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(dest, enforce_file_format=True)
    return uid


def bundled(name: str) -> Path:
    """One of pydicom's bundled test files (by name: listing them all would try to download the extra set)."""
    return Path(get_testdata_file(name))


@pytest.fixture
def compressed_folder(tmp_path: Path) -> dict[str, Path]:
    """A folder of compressed instances (one per syntax) plus an Implicit VR one: SOP Instance UID -> file."""
    folder = tmp_path / "compressed"
    folder.mkdir()
    files = {}
    for n, name in enumerate(COMPRESSED):
        dest = folder / f"IM{n:06d}"
        files[copy_with_new_uid(bundled(name), dest)] = dest
    implicit = folder / "IMPLICIT"
    ds = dcmread(bundled("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(implicit, implicit_vr=True, little_endian=True, enforce_file_format=True)
    files[ds.SOPInstanceUID] = implicit
    return files


@pytest.fixture
def ct_folder(tmp_path: Path) -> Path:
    """Twelve small CT slices in a plain folder (scanned: no DICOMDIR)."""
    write_series(tmp_path / "ct", 12, rows=32, cols=32)
    return tmp_path / "ct"


def pixels(ds) -> np.ndarray:
    return ds.pixel_array


# --- pure rules -------------------------------------------------------------------------------------------------


def test_peer_parse() -> None:
    assert Peer.parse("ORTHANC@127.0.0.1:4242") == Peer("ORTHANC", "127.0.0.1", 4242)
    assert Peer.parse("PACS@[::1]:104") == Peer("PACS", "::1", 104)
    assert str(Peer.parse("PACS@[::1]:104")) == "PACS@[::1]:104"
    for bad in (
        "127.0.0.1:4242",
        "PACS@host",
        "PACS@host:0",
        "PACS@host:99999",
        "ABCDEFGHIJKLMNOPQ@h:1",
        " @h:1",
        "A\\B@h:1",
    ):
        with pytest.raises(MediaError):
            Peer.parse(bad)


def test_contexts_offer_each_syntax_and_native_fallback(compressed_folder: dict[str, Path]) -> None:
    with open_media(next(iter(compressed_folder.values())).parent) as view:
        jobs = [describe(f) for f in view.files()]
    (contexts,) = plan_contexts(jobs)
    offered = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in contexts}
    for job in jobs:
        assert (job.sop_class, job.transfer_syntax) in offered
        assert (job.sop_class, ExplicitVRLittleEndian) in offered
        assert (job.sop_class, ImplicitVRLittleEndian) in offered
    assert all(len(cx.transfer_syntax) == 1 for cx in contexts)
    accepted = {
        (SecondaryCaptureImageStorage, ExplicitVRLittleEndian): 3,
        (SecondaryCaptureImageStorage, JPEGBaseline8Bit): 5,
    }
    assert choose_context(accepted, SecondaryCaptureImageStorage, JPEGBaseline8Bit) == (5, JPEGBaseline8Bit)
    assert choose_context(accepted, SecondaryCaptureImageStorage, "1.2.840.10008.1.2.4.90") == (
        3,
        ExplicitVRLittleEndian,
    )
    assert choose_context(accepted, CTImageStorage, ExplicitVRLittleEndian) is None


def test_contexts_split_into_groups_of_at_most_127() -> None:

    jobs = [Job(None, UID(f"1.2.3.{n}"), UID(f"1.2.3.4.{n}"), JPEGBaseline8Bit) for n in range(60)]  # 3 contexts each
    groups = plan_contexts(jobs)
    assert len(groups) == 2 and all(len(g) <= 127 for g in groups)
    homes = [{cx.abstract_syntax for cx in g} for g in groups]
    assert not homes[0] & homes[1] and len(homes[0] | homes[1]) == 60  # a SOP class never straddles two groups


def test_command_set_matches_pynetdicom() -> None:
    req = C_STORE()
    req.MessageID, req.Priority = 7, 0x0000
    req.AffectedSOPClassUID, req.AffectedSOPInstanceUID = CTImageStorage, "1.2.826.0.1.3680043.2.1125.1"
    req.DataSet = BytesIO(b"\0\0")
    msg = C_STORE_RQ()
    msg.primitive_to_message(req)
    assert c_store_command(7, CTImageStorage, "1.2.826.0.1.3680043.2.1125.1") == encode(msg.command_set, True, True)


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "image_dfl.dcm", "MR_small_bigendian.dcm"]
)
def test_split_part10_matches_pynetdicom(name: str) -> None:
    path = bundled(name)
    meta, offset = split_part10(path.read_bytes())
    file_meta, expected = split_dataset(path)
    assert offset == expected
    assert meta["TransferSyntaxUID"] == file_meta.TransferSyntaxUID
    assert meta["MediaStorageSOPInstanceUID"] == file_meta.MediaStorageSOPInstanceUID


def test_write_message_frames_pdus_within_the_peer_maximum() -> None:
    data = bytes(range(256)) * 300  # 76800 bytes: five fragments at a 16 KiB maximum PDU
    command = c_store_command(1, CTImageStorage, "1.2.3")
    a, b = socket.socketpair()
    with a, b:
        write_message(a, 5, command, data, 16384)
        a.shutdown(socket.SHUT_WR)
        stream = b"".join(iter(lambda: b.recv(65536), b""))
    pdvs, pos = [], 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos + 2 : pos + 6], "big")
        assert stream[pos] == 0x04 and length <= 16384
        pdu = P_DATA_TF()
        pdu.decode(stream[pos : pos + 6 + length])
        pdvs += pdu.presentation_data_value_items
        pos += 6 + length
    assert [p.presentation_context_id for p in pdvs] == [5] * len(pdvs)
    headers = [p.presentation_data_value[0] for p in pdvs]
    assert headers == [0x03, 0x00, 0x00, 0x00, 0x00, 0x02]  # PS3.8 E.2: command last, data, ..., data last
    assert pdvs[0].presentation_data_value[1:] == command
    assert b"".join(p.presentation_data_value[1:] for p in pdvs[1:]) == data


def test_framer_reuses_a_layout_and_frames_as_fresh() -> None:
    framer = Framer()
    messages = [
        (1, "1.2.3.4", bytes(range(256)) * 200),
        (3, "1.2.3.5", b"\x01" * 999),
        (1, "1.2.3.6", b"\x07" * 51200),
        (3, "1.2.3.77", b"\x02" * 999),
        (1, "1.2.3.8", b"\x09" * 51200),
    ]
    for n, (context_id, uid, data) in enumerate(messages):
        command = c_store_command(n + 1, CTImageStorage, uid)
        message, slots = framer.frame(context_id, command, len(data), 16384)
        fill_from(data, slots)
        fresh, fresh_slots = frame(context_id, command, len(data), 16384)
        fill_from(data, fresh_slots)
        assert bytes(message) == bytes(fresh)


# --- Orthanc: a real PACS -----------------------------------------------------------------------------------


def test_import_iso_into_orthanc_unchanged_and_idempotent(tmp_path: Path, orthanc_empty, ct_folder: Path) -> None:
    iso = tmp_path / "disc.iso"
    made = dicommedia("create", str(ct_folder), "-o", str(iso))
    assert made.returncode == 0, made.stderr
    with open_media(iso) as view:
        on_media = {}
        for f in view.files():
            with f.open() as fp:
                on_media[f.sop_instance_uid] = dcmread(fp)

    first = dicommedia("read", str(iso), "--send", orthanc_empty.address, "--json")
    no_traceback(first)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "found": 12,
        "sent": 12,
        "failed": [],
        "skipped": 0,
        "skipped_instances": [],
        "duplicates": 0,
        "unreferenced_files": [],
    }
    stored = orthanc_empty.instances()
    assert set(stored) == set(on_media)
    for uid, blob in stored.items():
        got, want = dcmread(BytesIO(blob)), on_media[uid]
        for keyword in ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID"):
            assert got[keyword].value == want[keyword].value
        assert got.PixelData == want.PixelData

    second = dicommedia("read", str(iso), "--send", orthanc_empty.address, "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["sent"] == 12
    assert orthanc_empty.count() == 12  # the same UIDs again: no duplicates


def test_orthanc_takes_compressed_as_stored(orthanc_empty, compressed_folder: dict[str, Path]) -> None:
    # Orthanc 1.10 answers 0xA700 to this sample (it has no Patient ID): that is Orthanc's call, not ours.
    near_lossless = Path(f"IM{COMPRESSED.index('JPEGLSNearLossless_08.dcm'):06d}")
    compressed_folder = {u: p for u, p in compressed_folder.items() if p.name != near_lossless.name}
    folder = next(iter(compressed_folder.values())).parent
    (folder / near_lossless).unlink()
    with open_media(folder) as view:
        report = import_media(view.files(), Peer.parse(orthanc_empty.address), SendOptions(timeout=20))
    assert report.failed == [] and report.sent == len(compressed_folder)
    stored = orthanc_empty.instances()
    for uid, path in compressed_folder.items():
        original = dcmread(path)
        got = dcmread(BytesIO(stored[uid]))
        assert got.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert got.PixelData == original.PixelData  # the encoded bytes went as they are on the media


# --- DCMTK storescp ----------------------------------------------------------------------------------------


def test_storescp_uncompressed_only_gets_decoded_pixels(storescp, compressed_folder: dict[str, Path]) -> None:
    scp = storescp()  # storescp's default: uncompressed transfer syntaxes only
    folder = next(iter(compressed_folder.values())).parent
    result = dicommedia("read", str(folder), "--send", scp.address, "--json")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    received = {ds.SOPInstanceUID: ds for ds in map(dcmread, scp.files())}
    assert set(received) == set(compressed_folder)
    for uid, path in compressed_folder.items():
        assert not received[uid].file_meta.TransferSyntaxUID.is_compressed
        assert np.array_equal(pixels(received[uid]), pixels(dcmread(path)))


def test_storescp_accepting_all_gets_the_stored_bytes(storescp, compressed_folder: dict[str, Path]) -> None:
    scp = storescp("+xa", "+B")  # every syntax; bit-preserving: the file holds the data set as received
    folder = next(iter(compressed_folder.values())).parent
    result = dicommedia("read", str(folder), "--send", scp.address)
    assert result.returncode == 0, result.stderr
    received = {dcmread(p).SOPInstanceUID: p for p in scp.files()}
    for uid, path in compressed_folder.items():
        assert dcmread(received[uid]).file_meta.TransferSyntaxUID == dcmread(path).file_meta.TransferSyntaxUID
        assert dcmread(received[uid]).PixelData == dcmread(path).PixelData


def test_iso_to_storescp_bit_for_bit(tmp_path: Path, storescp) -> None:
    """Data sets framed in many PDUs at storescp's 16 KiB maximum arrive as the bytes on the disc."""
    write_series(tmp_path / "big", 5, rows=256, cols=256)  # 128 KiB of pixels: 9 P-DATA PDUs each
    iso = tmp_path / "big.iso"
    made = dicommedia("create", str(tmp_path / "big"), "-o", str(iso))
    assert made.returncode == 0, made.stderr
    scp = storescp("+B")  # bit-preserving: the file holds the data set as received
    result = dicommedia("read", str(iso), "--send", scp.address, "--json")
    assert result.returncode == 0, result.stderr
    with open_media(iso) as view:
        on_media = {}
        for f in view.files():
            with f.open() as fp:
                raw = fp.read()
            on_media[f.sop_instance_uid] = raw[split_part10(raw)[1] :]
    received = {}
    for path in scp.files():
        raw = path.read_bytes()
        received[dcmread(path, stop_before_pixels=True).SOPInstanceUID] = raw[split_part10(raw)[1] :]
    assert received == on_media


def test_tls_against_storescp(storescp, certificates, ct_folder: Path) -> None:
    c = certificates
    scp = storescp("+tls", str(c.server_key), str(c.server_cert), "-pw", "+cf", str(c.ca), "-rc")
    tls = ["--tls", "--tls-ca", str(c.ca), "--tls-cert", str(c.client_cert), "--tls-key", str(c.client_key)]
    result = dicommedia("read", str(ct_folder), "--send", scp.address, "--json", *tls)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 12 and len(scp.files()) == 12

    distrusted = dicommedia(
        "read",
        str(ct_folder),
        "--send",
        scp.address,
        "--tls",
        "--tls-ca",
        str(c.stranger_ca),
        "--tls-cert",
        str(c.client_cert),
        "--tls-key",
        str(c.client_key),
        "--timeout",
        "5",
    )
    no_traceback(distrusted)
    assert distrusted.returncode == 1
    assert "TLS handshake failed" in distrusted.stderr and "CERTIFICATE_VERIFY_FAILED" in distrusted.stderr


# --- faults ------------------------------------------------------------------------------------------------


def test_bad_calling_aet_is_one_line(ct_folder: Path) -> None:
    result = dicommedia("read", str(ct_folder), "--send", "PACS@127.0.0.1:104", "--calling-aet", "A" * 17)
    no_traceback(result)
    assert result.returncode == 1 and "not a valid AE title" in result.stderr


def test_dead_port_is_one_line(ct_folder: Path) -> None:
    result = dicommedia("read", str(ct_folder), "--send", f"NOBODY@127.0.0.1:{free_port()}", "--timeout", "3")
    no_traceback(result)
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and "refused" in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1


def test_peer_failing_some_stores(fault_scp, ct_folder: Path) -> None:
    with open_media(ct_folder) as view:
        uids = sorted(f.sop_instance_uid for f in view.files())
    scp = fault_scp(fail=set(uids[:2]))
    result = dicommedia("read", str(ct_folder), "--send", scp.address, "--json", "--retries", "1")
    no_traceback(result)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["sent"] == 10
    assert {f["sop_instance_uid"] for f in report["failed"]} == set(uids[:2])
    assert all(f["status"] == "0xA700" and "Out of Resources" in f["reason"] and f["file_id"] for f in report["failed"])
    assert all(scp.attempts[uid] == 2 for uid in uids[:2])  # --retries 1: two tries each
    assert set(scp.received) == set(uids[2:])


def test_explicit_only_peer_gets_identical_pixels(fault_scp, compressed_folder: dict[str, Path]) -> None:
    scp = fault_scp(explicit_only=True)
    folder = next(iter(compressed_folder.values())).parent
    result = dicommedia("read", str(folder), "--send", scp.address, "--json")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert set(scp.received) == set(compressed_folder)
    for uid, path in compressed_folder.items():
        got = scp.received[uid]
        assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        original = dcmread(path)
        assert got.SOPInstanceUID == original.SOPInstanceUID and got.get("StudyInstanceUID") == original.get(
            "StudyInstanceUID"
        )
        assert np.array_equal(pixels(got), pixels(original))


def test_undecodable_instance_is_reported_not_fatal(fault_scp, ct_folder: Path) -> None:
    # JPEG Extended 12-bit: no installed decoder takes this sample, so it cannot go to an Explicit-only peer.
    bad = ct_folder / "JPEGEXT"
    uid = copy_with_new_uid(bundled("JPEG-lossy.dcm"), bad)
    scp = fault_scp(explicit_only=True)
    result = dicommedia("read", str(ct_folder), "--send", scp.address, "--json")
    no_traceback(result)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["sent"] == 12
    (failure,) = report["failed"]
    assert failure["sop_instance_uid"] == uid and failure["status"] is None and "JPEG Extended" in failure["reason"]


def test_peer_aborting_midway_gets_a_new_association(fault_scp, ct_folder: Path) -> None:
    scp = fault_scp(abort_after=3)
    with open_media(ct_folder) as view:
        report = import_media(view.files(), Peer.parse(scp.address), SendOptions(timeout=10, associations=1))
    assert report.failed == [] and report.sent == 12
    assert len(scp.received) == 12
    assert scp.associations >= 4  # 3 per association, then the peer aborts


def test_file_missing_from_the_media_is_a_failure(fault_scp, tmp_path: Path) -> None:
    write_series(tmp_path / "in", 4, rows=16, cols=16)
    made = dicommedia("create", str(tmp_path / "in"), "-o", str(tmp_path / "disc"), "--format", "dir", "--no-ihe-pdi")
    assert made.returncode == 0, made.stderr
    gone = sorted((tmp_path / "disc" / "DICOM").rglob("IM*"))[0]
    gone.unlink()
    scp = fault_scp()
    result = dicommedia("read", str(tmp_path / "disc"), "--send", scp.address, "--json")
    no_traceback(result)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["sent"] == 3 and len(scp.received) == 3
    (failure,) = report["failed"]
    assert failure["file_id"].endswith(gone.name) and failure["status"] is None


def test_peer_gone_for_good_names_every_instance_left(fault_scp, ct_folder: Path) -> None:
    scp = fault_scp(die_after=5)
    result = dicommedia("read", str(ct_folder), "--send", scp.address, "--json", "--retries", "1", "--timeout", "5")
    no_traceback(result)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["sent"] == 5 and len(report["failed"]) == 7
    with open_media(ct_folder) as view:
        assert {f["sop_instance_uid"] for f in report["failed"]} | set(scp.received) == {
            f.sop_instance_uid for f in view.files()
        }
    assert all(f["status"] is None and f["reason"] for f in report["failed"])
    assert "cannot connect" in result.stderr


def test_association_rejected_and_context_refused(fault_scp, ct_folder: Path) -> None:
    scp = fault_scp(strict_aet=True)
    rejected = dicommedia("read", str(ct_folder), "--send", f"WRONG@127.0.0.1:{scp.port}")
    no_traceback(rejected)
    assert rejected.returncode == 1 and "rejected the association" in rejected.stderr
    assert "Called AE title not recognised" in rejected.stderr

    picky = fault_scp(refuse={CTImageStorage})
    refused = dicommedia("read", str(ct_folder), "--send", picky.address, "--json")
    no_traceback(refused)
    assert refused.returncode == 1
    report = json.loads(refused.stdout)
    assert report["sent"] == 0 and len(report["failed"]) == 12
    assert all("no presentation context for CT Image Storage" in f["reason"] for f in report["failed"])


def test_parallel_associations_and_filters(fault_scp, tmp_path: Path) -> None:
    write_series(tmp_path / "m", 8, rows=16, cols=16, patient_id="KEEP")
    write_series(tmp_path / "m", 0)
    other = write_series(tmp_path / "other", 5, rows=16, cols=16, patient_id="SKIP")
    for p in other:
        p.rename(tmp_path / "m" / ("o" + p.name))
    scp = fault_scp()
    result = dicommedia("read", str(tmp_path / "m"), "--send", scp.address, "--patient-id", "KEEP", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "found": 13,
        "sent": 8,
        "failed": [],
        "skipped": 5,
        "skipped_instances": [],
        "duplicates": 0,
        "unreferenced_files": [],
    }
    assert {ds.PatientID for ds in scp.received.values()} == {"KEEP"}
    slow = fault_scp(delay=0.02)
    with open_media(tmp_path / "m") as view:
        report = import_media(view.files(), Peer.parse(slow.address), SendOptions(associations=3))
    assert report.sent == 13 and report.associations >= 2
