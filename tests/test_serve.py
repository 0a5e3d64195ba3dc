"""``dicommedia serve``: the media node, fed by DCMTK storescu (the modality) and pynetdicom SCUs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import CTImageStorage, Verification

from dicommedia.media import open_media
from tests.network_fixtures import MediaNodeProcess, dcmtk, media_node  # noqa: F401  (fixtures)
from tests.synthetic import write_series

MCM = "1.2.840.10008.5.1.1.33"


def dicommedia(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "dicommedia", *args], capture_output=True, text=True, timeout=120)


def storescu(node: MediaNodeProcess, folder: Path) -> subprocess.CompletedProcess:
    """DCMTK storescu, the modality: every file under ``folder`` over one association, Nagle off."""
    env = {**os.environ, "TCP_NODELAY": "1"}
    cmd = [dcmtk("storescu"), "+sd", "+r", "-aec", "NODE", "127.0.0.1", str(node.port), str(folder)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def disc_uids(disc: Path) -> dict[str, set[str]]:
    """SOP Instance UIDs on a disc, by Study Instance UID."""
    out: dict[str, set[str]] = {}
    with open_media(disc) as view:
        for f in view.files():
            out.setdefault(f.study_instance_uid, set()).add(f.sop_instance_uid)
    return out


def sent_uids(folder: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in folder.rglob("*.dcm"):
        ds = dcmread(path, stop_before_pixels=True)
        out.setdefault(ds.StudyInstanceUID, set()).add(ds.SOPInstanceUID)
    return out


def valid(disc: Path) -> dict:
    result = dicommedia("validate", str(disc), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["valid"], result.stdout
    return report


def scu(node: MediaNodeProcess, storage: bool = True) -> tuple[AE, object]:
    """A pynetdicom association to the node proposing Media Creation Management (and storage)."""
    ae = AE("MODALITY")
    ae.add_requested_context(MCM)
    ae.add_requested_context(Verification)
    if storage:
        for cx in StoragePresentationContexts[:100]:
            ae.add_requested_context(cx.abstract_syntax)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="NODE")
    assert assoc.is_established
    return ae, assoc


@pytest.mark.interop
def test_storescu_sends_two_studies_two_valid_discs_catalogued(tmp_path: Path, media_node) -> None:
    sent = tmp_path / "sent"
    write_series(sent / "a", 6, patient_id="PAT_A")
    write_series(sent / "b", 4, patient_id="PAT_B")
    node = media_node("--study-idle", "1")
    result = storescu(node, sent)
    assert result.returncode == 0, result.stderr
    node.wait_for(lambda: len(node.events("disc")) == 2)
    discs = node.discs()
    assert len(discs) == 2
    expected = sent_uids(sent)
    on_discs = {}
    for disc in discs:
        assert valid(disc)["instances"] in (4, 6)
        on_discs.update(disc_uids(disc))
    assert on_discs == expected
    for study_uid, uids in expected.items():
        answer = dicommedia(
            "catalog", "--catalog", str(node.output / "catalog.sqlite"), "--study-uid", study_uid, "--json"
        )
        assert answer.returncode == 0, answer.stderr
        volumes = json.loads(answer.stdout)["volumes"]
        assert len(volumes) == 1
        assert disc_uids(Path(volumes[0]["path"])) == {study_uid: uids}
        assert volumes[0]["studies"] == [
            {**volumes[0]["studies"][0], "study_instance_uid": study_uid, "instances": len(uids)}
        ]
        assert {"path", "fileset_id", "label", "created"} <= set(volumes[0])
    association = node.events("association")
    assert association[0]["instances"] == 10 and association[0]["end"] == "released"
    status = dicommedia("serve", "-o", str(node.output), "--status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["received"] == 10


def test_media_creation_request_makes_a_disc_of_those_instances(tmp_path: Path, media_node) -> None:
    paths = write_series(tmp_path / "sent", 5)
    node = media_node("--study-idle", "3600")  # no disc by itself: only the request makes one
    ae, assoc = scu(node)
    chosen = [dcmread(p) for p in paths[:3]]
    for ds in chosen:
        assert assoc.send_c_store(ds).Status == 0
    request = Dataset()
    request.ReferencedSOPSequence = []
    for ds in chosen:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        request.ReferencedSOPSequence.append(item)
    request.LabelUsingInformationExtractedFromInstances = "YES"
    uid = generate_uid()
    status, attrs = assoc.send_n_create(request, MCM, uid)
    assert status.Status == 0
    status, _ = assoc.send_n_action(None, 1, MCM, uid)
    assert status.Status == 0
    status, _ = assoc.send_n_action(None, 1, MCM, uid)
    assert status.Status == 0xA510  # initiated already
    deadline = time.monotonic() + 60
    while True:
        status, attrs = assoc.send_n_get([0x21000020, 0x21000030, 0x00081198], MCM, uid)
        assert status.Status == 0
        if attrs.ExecutionStatus in ("DONE", "FAILURE") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert attrs.ExecutionStatus == "DONE", attrs
    assert "FailedSOPSequence" not in attrs
    status, _ = assoc.send_n_action(None, 2, MCM, uid)
    assert status.Status == 0xC201  # nothing to cancel: done
    assert assoc.send_n_delete(MCM, uid).Status == 0
    status, _ = assoc.send_n_get([0x21000020, 0x21000030], MCM, uid)
    assert status.Status == 0x0112
    assoc.release()
    (disc,) = node.discs()
    assert valid(disc)["instances"] == 3
    assert set().union(*disc_uids(disc).values()) == {ds.SOPInstanceUID for ds in chosen}


def test_malformed_media_creation_requests_get_the_standard_failure_status(tmp_path: Path, media_node) -> None:
    (path,) = write_series(tmp_path / "sent", 1)
    node = media_node("--study-idle", "3600")
    ae, assoc = scu(node)
    ds = dcmread(path)
    assert assoc.send_c_store(ds).Status == 0

    def request(*refs: tuple[str, str]) -> Dataset:
        out = Dataset()
        out.ReferencedSOPSequence = []
        for sop_class, sop_instance in refs:
            item = Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
            out.ReferencedSOPSequence.append(item)
        return out

    labelled = Dataset()  # (an empty attribute list: pynetdicom's SCU announces a data set it never sends)
    labelled.LabelText = "no references"
    cases = [
        (request(), 0x0121),  # Type 1 sequence, empty: missing attribute value
        (labelled, 0x0120),  # no sequence at all: missing attribute
        (request((CTImageStorage, generate_uid())), 0x0106),  # an instance never received
        (request((MRImageStorage, ds.SOPInstanceUID)), 0x0106),  # received, but under another SOP Class
    ]
    for attributes, expected in cases:
        status, _ = assoc.send_n_create(attributes, MCM, generate_uid())
        assert status.Status == expected, (attributes, status)
    status, _ = assoc.send_n_action(None, 1, MCM, generate_uid())
    assert status.Status == 0x0112  # no such request
    good = generate_uid()
    assert assoc.send_n_create(request((CTImageStorage, ds.SOPInstanceUID)), MCM, good)[0].Status == 0
    assert assoc.send_n_create(request((CTImageStorage, ds.SOPInstanceUID)), MCM, good)[0].Status == 0x0111
    assert assoc.send_n_action(None, 7, MCM, good)[0].Status == 0x0123  # no such action
    assert assoc.send_c_echo().Status == 0  # still serving
    assoc.release()
    assert node.proc.poll() is None


def test_four_concurrent_associations_of_500_none_lost_each_study_on_one_disc(tmp_path: Path, media_node) -> None:
    folders = []
    for n in range(4):
        folder = tmp_path / f"modality{n}"
        write_series(folder / "s1", 250, patient_id=f"P{n}")
        write_series(folder / "s2", 250, patient_id=f"P{n}")
        folders.append(folder)
    node = media_node("--study-idle", "2")
    env = {**os.environ, "TCP_NODELAY": "1"}
    procs = [
        subprocess.Popen(
            [dcmtk("storescu"), "+sd", "+r", "-aec", "NODE", "127.0.0.1", str(node.port), str(f)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        for f in folders
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    expected: dict[str, set[str]] = {}
    for folder in folders:
        expected.update(sent_uids(folder))
    assert len(expected) == 8 and sum(len(v) for v in expected.values()) == 2000
    node.wait_for(lambda: len(node.events("disc")) >= 8, timeout=240)
    seen: dict[str, list[Path]] = {}
    on_discs: dict[str, set[str]] = {}
    for disc in node.discs():
        for study, uids in disc_uids(disc).items():
            seen.setdefault(study, []).append(disc)
            on_discs.setdefault(study, set()).update(uids)
    assert on_discs == expected  # none lost, none invented
    assert all(len(discs) == 1 for discs in seen.values()), seen  # every study on exactly one disc
    assert [e["instances"] for e in node.events("association")] == [500] * 4


def test_kill_9_mid_study_then_restart_every_acknowledged_instance_reaches_a_disc(tmp_path: Path, media_node) -> None:
    paths = write_series(tmp_path / "sent", 300)
    output = tmp_path / "discs"
    node = media_node("--study-idle", "3600", output=output)
    acknowledged: list[str] = []
    ae = AE("MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="NODE")
    assert assoc.is_established

    def killer() -> None:
        while len(acknowledged) < 100:
            time.sleep(0.005)
        node.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    for path in paths:
        ds = dcmread(path)
        status = assoc.send_c_store(ds)
        if not assoc.is_established or "Status" not in status:
            break
        if status.Status == 0:
            acknowledged.append(ds.SOPInstanceUID)
    thread.join()
    assoc.release()
    assert 100 <= len(acknowledged) < 300
    assert not node.discs()
    restarted = media_node("--study-idle", "1", output=output)
    restarted.wait_for(lambda: restarted.events("disc"))
    (disc,) = restarted.discs()
    valid(disc)
    on_disc = set().union(*disc_uids(disc).values())
    assert set(acknowledged) <= on_disc
    assert not list((output / ".spool" / "tmp").iterdir())


def test_refused_sop_class_is_reported_and_kept(tmp_path: Path, media_node) -> None:
    profile = tmp_path / "ct-only.toml"
    profile.write_text(
        'name = "CT-ONLY"\ntitle = "CT only"\nmedia = "cd-700"\nfile_system = "ISO 9660"\n'
        '[[rule]]\nsop_class = "1.2.840.10008.5.1.4.1.1.2"\nname = "CT"\n'
        'transfer_syntaxes = ["1.2.840.10008.1.2.1"]\nfsc = "M"\nfsr = "M"\nfsu = "O"\n'
    )
    sent = tmp_path / "sent"
    study = generate_uid()
    write_series(sent / "ct", 3, study_uid=study)
    write_series(sent / "mr", 2, study_uid=study, sop_class=MRImageStorage)
    node = media_node("--study-idle", "1", "--profile-file", str(profile))
    assert storescu(node, sent).returncode == 0
    node.wait_for(lambda: node.events("disc") and len(node.events("refused")) == 2)
    (disc,) = node.discs()
    assert valid(disc)["instances"] == 3
    kept = list((node.output / ".spool" / "refused").rglob("*.dcm"))
    assert {dcmread(p).SOPClassUID for p in kept} == {MRImageStorage} and len(kept) == 2
    assert all("SOP class" in e["reason"] or "profile" in e["reason"] for e in node.events("refused"))


def test_sigterm_stops_cleanly_and_pending_work_survives(tmp_path: Path, media_node) -> None:
    sent = tmp_path / "sent"
    write_series(sent, 5)
    output = tmp_path / "discs"
    node = media_node("--study-idle", "3600", output=output)
    assert storescu(node, sent).returncode == 0
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=30) == 0
    assert node.events("stop") and not node.discs()
    status = dicommedia("serve", "-o", str(output), "--status", "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["running"] is False
    restarted = media_node("--study-idle", "0.5", output=output)
    restarted.wait_for(lambda: restarted.events("disc"))
    assert valid(restarted.discs()[0])["instances"] == 5


def test_fast_path_echo_and_implicit_vr_stores(tmp_path: Path, media_node) -> None:
    from pydicom.uid import ImplicitVRLittleEndian

    node = media_node("--study-idle", "1")
    echo = subprocess.run([dcmtk("echoscu"), "127.0.0.1", str(node.port)], capture_output=True, text=True)
    assert echo.returncode == 0, echo.stderr
    paths = write_series(tmp_path / "sent", 3)
    ae = AE("MODALITY")
    ae.add_requested_context(CTImageStorage, ImplicitVRLittleEndian)  # plain storage: served by the fast path
    assoc = ae.associate("127.0.0.1", node.port, ae_title="NODE")
    assert assoc.is_established
    for path in paths:
        assert assoc.send_c_store(dcmread(path)).Status == 0
    assoc.release()
    node.wait_for(lambda: node.events("disc"))
    (disc,) = node.discs()
    assert valid(disc)["instances"] == 3
    assert disc_uids(disc) == sent_uids(tmp_path / "sent")  # grouped by the study read from Implicit VR bytes
    assert [e["calling_aet"] for e in node.events("association")] == ["ECHOSCU", "MODALITY"]


def test_grouping_keys_from_the_first_bytes() -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from dicommedia.station.receive import head_keys
    from tests.synthetic import image_dataset

    ds = image_dataset(study_uid="1.2.3.4", patient_id="P9")
    for implicit, syntax in ((False, "1.2.840.10008.1.2.1"), (True, "1.2.840.10008.1.2")):
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, implicit
        write_dataset(fp, ds)
        data = fp.getvalue()
        assert head_keys(data, syntax) == ("1.2.3.4", "P9")
        assert head_keys(data[:40], syntax) is None  # not far enough: the caller parses the file instead
    assert head_keys(b"", "1.2.840.10008.1.2.4.50") is None  # JPEG: not read here


def test_kill_9_while_the_disc_is_written_restart_writes_it_once(tmp_path: Path, media_node) -> None:
    sent = tmp_path / "sent"
    write_series(sent, 300)
    output = tmp_path / "discs"
    node = media_node("--study-idle", "0.5", output=output)
    assert storescu(node, sent).returncode == 0
    node.wait_for(lambda: node.events("study"), timeout=60)
    node.kill()  # the group is claimed: the disc is being written, or just was
    restarted = media_node("--study-idle", "0.5", output=output)
    restarted.wait_for(lambda: restarted.events("disc"))
    (disc,) = restarted.discs()  # the same File-set ID: written again in place, never twice
    assert disc.stem == node.events("study")[0]["fileset_id"]
    assert disc_uids(disc) == sent_uids(sent)
    valid(disc)
    catalog = json.loads(dicommedia("catalog", "--catalog", str(output / "catalog.sqlite"), "--json").stdout)
    assert [v["fileset_id"] for v in catalog["volumes"]] == [disc.stem]
    assert not list(output.glob(".*.tmp")) and not list((output / ".spool" / "building").iterdir())


def test_group_by_patient_into_folders(tmp_path: Path, media_node) -> None:
    sent = tmp_path / "sent"
    write_series(sent / "one", 2, patient_id="SAME")
    write_series(sent / "two", 3, patient_id="SAME")
    node = media_node("--study-idle", "1", "--group", "patient", "--format", "dir")
    assert storescu(node, sent).returncode == 0
    node.wait_for(lambda: node.events("disc"))
    (folder,) = [p for p in node.output.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert (folder / "DICOMDIR").is_file()
    assert disc_uids(folder) == sent_uids(sent)  # both studies of the patient on one volume
    (disc_event,) = node.events("disc")
    assert disc_event["instances"] == 5 and len(disc_event["studies"]) == 2


def test_media_creation_request_survives_a_restart(tmp_path: Path, media_node) -> None:
    paths = write_series(tmp_path / "sent", 2)
    output = tmp_path / "discs"
    node = media_node("--study-idle", "3600", output=output)
    ae, assoc = scu(node)
    request = Dataset()
    request.ReferencedSOPSequence = []
    for path in paths:
        ds = dcmread(path)
        assert assoc.send_c_store(ds).Status == 0
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        request.ReferencedSOPSequence.append(item)
    uid = generate_uid()
    assert assoc.send_n_create(request, MCM, uid)[0].Status == 0
    assoc.release()
    node.kill()
    restarted = media_node("--study-idle", "3600", output=output)
    ae, assoc = scu(restarted, storage=False)
    status, attrs = assoc.send_n_get([0x21000020, 0x00081199], MCM, uid)
    assert status.Status == 0 and attrs.ExecutionStatus == "IDLE" and len(attrs.ReferencedSOPSequence) == 2
    assert assoc.send_n_action(None, 1, MCM, uid)[0].Status == 0
    restarted.wait_for(lambda: assoc.send_n_get([0x21000020, 0x21000030], MCM, uid)[1].ExecutionStatus == "DONE")
    assoc.release()
    assert valid(restarted.discs()[0])["instances"] == 2
