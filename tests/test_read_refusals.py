"""What leaves the media is the instance its record names; what cannot, is refused by name with exit 1.

Also: a corrupt DICOMDIR with nothing recoverable is exit 1 with its cause; a full extraction disk leaves nothing
behind; ``validate`` says which profile a disc fits and ``--profile auto`` finds it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dicommedia.validate import validate_media
from tests.conftest import run
from tests.crafted import find, set_extent
from tests.media_fixtures import dcmmkdir, dcmtk_disc, genisoimage, write_ct_study

IMAGES = [("DICOM", "PID1", "ST1", "SE1", f"IM{i}") for i in (1, 2, 3)]


def dicommedia(*args: object):
    return run([sys.executable, "-m", "dicommedia", *map(str, args)])


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    return genisoimage(dcmtk_disc(tmp_path, count=3), tmp_path / "disc.iso", "TESTSET")


def _edit(iso: Path, edit) -> Path:
    image = bytearray(iso.read_bytes())
    edit(image)
    iso.write_bytes(bytes(image))
    return iso


def test_records_on_one_extent_give_one_copy(iso: Path, tmp_path: Path):
    first = None

    def same_extent(image: bytearray) -> None:
        nonlocal first
        first = find(image, *IMAGES[0]).extent
        for path in IMAGES[1:]:
            set_extent(image, find(image, *path), first)

    _edit(iso, same_extent)
    out = tmp_path / "out"
    result = dicommedia("read", iso, "--extract", out, "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["extracted"] == 1
    refused = {f["file_id"]: f["reason"] for f in summary["failed"]}
    assert set(refused) == {"DICOM/PID1/ST1/SE1/IM2", "DICOM/PID1/ST1/SE1/IM3"}
    assert all("record references SOP Instance UID" in reason for reason in refused.values())
    assert len([p for p in out.rglob("IM*")]) == 1
    assert "record-mismatch" in result.stderr and "Traceback" not in result.stderr


def test_records_on_the_volume_descriptors_are_refused(iso: Path, tmp_path: Path):
    _edit(iso, lambda image: [set_extent(image, find(image, *path), 16) for path in IMAGES])
    out = tmp_path / "out"
    result = dicommedia("read", iso, "--extract", out)
    assert result.returncode == 1
    assert [line.split()[:2] for line in result.stderr.splitlines()].count(["error", "not-part10"]) == 3
    assert "no instance can be read" in result.stderr
    assert not out.exists() or not [p for p in out.rglob("IM*")]


def test_corrupt_dicomdir_and_nothing_recoverable_is_exit_1(tmp_path: Path):
    disc = tmp_path / "disc"
    disc.mkdir()
    (disc / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f" + b"1.2" * 10)
    (disc / "README.TXT").write_text("a disc\n")
    iso = genisoimage(disc, tmp_path / "bad.iso", "BAD")
    for media in (disc, iso):
        result = dicommedia("read", media)
        assert result.returncode == 1, result.stderr
        assert "dicomdir-corrupt" in result.stderr and "no instance can be read" in result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        as_json = dicommedia("read", media, "--json")
        assert as_json.returncode == 1 and json.loads(as_json.stdout)["error"]["code"] == "dicomdir-corrupt"


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 64 KiB tmpfs: room for a few slices, not for the whole extraction (skipped where mount is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_leaves_nothing_behind(tmp_path: Path, small_fs: Path):
    disc = tmp_path / "disc"
    write_ct_study(disc, 6, size=96)  # 18 KiB each: 108 KiB in all
    dcmmkdir(disc)
    out = small_fs / "out"
    result = dicommedia("read", disc, "--extract", out, "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "write-failed" and "No space left on device" in error["message"]
    assert "nothing was left behind" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(small_fs.iterdir()) == []  # no .part file, no partial copies, no manifest


def test_validate_names_the_profile_that_fits(tmp_path: Path, pydicom_files):
    folder = tmp_path / "c"
    target = folder / "DICOM" / "P" / "S" / "SE"
    target.mkdir(parents=True)
    shutil.copy(pydicom_files["MR_small_jp2klossless.dcm"], target / "IM1")
    shutil.copy(pydicom_files["JPEG-lossy.dcm"], target / "IM2")
    dcmmkdir(folder)
    result = dicommedia("validate", folder, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    hints = [w["message"] for w in report["warnings"] if w["code"] == "other-profile"]
    assert hints == [
        "the disc's content fits AUG-GEN-DRS-CD better than STD-GEN-CD (validate with --profile AUG-GEN-DRS-CD)"
    ]
    auto = dicommedia("validate", folder, "--profile", "auto", "--json")
    detected = json.loads(auto.stdout)
    assert (auto.returncode, detected["profile"], detected["valid"]) == (0, "AUG-GEN-DRS-CD", True), auto.stderr
    assert validate_media(folder, None).profile == "AUG-GEN-DRS-CD"


def test_plain_disc_stays_under_std_gen_cd(tmp_path: Path):
    report = validate_media(dcmtk_disc(tmp_path, count=2), None)
    assert (report.profile, report.valid) == ("STD-GEN-CD", True)
    assert [w.code for w in report.warnings if w.code == "other-profile"] == []
