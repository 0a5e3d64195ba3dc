"""The reconciling reader (read/readahead.py): what goes out through it is what the sender would send by itself,
whatever the reader could not do or if it dies, and it never outlives the import."""

from __future__ import annotations

import json
import marshal
import os
import signal
import struct
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from dicommedia.media import open_media
from dicommedia.part10 import read_file_meta
from dicommedia.processes import MessageStream
from dicommedia.read import readahead
from dicommedia.read.reconcile import PatientMap, Reconciler
from dicommedia.read.send import Peer, SendOptions, import_media
from tests.network_fixtures import fault_scp  # noqa: F401  (fixture)
from tests.synthetic import write_series
from tests.tools import ctrl_c_default, descendants

MAPPED, UNMAPPED = 14, 4  # more than readahead.MIN_JOBS in all


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Two mapped patients (one slice in Implicit VR) and one the map does not know."""
    folder = tmp_path / "media"
    write_series(folder / "a", MAPPED - 4, rows=16, cols=16, patient_id="PAT001", patient_name="DOE^JANE")
    write_series(folder / "b", 4, rows=16, cols=16, patient_id="PAT002", patient_name="ROE^RICHARD")
    write_series(folder / "c", UNMAPPED, rows=16, cols=16, patient_id="STRANGER")
    implicit = folder / "a" / "slice00002.dcm"
    ds = dcmread(implicit)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(implicit, implicit_vr=True, little_endian=True, enforce_file_format=True)
    return folder


@pytest.fixture
def reconciler(tmp_path: Path) -> Reconciler:
    """A patient map for the first two patients; the third is skipped."""
    path = tmp_path / "map.csv"
    path.write_text("source_patient_id,patient_id,patient_name\nPAT001,LOC-1,LOCAL^ONE\nPAT002,LOC-2,LOCAL^TWO\n")
    return Reconciler([PatientMap.load(path)], {}, unmapped="skip")


def _import(folder: Path, scp, reconciler: Reconciler, associations: int = 1):
    with open_media(folder) as view:
        return import_media(
            view.files(), Peer.parse(scp.address), SendOptions(associations=associations), None, reconciler
        )


def _count_answers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """[jobs the reader answered for, jobs the senders read themselves], counted as they are taken."""
    counts = [0, 0]
    take = readahead.ReadAhead.take

    def counted(self, job):
        got = take(self, job)
        counts[got is None] += 1
        return got

    monkeypatch.setattr(readahead.ReadAhead, "take", counted)
    return counts


def _by_uid(received: dict[str, Dataset]) -> dict[str, bytes]:
    """What the peer received, each data set in one encoding, to compare runs byte for byte."""
    out = {}
    for uid, ds in received.items():
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        buffer = BytesIO()
        ds.save_as(buffer, implicit_vr=False, little_endian=True)
        out[uid] = buffer.getvalue()
    return out


@pytest.mark.parametrize("associations", [1, 3])
def test_reader_sends_what_the_sender_would(
    monkeypatch: pytest.MonkeyPatch, fault_scp, outside: Path, reconciler: Reconciler, associations: int
) -> None:
    alone = fault_scp(delay=0.01)
    with monkeypatch.context() as patch:
        patch.setattr(readahead, "MIN_JOBS", 10**6)  # no reader
        by_itself = _import(outside, alone, reconciler, associations)
    counts = _count_answers(monkeypatch)
    monkeypatch.setattr(readahead, "_yield_cpu", lambda: None)  # the forked reader keeps this: no starving under load
    before = descendants(os.getpid())
    ahead = fault_scp(delay=0.01)  # slow enough that the reader, idle-scheduled, gets ahead
    through_reader = _import(outside, ahead, reconciler, associations)
    assert counts[0] >= MAPPED // 2, counts  # the reader did answer for most (not for the skipped patient)
    assert descendants(os.getpid()) <= before  # reaped
    assert (through_reader.sent, through_reader.skipped) == (by_itself.sent, by_itself.skipped) == (MAPPED, UNMAPPED)
    assert through_reader.failed == by_itself.failed == []
    assert _by_uid(ahead.received) == _by_uid(alone.received)
    for ds in ahead.received.values():
        assert ds.PatientID in ("LOC-1", "LOC-2")
        assert ds.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0].PatientID in ("PAT001", "PAT002")


def test_reader_dying_midway_leaves_the_rest_to_the_sender(
    monkeypatch: pytest.MonkeyPatch, fault_scp, outside: Path, reconciler: Reconciler
) -> None:
    read = readahead._read
    calls = [0]

    def dies_on_the_fifth(job, rec):  # runs in the forked reader
        calls[0] += 1
        if calls[0] == 5:
            os._exit(1)
        return read(job, rec)

    monkeypatch.setattr(readahead, "_read", dies_on_the_fifth)
    counts = _count_answers(monkeypatch)
    scp = fault_scp(delay=0.01)
    report = _import(outside, scp, reconciler)
    assert (report.sent, report.skipped, report.failed) == (MAPPED, UNMAPPED, [])
    assert counts[1] >= MAPPED + UNMAPPED - 4  # the senders read every job the reader did not live to answer
    assert {ds.PatientID for ds in scp.received.values()} == {"LOC-1", "LOC-2"}


def test_ctrl_c_mid_import_says_what_stays_and_leaves_no_reader(tmp_path: Path, fault_scp, outside: Path) -> None:
    patient_map = tmp_path / "map.csv"
    patient_map.write_text("source_patient_id,patient_id\nPAT001,LOC-1\nPAT002,LOC-2\n")
    scp = fault_scp(delay=0.2)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicommedia",
            "read",
            str(outside),
            "--send",
            scp.address,
            "--patient-map",
            str(patient_map),
            "--unmapped",
            "skip",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    deadline = time.monotonic() + 30
    while not scp.received and time.monotonic() < deadline:  # the import is under way
        time.sleep(0.05)
    reader = descendants(run.pid)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "interrupted; the instances the peer received before stay there" in err and "Traceback" not in err
    assert json.loads(out)["error"]["code"] == "interrupted"
    assert reader and not any(Path(f"/proc/{pid}").exists() for pid in reader)  # the reader went with it


def test_data_set_cut_short_is_reported_by_the_sender(fault_scp, outside: Path, reconciler: Reconciler) -> None:
    victim = outside / "a" / "slice00003.dcm"
    raw = victim.read_bytes()
    _, offset = read_file_meta(raw)
    victim.write_bytes(raw[: raw.index(b"DOE^JANE", offset)])  # ends inside Patient's Name: the head cannot be walked
    report = _import(outside, fault_scp(delay=0.01), reconciler)
    assert (report.sent, report.skipped) == (MAPPED - 1, UNMAPPED)
    (failure,) = report.failed
    assert failure.file_id.endswith("SLICE00003.DCM") or failure.file_id.endswith("slice00003.dcm")
    assert "cannot write the local identity" in failure.reason


def test_message_stream_takes_messages_whole_as_they_arrive() -> None:
    read_end, write_end = os.pipe()
    stream = MessageStream(read_end)
    assert stream.arrived() == [] and not stream.ended
    data = marshal.dumps([1, b"x" * 3000])
    framed = struct.pack("<I", len(data)) + data
    os.write(write_end, framed + framed[:2])
    assert stream.arrived() == [[1, b"x" * 3000]]
    os.write(write_end, framed[2:-1])
    assert stream.arrived() == []
    os.write(write_end, framed[-1:])
    assert stream.arrived() == [[1, b"x" * 3000]]
    os.close(write_end)
    assert stream.arrived() == [] and stream.ended
    os.close(read_end)
