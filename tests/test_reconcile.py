"""Import reconciliation: local identities from a patient map or a worklist (DCMTK wlmscpfs), outside values kept in
the Original Attributes Sequence, UIDs unchanged, every instance accounted for (Orthanc, a real PACS)."""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from dicommedia.part10 import read_file_meta as split_part10
from dicommedia.read.coerce import Coercion, coerce_head
from tests.network_fixtures import orthanc, orthanc_empty, storescp, worklist_scp  # noqa: F401  (fixtures)
from tests.synthetic import write_series

ONE, TWO = 12, 6  # slices of each outside patient: more than 16 in all, so that the reconciling reader is used
OUTSIDE = {"PAT001": ("DOE^JANE", "ACC001", ONE), "PAT002": ("ROE^RICHARD", "ACC002", TWO)}


def dicommedia(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "dicommedia", *args], capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single error line of a failed run (no traceback, no internal error)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def outside_folder(tmp_path: Path) -> Path:
    """Two outside patients, one study each; one slice already carries an Original Attributes Sequence item."""
    folder = tmp_path / "outside"
    for patient_id, (name, accession, count) in OUTSIDE.items():
        write_series(folder / patient_id, count, rows=16, cols=16, patient_id=patient_id, patient_name=name)
        for path in (folder / patient_id).iterdir():
            ds = dcmread(path)
            ds.AccessionNumber = accession
            if patient_id == "PAT001" and path.name == "slice00001.dcm":
                earlier = Dataset()
                earlier.ModifiedAttributesSequence = Sequence([Dataset()])
                earlier.ModifiedAttributesSequence[0].InstitutionName = "FIRST HOSPITAL"
                earlier.AttributeModificationDateTime = "20200101120000"
                earlier.ModifyingSystem = "EARLIER"
                earlier.SourceOfPreviousValues = ""
                earlier.ReasonForTheAttributeModification = "CORRECT"
                ds.OriginalAttributesSequence = Sequence([earlier])
            ds.save_as(path, enforce_file_format=True)
    return folder


@pytest.fixture
def disc(tmp_path: Path, outside_folder: Path) -> Path:
    """The outside patients burnt to an ISO image by dicommedia create."""
    iso = tmp_path / "outside.iso"
    made = dicommedia("create", str(outside_folder), "-o", str(iso))
    assert made.returncode == 0, made.stderr
    return iso


def on_media(folder: Path) -> dict[str, Dataset]:
    """SOP Instance UID -> data set of the outside files."""
    return {ds.SOPInstanceUID: ds for ds in (dcmread(p) for p in folder.rglob("*.dcm"))}


