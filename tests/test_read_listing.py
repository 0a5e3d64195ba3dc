"""``dicommedia read``: listing and extraction of discs made by DCMTK + genisoimage, as files and as mounts."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.conftest import run
from tests.media_fixtures import dcmmkdir, genisoimage, mount_as, rewrite_dicomdir, write_ct_study

COMPRESSED = ["MR_small_jp2klossless.dcm", "SC_rgb_rle.dcm", "JPEG-lossy.dcm"]


def dicommedia(*args: str):
    return run([sys.executable, "-m", "dicommedia", *map(str, args)])


@pytest.fixture
def mixed_disc(tmp_path: Path, pydicom_files) -> Path:
    """A DCMTK file-set with an uncompressed CT series and compressed MR/other objects of another patient."""
    folder = tmp_path / "disc"
    write_ct_study(folder, 4, patient_id="PAT1")
    target = folder / "DICOM" / "PAT2" / "ST1" / "SE1"
    target.mkdir(parents=True)
    for i, name in enumerate(COMPRESSED):
        shutil.copy(pydicom_files[name], target / f"IM{i + 1}")
    dcmmkdir(folder, "MIXED")
    return folder


def listing(media: Path, *extra: str) -> dict:
    result = dicommedia("read", media, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_listing_json_of_an_iso(mixed_disc: Path, tmp_path: Path, pydicom_files):
    iso = genisoimage(mixed_disc, tmp_path / "mixed.iso", "MIXED")
    data = listing(iso)
    assert set(data) == {"media", "fileset_id", "instances", "patients", "unreferenced_files"}
    assert (data["fileset_id"], data["instances"], data["unreferenced_files"]) == ("MIXED", 7, [])
    by_id = {p["patient_id"]: p for p in data["patients"]}
    ct = by_id["PAT1"]["studies"][0]
    assert set(ct) == {"study_instance_uid", "study_date", "study_description", "series"}
    assert (ct["study_date"], ct["study_description"]) == ("20240102", "CT HEAD")
    assert ct["series"] == [
        {
            "series_instance_uid": ct["series"][0]["series_instance_uid"],
            "modality": "CT",
            "series_number": 1,
            "instances": 4,
        }
    ]
    compressed_sops = {str(dcmread(pydicom_files[n], stop_before_pixels=True).SOPInstanceUID) for n in COMPRESSED}
    assert len(compressed_sops) == 3
    others = [p for pid, p in by_id.items() if pid != "PAT1"]
    assert sum(se["instances"] for p in others for st in p["studies"] for se in st["series"]) == 3


def test_mounted_lowercase_lists_like_the_iso(mixed_disc: Path, tmp_path: Path):
    iso = genisoimage(mixed_disc, tmp_path / "m.iso", "MIXED")
    mounted = mount_as(mixed_disc, tmp_path / "mnt", "lower-dot")
    from_iso, from_mount = listing(iso), listing(mounted)
    from_iso.pop("media"), from_mount.pop("media")
    assert from_iso == from_mount


def test_filters(mixed_disc: Path):
    full = listing(mixed_disc)
    ct_study = next(p for p in full["patients"] if p["patient_id"] == "PAT1")["studies"][0]
    assert listing(mixed_disc, "--patient-id", "PAT1")["instances"] == 4
    assert listing(mixed_disc, "--study-uid", ct_study["study_instance_uid"])["instances"] == 4
    series_uid = ct_study["series"][0]["series_instance_uid"]
    assert listing(mixed_disc, "--series-uid", series_uid, "--patient-id", "PAT1")["instances"] == 4
    assert listing(mixed_disc, "--patient-id", "NOBODY")["patients"] == []


def test_human_tree(mixed_disc: Path):
    result = dicommedia("read", mixed_disc)
    assert result.returncode == 0
    assert "PAT1" in result.stdout and "CT HEAD" in result.stdout and "4 instances" in result.stdout
    assert "2024-01-02" in result.stdout


def test_extract_with_manifest(mixed_disc: Path, tmp_path: Path):
    iso = genisoimage(mixed_disc, tmp_path / "x.iso", "MIXED")
    out = tmp_path / "out"
    result = dicommedia("read", iso, "--extract", out, "--patient-id", "PAT1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["extracted"] == 4
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert len(manifest["files"]) == 4 and manifest["fileset_id"] == "MIXED"
    for entry in manifest["files"]:
        copied = out / entry["path"]
        original = mixed_disc.joinpath(*entry["file_id"].split("\\"))
        assert copied.read_bytes() == original.read_bytes()
        assert entry["sop_instance_uid"] == dcmread(copied, stop_before_pixels=True).SOPInstanceUID
    again = dicommedia("read", iso, "--extract", out)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr


def test_dicomdir_pointing_outside_leaks_nothing(tmp_path: Path):
    secret = tmp_path / "SECRET"
    secret.write_bytes(b"\0" * 128 + b"DICM" + b"TOP-SECRET-CONTENT")
    disc = tmp_path / "d"
    write_ct_study(disc, 2, patient_id="P")
    dcmmkdir(disc)

    def escape(records):
        leaf = next(r for r in records if r.DirectoryRecordType == "IMAGE")
        leaf.ReferencedFileID = ["..", "SECRET", "..", "SECRET"]  # same encoded length as DICOM\P\ST1\SE1\IM1

    rewrite_dicomdir(disc / "DICOMDIR", escape)
    data = listing(disc, "--dicomdir-only")
    assert data["instances"] == 1
    out = tmp_path / "out"
    result = dicommedia("read", disc, "--extract", out, "--dicomdir-only")
    assert result.returncode == 1 and "bad-file-id" in result.stderr
    extracted = [p for p in out.rglob("*") if p.is_file()]
    assert len(extracted) == 2  # one instance + the manifest
    assert all(b"TOP-SECRET" not in p.read_bytes() for p in extracted)


def test_not_media_is_one_line(pydicom_files):
    result = dicommedia("read", pydicom_files["CT_small.dcm"])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "single DICOM instance" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_scanned_vendor_export(mixed_disc: Path):
    (mixed_disc / "DICOMDIR").unlink()
    data = listing(mixed_disc)
    assert (data["fileset_id"], data["instances"]) == (None, 7)
