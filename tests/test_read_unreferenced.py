"""Files on the media that the DICOMDIR forgot: listed, extracted and flagged; ``--dicomdir-only`` leaves them out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dicommedia.media import open_media
from tests.conftest import run
from tests.media_fixtures import ct_slice, dcmtk_disc, genisoimage


def dicommedia(*args: object):
    return run([sys.executable, "-m", "dicommedia", *map(str, args)])


@pytest.fixture
def forgetful_iso(tmp_path: Path) -> Path:
    """A DCMTK file-set of 3 CT slices, then a 4th slice and a text file copied in after dcmmkdir, as an ISO."""
    disc = dcmtk_disc(tmp_path, count=3)
    series = disc / "DICOM" / "PID1" / "ST1" / "SE1"
    ct_slice("PID1", number=4).save_as(series / "IM4", enforce_file_format=True)
    (series / "NOTES.TXT").write_text("not DICOM\n")
    return genisoimage(disc, tmp_path / "forgetful.iso", "TESTSET")


def test_view_yields_and_flags_forgotten_files(forgetful_iso: Path):
    with open_media(forgetful_iso) as view:
        files = list(view.files())
        assert [(f.file_id[-1], f.unreferenced) for f in files] == [
            ("IM1", False),
            ("IM2", False),
            ("IM3", False),
            ("IM4", True),
        ]
        assert files[-1].sop_instance_uid and files[-1].patient_id == "PID1"
        assert [(p.code, p.file_id) for p in view.problems] == [("unreferenced-file", "DICOM/PID1/ST1/SE1/IM4")]
    with open_media(forgetful_iso, dicomdir_only=True) as view:
        assert len(list(view.files())) == 3 and view.problems == []


def test_read_json_lists_them_and_says_so(forgetful_iso: Path):
    result = dicommedia("read", forgetful_iso, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["instances"], data["unreferenced_files"]) == (4, ["DICOM/PID1/ST1/SE1/IM4"])
    assert "unreferenced-file" in result.stderr and "IM4" in result.stderr
    only = json.loads(dicommedia("read", forgetful_iso, "--json", "--dicomdir-only").stdout)
    assert (only["instances"], only["unreferenced_files"]) == (3, [])
    human = dicommedia("read", forgetful_iso)
    assert "4 instances" in human.stdout and "1 not in the DICOMDIR" in human.stdout


def test_extract_copies_them_and_flags_them(forgetful_iso: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = dicommedia("read", forgetful_iso, "--extract", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["extracted"], summary["unreferenced"]) == (4, 1)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert {e["file_id"].split("\\")[-1]: e["unreferenced"] for e in manifest["files"]} == {
        "IM1": False,
        "IM2": False,
        "IM3": False,
        "IM4": True,
    }
    assert (out / "DICOM" / "PID1" / "ST1" / "SE1" / "IM4").is_file()
    assert not (out / "DICOM" / "PID1" / "ST1" / "SE1" / "NOTES.TXT").exists()
    assert "1 of them not in the DICOMDIR" in result.stderr
