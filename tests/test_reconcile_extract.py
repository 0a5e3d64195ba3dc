"""``read --extract`` with reconciliation: files written under the local identity, the outside values in the
Original Attributes Sequence (checked with DCMTK dcmdump), UIDs and pixels unchanged, MANIFEST.json saying what
each file got, unmapped instances skipped or failed as asked."""

from __future__ import annotations

import hashlib
import json
import subprocess
from io import BytesIO
from pathlib import Path

from pydicom import dcmread

from tests.test_reconcile import (  # noqa: F401  (fixtures)
    ONE,
    TWO,
    assert_reconciled,
    dicommedia,
    disc,
    on_media,
    outside_folder,
    write_map,
)

LOCAL = {"PAT001": ("LOC-1", "LOCAL^ONE"), "PAT002": ("LOC-2", "LOCAL^TWO")}


def extracted(dest: Path) -> dict[str, bytes]:
    """SOP Instance UID -> bytes of the extracted files."""
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    return {entry["sop_instance_uid"]: (dest / entry["path"]).read_bytes() for entry in manifest["files"]}


def test_extract_with_patient_map(tmp_path: Path, disc: Path, outside_folder: Path, tool):
    patient_map = write_map(
        tmp_path,
        "source_patient_id,patient_id,patient_name\nPAT001,LOC-1,LOCAL^ONE\nPAT002,LOC-2,LOCAL^TWO\n",
    )
    dest = tmp_path / "out"
    result = dicommedia("read", str(disc), "--extract", str(dest), "--patient-map", str(patient_map), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["extracted"] == ONE + TWO
    files = extracted(dest)
    assert_reconciled(files, on_media(outside_folder), LOCAL)

    manifest = json.loads((dest / "MANIFEST.json").read_text())
    for entry in manifest["files"]:
        written = (dest / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(written).hexdigest() and entry["size"] == len(written)
        was = dcmread(dest / entry["path"]).OriginalAttributesSequence[-1].ModifiedAttributesSequence[0].PatientID
        assert entry["identity"]["values"]["PatientID"] == LOCAL[was][0]
        assert entry["identity"]["source"].startswith("patient map line")

    # DCMTK reads the written file the same way: local identity, outside one in a COERCE item.
    path = dest / manifest["files"][0]["path"]
    dump = subprocess.run([tool("dcmdump"), "+P", "0010,0020", "+P", "0400,0565", str(path)], capture_output=True)
    lines = dump.stdout.decode().splitlines()
    assert dump.returncode == 0, dump.stderr
    assert any("[LOC-1]" in line or "[LOC-2]" in line for line in lines if line.startswith("(0010,0020)"))
    assert any("[PAT001]" in line or "[PAT002]" in line for line in lines if "(0010,0020)" in line)
    assert "[COERCE]" in dump.stdout.decode()
    full = subprocess.run([tool("dcmdump"), str(path)], capture_output=True, text=True)
    assert "(0400,0561) SQ" in full.stdout and "(0400,0565) CS [COERCE]" in full.stdout


def test_extract_unmapped_skip_and_fail(tmp_path: Path, disc: Path):
    patient_map = write_map(tmp_path, "source_patient_id,patient_id,patient_name\nPAT001,LOC-1,LOCAL^ONE\n")
    args = ["read", str(disc), "--patient-map", str(patient_map), "--json"]

    skipped = dicommedia(*args, "--extract", str(tmp_path / "skip"), "--unmapped", "skip")
    assert skipped.returncode == 0, skipped.stderr
    report = json.loads(skipped.stdout)
    assert report["extracted"] == ONE and len(report["skipped"]) == TWO and report["failed"] == []
    assert {dcmread(BytesIO(b)).PatientID for b in extracted(tmp_path / "skip").values()} == {"LOC-1"}

    failed = dicommedia(*args, "--extract", str(tmp_path / "fail"))
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["extracted"] == ONE and len(report["failed"]) == TWO
    assert all("'PAT002' is not in the patient map" in f["reason"] for f in report["failed"])
    ids = {dcmread(p).PatientID for p in (tmp_path / "fail").rglob("*") if p.is_file() and p.name != "MANIFEST.json"}
    assert ids == {"LOC-1"}  # nothing under an outside identity


def test_extract_with_set_and_no_send_needed(tmp_path: Path, disc: Path):
    dest = tmp_path / "out"
    result = dicommedia("read", str(disc), "--extract", str(dest), "--set", "InstitutionName=LOCAL HOSPITAL")
    assert result.returncode == 0, result.stderr
    for blob in extracted(dest).values():
        ds = dcmread(BytesIO(blob))
        assert ds.InstitutionName == "LOCAL HOSPITAL"
        assert ds.OriginalAttributesSequence[-1].ReasonForTheAttributeModification == "COERCE"
    alone = dicommedia("read", str(disc), "--set", "InstitutionName=X")
    assert alone.returncode == 2 and "needs --send, --stow or --extract" in alone.stderr
