"""``read --send`` checks each file on its own first read of it: a file that is not the instance its record names
is refused by name and never reaches the peer (DCMTK storescp), exactly as ``--extract`` refuses it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.conftest import run
from tests.crafted import find, set_extent
from tests.media_fixtures import dcmtk_disc, genisoimage
from tests.network_fixtures import storescp  # noqa: F401  (fixture)

IMAGES = [("DICOM", "PID1", "ST1", "SE1", f"IM{i}") for i in (1, 2, 3)]


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    return genisoimage(dcmtk_disc(tmp_path, count=3), tmp_path / "disc.iso", "TESTSET")


def crafted(iso: Path, edit) -> Path:
    image = bytearray(iso.read_bytes())
    edit(image)
    iso.write_bytes(bytes(image))
    return iso


def send(iso: Path, address: str, *extra: str):
    return run([sys.executable, "-m", "dicommedia", "read", str(iso), "--send", address, "--json", *extra])


def test_records_on_one_extent_send_one_instance(iso: Path, storescp):
    def same_extent(image: bytearray) -> None:
        first = find(image, *IMAGES[0]).extent
        for path in IMAGES[1:]:
            set_extent(image, find(image, *path), first)

    scp = storescp()
    result = send(crafted(iso, same_extent), scp.address)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert (report["found"], report["sent"]) == (3, 1)
    refused = {f["file_id"]: f["reason"] for f in report["failed"]}
    assert set(refused) == {"DICOM/PID1/ST1/SE1/IM2", "DICOM/PID1/ST1/SE1/IM3"}
    assert all("record references SOP Instance UID" in reason for reason in refused.values())
    assert "not sent DICOM/PID1/ST1/SE1/IM2" in result.stderr and "Traceback" not in result.stderr
    received = [dcmread(p).SOPInstanceUID for p in scp.files()]
    assert len(received) == 1  # the one file the three records share, once


def test_records_on_the_volume_descriptors_send_nothing(iso: Path, storescp):
    scp = storescp()
    result = send(crafted(iso, lambda image: [set_extent(image, find(image, *p), 16) for p in IMAGES]), scp.address)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert (report["found"], report["sent"], len(report["failed"])) == (3, 0, 3)
    assert all(f["reason"].startswith("not a Part 10 file") for f in report["failed"])
    assert scp.files() == []


def test_dry_run_names_the_refused_files(iso: Path, storescp):
    def same_extent(image: bytearray) -> None:
        set_extent(image, find(image, *IMAGES[1]), find(image, *IMAGES[0]).extent)

    scp = storescp()
    result = send(crafted(iso, same_extent), scp.address, "--dry-run")
    assert result.returncode == 1, result.stderr
    plan = json.loads(result.stdout)
    assert (plan["found"], plan["send"], plan["failed"]) == (3, 2, 1)
    assert [f["file_id"] for f in plan["refused"]] == ["DICOM/PID1/ST1/SE1/IM2"]
    assert scp.files() == []