def write_map(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.csv"
    path.write_text(text)
    return path


def assert_reconciled(stored: dict[str, bytes], outside: dict[str, Dataset], local: dict[str, tuple[str, str]]) -> None:
    """Each stored instance: the local ID and name, the outside ones in a new COERCE item, UIDs and pixels unchanged."""
    assert stored
    for uid, blob in stored.items():
        got, was = dcmread(BytesIO(blob)), outside[uid]
        assert (got.PatientID, str(got.PatientName)) == local[was.PatientID]
        for keyword in (
            "SOPInstanceUID",
            "SOPClassUID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "FrameOfReferenceUID",
        ):
            assert got[keyword].value == was[keyword].value
        assert got.PixelData == was.PixelData
        items = got.OriginalAttributesSequence
        kept = len(was.get("OriginalAttributesSequence", []))
        assert len(items) == kept + 1
        if kept:
            assert items[0].ModifyingSystem == "EARLIER"  # the item already there is kept, first
        item = items[-1]
        assert item.ReasonForTheAttributeModification == "COERCE"
        assert item.ModifyingSystem == "DICOMMEDIA"
        assert len(item.AttributeModificationDateTime) >= 14
        original = item.ModifiedAttributesSequence[0]
        assert original.PatientID == was.PatientID
        assert str(original.PatientName) == str(was.PatientName)


def test_patient_map_into_orthanc_then_skip_existing(tmp_path: Path, disc: Path, outside_folder: Path, orthanc_empty):
    patient_map = write_map(
        tmp_path,
        "source_patient_id,patient_id,patient_name,patient_birth_date\n"
        "PAT001,LOC-1,LOCAL^ONE,19700101\n"
        "PAT002,LOC-2,LOCAL^TWO,\n",
    )
    first = dicommedia("read", str(disc), "--send", orthanc_empty.address, "--patient-map", str(patient_map), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["sent"] == report["found"] == ONE + TWO and report["failed"] == [] and report["skipped"] == 0
    local = {"PAT001": ("LOC-1", "LOCAL^ONE"), "PAT002": ("LOC-2", "LOCAL^TWO")}
    assert_reconciled(orthanc_empty.instances(), on_media(outside_folder), local)

    again = dicommedia(
        "read",
        str(disc),
        "--send",
        orthanc_empty.address,
        "--patient-map",
        str(patient_map),
        "--skip-existing",
        "--json",
    )
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["sent"], report["skipped"], report["found"]) == (0, ONE + TWO, ONE + TWO)
    assert {s["reason"] for s in report["skipped_instances"]} == {"already on the peer"}
    assert orthanc_empty.count() == ONE + TWO


def test_unmapped_patient_is_never_sent_unless_asked(tmp_path: Path, disc: Path, outside_folder: Path, orthanc_empty):
    patient_map = write_map(tmp_path, "source_patient_id,patient_id,patient_name\nPAT001,LOC-1,LOCAL^ONE\n")
    args = ["read", str(disc), "--send", orthanc_empty.address, "--patient-map", str(patient_map), "--json"]
    failed = dicommedia(*args)
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["sent"] == ONE and len(report["failed"]) == TWO
    assert all("'PAT002' is not in the patient map" in f["reason"] for f in report["failed"])
    stored = orthanc_empty.instances()
    assert {dcmread(BytesIO(b)).PatientID for b in stored.values()} == {"LOC-1"}

    orthanc_empty.clear()
    skipped = dicommedia(*args, "--unmapped", "skip")
    assert skipped.returncode == 0, skipped.stderr
    report = json.loads(skipped.stdout)
    assert (report["sent"], report["skipped"], len(report["failed"])) == (ONE, TWO, 0)

    orthanc_empty.clear()
    sent = dicommedia(*args, "--unmapped", "send")
    assert sent.returncode == 0, sent.stderr
    ids = sorted(dcmread(BytesIO(b)).PatientID for b in orthanc_empty.instances().values())
    assert ids == ["LOC-1"] * ONE + ["PAT002"] * TWO  # sent as they are, not under another patient's identity


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("source_patient_id,patient_id\nPAT001,LOC-1,EXTRA\n", "line 2: 3 fields where the header has 2"),
        (
            "source_patient_id,patient_id,favourite_colour\nPAT001,LOC-1,red\n",
            "line 1: unknown column 'favourite_colour'",
        ),
        ("patient_id,patient_name\nLOC-1,LOCAL^ONE\n", "needs source_patient_id and patient_id"),
        ("source_patient_id,patient_id,patient_birth_date\nPAT001,LOC-1,1.1.1970\n", "is not a date as YYYYMMDD"),
        (
            "source_patient_id,patient_id\nPAT001,LOC-1\nPAT001,LOC-9\n",
            "line 3: outside patient 'PAT001' is mapped twice",
        ),
    ],
)
def test_bad_map_is_one_line_and_nothing_is_sent(tmp_path: Path, disc: Path, orthanc_empty, text: str, cause: str):
    patient_map = write_map(tmp_path, text)
    result = dicommedia("read", str(disc), "--send", orthanc_empty.address, "--patient-map", str(patient_map))
    line = one_line_error(result)
    assert cause in line and str(patient_map) in line
    assert orthanc_empty.count() == 0


def test_worklist_gives_the_local_identity(disc: Path, outside_folder: Path, orthanc_empty, worklist_scp):
    worklist_scp.add("one", AccessionNumber="ACC001", PatientID="LOC-1", PatientName="LOCAL^ONE", PatientSex="F")
    worklist_scp.add("two", AccessionNumber="ACC002", PatientID="LOC-2", PatientName="LOCAL^TWO", PatientSex="M")
    result = dicommedia(
        "read", str(disc), "--send", orthanc_empty.address, "--worklist", worklist_scp.address, "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == ONE + TWO
    local = {"PAT001": ("LOC-1", "LOCAL^ONE"), "PAT002": ("LOC-2", "LOCAL^TWO")}
    assert_reconciled(orthanc_empty.instances(), on_media(outside_folder), local)


def test_worklist_with_no_match_or_two_patients_sends_nothing_for_them(disc: Path, orthanc_empty, worklist_scp):
    worklist_scp.add("one", AccessionNumber="ACC001", PatientID="LOC-1", PatientName="LOCAL^ONE")
    worklist_scp.add("one-bis", AccessionNumber="ACC001", PatientID="LOC-7", PatientName="OTHER^ONE")
    result = dicommedia(
        "read", str(disc), "--send", orthanc_empty.address, "--worklist", worklist_scp.address, "--json"
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["sent"] == 0 and len(report["failed"]) == ONE + TWO
    reasons = {f["reason"] for f in report["failed"]}
    assert "not sent: the worklist holds 2 different patients for accession 'ACC001'" in reasons
    assert "not sent: outside patient 'PAT002' is not in the patient map or worklist" in reasons
    assert orthanc_empty.count() == 0


def test_dead_worklist_is_one_line(disc: Path, orthanc_empty):
    from tests.conftest import free_port

    result = dicommedia("read", str(disc), "--send", orthanc_empty.address, "--worklist", f"WL@127.0.0.1:{free_port()}")
    assert "no association for the worklist query" in one_line_error(result)
    assert orthanc_empty.count() == 0


def test_dry_run_tells_identity_per_patient_and_study_and_sends_nothing(tmp_path: Path, disc: Path, orthanc_empty):
    patient_map = write_map(tmp_path, "source_patient_id,patient_id,patient_name\nPAT001,LOC-1,LOCAL^ONE\n")
    result = dicommedia(
        "read", str(disc), "--send", orthanc_empty.address, "--patient-map", str(patient_map),
        "--unmapped", "skip", "--set", "InstitutionName=OUR HOSPITAL", "--dry-run", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (plan["found"], plan["send"], plan["skipped"], plan["failed"]) == (ONE + TWO, ONE, TWO, 0)
    patients = {p["patient_id"]: p for p in plan["patients"]}
    (mapped,) = patients["PAT001"]["studies"]
    assert mapped["send"] == ONE
    assert mapped["local_identity"] == [
        {
            "source": "patient map line 2",
            "values": {"InstitutionName": "OUR HOSPITAL", "PatientName": "LOCAL^ONE", "PatientID": "LOC-1"},
        }
    ]
    (unmapped,) = patients["PAT002"]["studies"]
    assert unmapped["send"] == 0 and unmapped["skipped"][0]["instances"] == TWO
    assert "not in the patient map" in unmapped["skipped"][0]["reason"]
    assert orthanc_empty.count() == 0


def test_set_and_implicit_vr_folder_to_storescp(tmp_path: Path, storescp) -> None:
    """A folder with an Implicit VR file: coerced in its own encoding, stored by DCMTK bit-exact elsewhere."""
    folder = tmp_path / "plain"
    paths = write_series(folder, 3, rows=16, cols=16)
    ds = dcmread(paths[0])
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(paths[0], implicit_vr=True, little_endian=True, enforce_file_format=True)
    scp = storescp("+xa")
    result = dicommedia(
        "read", str(folder), "--send", scp.address, "--set", "PatientID=LOC-9", "--set", "(0008,0080)=HOSP", "--json"
    )
    assert result.returncode == 0, result.stderr
    received = [dcmread(p) for p in scp.files()]
    assert len(received) == 3
    for got in received:
        assert (got.PatientID, got.InstitutionName) == ("LOC-9", "HOSP")
        original = got.OriginalAttributesSequence[-1].ModifiedAttributesSequence[0]
        assert original.PatientID == "PAT001" and original.InstitutionName == ""  # added: recorded empty
        assert (
            got.PixelData
            == dcmread(next(p for p in paths if dcmread(p).SOPInstanceUID == got.SOPInstanceUID)).PixelData
        )


def test_coerce_head_unchanged_value_changes_nothing(tmp_path: Path) -> None:
    raw = write_series(tmp_path, 1, rows=8, cols=8)[0].read_bytes()
    _, offset = split_part10(raw)
    data = raw[offset:]
    assert coerce_head(data, True, Coercion({0x00100020: ("LO", "PAT001")}, "20260101", "X")) is None
    head, cut = coerce_head(data, True, Coercion({0x00100020: ("LO", "NEW")}, "20260101", "X"))
    assert cut < len(data) and dcmread(BytesIO(raw[:offset] + head + data[cut:])).PatientID == "NEW"


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        ("Foo=1", "not TAG=VALUE"),
        ("SOPInstanceUID=1.2.3", "UIDs stay unchanged"),
        ("PatientBirthDate=1.1.70", "YYYYMMDD"),
    ],
)
def test_bad_set_is_usage_error(disc: Path, value: str, cause: str) -> None:
    result = dicommedia("read", str(disc), "--send", "PACS@127.0.0.1:104", "--set", value)
    assert result.returncode == 2 and cause in result.stderr and "Traceback" not in result.stderr


def test_report_adds_up_with_a_duplicate_and_a_filter(tmp_path: Path, storescp) -> None:
    folder = tmp_path / "dup"
    paths = write_series(folder / "a", 3, rows=8, cols=8)
    write_series(folder / "b", 2, rows=8, cols=8, patient_id="OTHER")
    (folder / "copy.dcm").write_bytes(paths[0].read_bytes())  # the same instance in a second file
    scp = storescp("+xa")
    result = dicommedia("read", str(folder), "--send", scp.address, "--patient-id", "PAT001", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["found"], report["sent"], report["skipped"], report["duplicates"]) == (6, 3, 2, 1)
    assert report["sent"] + len(report["failed"]) + report["skipped"] + report["duplicates"] == report["found"]
    assert len(scp.files()) == 3
